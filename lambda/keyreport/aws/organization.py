"""AWS Organizations fan-out: an orchestrator run enqueues every ACTIVE account on SQS; the same function,
triggered by SQS (batch size 1, partial batch responses), inventories and ships one member account each."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from keyreport.errors import AccountUnreachable, DeadlineReached, aws_error_code
from keyreport.log import logger
from keyreport.records import ACCOUNT_ID

if TYPE_CHECKING:
    from mypy_boto3_organizations import OrganizationsClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef
    from mypy_boto3_sts import STSClient

SESSION_NAME = "keyreport-inventory"


@dataclass(frozen=True)
class AccountMessage:
    message_id: str
    account_id: str


def active_accounts(organizations: OrganizationsClient) -> Iterator[str]:
    for page in organizations.get_paginator("list_accounts").paginate():
        for account in page["Accounts"]:
            # `State` replaces the deprecated `Status`; accept either, as both are still returned.
            if (account.get("State") or account.get("Status")) == "ACTIVE":
                yield account["Id"]


def enqueue_accounts(organizations: OrganizationsClient, sqs: SQSClient, queue_url: str) -> list[str]:
    """One message per ACTIVE account; returns the account ids enqueued. Fails loudly if SQS refuses any."""
    accounts = list(active_accounts(organizations))
    for start in range(0, len(accounts), 10):  # SendMessageBatch takes at most 10 entries
        chunk = accounts[start : start + 10]
        entries: list[SendMessageBatchRequestEntryTypeDef] = [
            {"Id": account, "MessageBody": json.dumps({"account_id": account})} for account in chunk
        ]
        failed = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed", [])
        if failed:
            raise RuntimeError(f"SQS refused {len(failed)} account message(s): {failed[0].get('Code')}")
    logger.info("accounts enqueued", extra={"accounts": len(accounts)})
    return accounts


def parse_messages(
    event: dict[str, Any], queue_url: str, region: str | None = None
) -> tuple[list[AccountMessage], list[str]]:
    """The account messages of an SQS event, and the message ids that are not keyreport messages.

    A keyreport message comes from the configured queue and its body is exactly {"account_id": "<12 digits>"}:
    anything else is refused, whoever managed to send it.
    """
    messages, malformed = [], []
    records = event.get("Records")
    for record in records if isinstance(records, list) else []:
        account_id = _account_of(record, queue_url, region) if isinstance(record, dict) else None
        message_id = record.get("messageId") if isinstance(record, dict) else None
        if account_id is None or not isinstance(message_id, str):
            logger.error("not a keyreport account message", extra={"message_id": str(message_id)[:100]})
            malformed.append(str(message_id or ""))
            continue
        messages.append(AccountMessage(message_id, account_id))
    return messages, malformed


def _account_of(record: dict[str, Any], queue_url: str, region: str | None) -> str | None:
    """The account id a message names, or None when it is not a well-formed message of our queue."""
    if record.get("eventSource") != "aws:sqs" or not _from_queue(record.get("eventSourceARN"), queue_url, region):
        return None
    try:
        body = json.loads(record["body"])
    except (KeyError, TypeError, ValueError):
        return None
    if not isinstance(body, dict) or set(body) != {"account_id"}:
        return None
    account_id = body["account_id"]
    return account_id if isinstance(account_id, str) and ACCOUNT_ID.fullmatch(account_id) else None


def _from_queue(source_arn: Any, queue_url: str, region: str | None) -> bool:
    """Whether an event's source ARN is exactly the queue of the URL: partition, region, account and name."""
    expected = queue_arn(queue_url, region)
    return isinstance(source_arn, str) and expected is not None and source_arn == expected


# Region prefixes of the partitions other than `aws` (botocore's endpoints.json, partitions[].regionRegex).
_PARTITIONS = (("cn-", "aws-cn"), ("us-gov-", "aws-us-gov"), ("us-isob-", "aws-iso-b"), ("us-iso-", "aws-iso"))
_QUEUE_HOST = re.compile(r"(?:sqs\.(?P<new>[a-z0-9-]+)|(?P<legacy>[a-z0-9-]+)\.queue)\.amazonaws\.com(?:\.cn)?")


def queue_arn(queue_url: str, region: str | None) -> str | None:
    """The ARN of the queue at `queue_url`: its region from the URL's AWS host, else `region` (the function's,
    for a VPC or custom endpoint); None when no region can be told (then no message is trusted)."""
    parts = urlsplit(queue_url)
    path = parts.path.strip("/").split("/")
    host = _QUEUE_HOST.fullmatch(parts.hostname or "")
    region = (host["new"] or host["legacy"]) if host else region
    if len(path) != 2 or not region:
        return None
    partition = next((name for prefix, name in _PARTITIONS if region.startswith(prefix)), "aws")
    return f"arn:{partition}:sqs:{region}:{path[0]}:{path[1]}"


def is_sqs_event(event: dict[str, Any]) -> bool:
    records = event.get("Records")
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(record, dict) and record.get("eventSource") == "aws:sqs" for record in records)
    )


class MemberSessions:
    """Sessions in member accounts through the member role; the function's own account needs none."""

    def __init__(self, session: boto3.Session, sts: STSClient, role_name: str, external_id: str | None) -> None:
        self.session = session
        self.sts = sts
        self.role_name = role_name
        self.external_id = external_id
        identity = sts.get_caller_identity()
        self.own_account = identity["Account"]
        self.partition = identity["Arn"].split(":")[1]

    def role_arn(self, account_id: str) -> str:
        return f"arn:{self.partition}:iam::{account_id}:role/{self.role_name}"

    def for_account(self, account_id: str) -> boto3.Session:
        if account_id == self.own_account:
            return self.session
        arguments: dict[str, Any] = {"RoleArn": self.role_arn(account_id), "RoleSessionName": SESSION_NAME}
        if self.external_id:
            arguments["ExternalId"] = self.external_id
        try:
            credentials = self.sts.assume_role(**arguments)["Credentials"]
        except (ClientError, BotoCoreError) as error:
            raise AccountUnreachable(f"cannot assume {self.role_arn(account_id)}: {aws_error_code(error)}") from None
        return boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=self.session.region_name,
        )


def batch_response(
    messages: list[AccountMessage], malformed: list[str], succeeded: Callable[[AccountMessage], bool]
) -> dict[str, Any]:
    """Lambda's partial batch response: only the failed messages return to the queue (and later its DLQ)."""
    failures = [message.message_id for message in messages if not succeeded(message)] + malformed
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failures]}


def run_member_accounts(
    event: dict[str, Any],
    queue_url: str,
    members: MemberSessions,
    run_account: Callable[[boto3.Session], bool],
    report_unreachable: Callable[[str, str], None],
    *,
    region: str | None = None,
) -> dict[str, Any]:
    """Inventories the account of each SQS message; returns the partial batch response. `region` is the
    function's: the queue's when its URL does not say (a VPC endpoint)."""
    messages, malformed = parse_messages(event, queue_url, region)
    outcomes: dict[str, bool] = {}
    for message in messages:
        try:
            session = members.for_account(message.account_id)
        except AccountUnreachable as error:
            report_unreachable(message.account_id, str(error))
            outcomes[message.message_id] = False
            continue
        except DeadlineReached:
            outcomes[message.message_id] = False  # not attempted: back to the queue for the next invocation
            continue
        outcomes[message.message_id] = run_account(session)
    return batch_response(messages, malformed, lambda message: outcomes[message.message_id])
