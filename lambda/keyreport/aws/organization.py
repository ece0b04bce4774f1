"""AWS Organizations fan-out: an orchestrator run enqueues every ACTIVE account on SQS; the same function,
triggered by SQS (batch size 1, partial batch responses), inventories and ships one member account each."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from keyreport.errors import AccountUnreachable, aws_error_code
from keyreport.log import logger

if TYPE_CHECKING:
    from mypy_boto3_organizations import OrganizationsClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef
    from mypy_boto3_sts import STSClient

ACCOUNT_ID = re.compile(r"^\d{12}$")
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


def parse_messages(event: dict[str, Any]) -> tuple[list[AccountMessage], list[str]]:
    """The account messages of an SQS event, and the message ids that are not keyreport messages."""
    messages, malformed = [], []
    for record in event.get("Records", []):
        try:
            account_id = json.loads(record["body"])["account_id"]
            if not isinstance(account_id, str) or not ACCOUNT_ID.match(account_id):
                raise ValueError(account_id)
        except (KeyError, TypeError, ValueError):
            logger.error("not a keyreport account message", extra={"message_id": record.get("messageId")})
            malformed.append(str(record.get("messageId", "")))
            continue
        messages.append(AccountMessage(record["messageId"], account_id))
    return messages, malformed


def is_sqs_event(event: dict[str, Any]) -> bool:
    records = event.get("Records") or []
    return bool(records) and all(record.get("eventSource") == "aws:sqs" for record in records)


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
    members: MemberSessions,
    run_account: Callable[[boto3.Session], bool],
    report_unreachable: Callable[[str, str], None],
) -> dict[str, Any]:
    """Inventories the account of each SQS message; returns the partial batch response."""
    messages, malformed = parse_messages(event)
    outcomes: dict[str, bool] = {}
    for message in messages:
        try:
            session = members.for_account(message.account_id)
        except AccountUnreachable as error:
            report_unreachable(message.account_id, str(error))
            outcomes[message.message_id] = False
            continue
        outcomes[message.message_id] = run_account(session)
    return batch_response(messages, malformed, lambda message: outcomes[message.message_id])
