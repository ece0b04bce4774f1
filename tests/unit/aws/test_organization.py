"""The Organizations fan-out: listing and enqueueing accounts, reading SQS events, member sessions, batch responses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from keyreport.aws.organization import (
    SESSION_NAME,
    AccountMessage,
    MemberSessions,
    active_accounts,
    batch_response,
    enqueue_accounts,
    is_sqs_event,
    parse_messages,
    queue_arn,
    run_member_accounts,
)
from keyreport.errors import AccountUnreachable
from tests.unit.fakes import stubbed_client

OWN = "111111111111"
MEMBER = "222222222222"
QUEUE = "https://sqs.us-east-1.amazonaws.com/111111111111/keyreport-accounts"
QUEUE_ARN = "arn:aws:sqs:us-east-1:111111111111:keyreport-accounts"
ROLE = "keyreport-member"


@pytest.fixture
def organizations() -> Iterator[tuple[Any, Stubber]]:
    with stubbed_client("organizations") as client_and_stub:
        yield client_and_stub


@pytest.fixture
def sts() -> Iterator[tuple[Any, Stubber]]:
    """The function's own STS: it runs in a GovCloud account, so member role ARNs must keep that partition."""
    with stubbed_client("sts") as (client, stub):
        stub.add_response(
            "get_caller_identity",
            {"UserId": "AROAEXAMPLE:fn", "Account": OWN, "Arn": f"arn:aws-us-gov:sts::{OWN}:assumed-role/fn/fn"},
        )
        yield client, stub


def role_arn(account_id: str) -> str:
    return f"arn:aws-us-gov:iam::{account_id}:role/{ROLE}"  # the partition comes from the caller's own ARN


def account(number: int, state: str | None = "ACTIVE", status: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"Id": f"{number:012d}", "Name": f"account {number}"}
    if state:
        entry["State"] = state
    if status:
        entry["Status"] = status
    return entry


def sqs_event(*bodies: Any) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{n}",
                "body": body,
                "eventSource": "aws:sqs",
                "eventSourceARN": QUEUE_ARN,
                "receiptHandle": "r",
            }
            for n, body in enumerate(bodies)
        ]
    }


def test_active_accounts_follows_every_page_and_skips_accounts_that_are_not_active(
    organizations: tuple[Any, Stubber],
) -> None:
    client, stub = organizations
    first_page = [account(1), account(2, state="SUSPENDED"), account(3, state=None, status="ACTIVE")]
    stub.add_response("list_accounts", {"Accounts": first_page, "NextToken": "page-2"}, {})
    # `State` wins over the deprecated `Status` when AWS returns both and they disagree.
    second_page = [account(4, state="PENDING_CLOSURE", status="ACTIVE"), account(5, state=None, status="SUSPENDED")]
    stub.add_response("list_accounts", {"Accounts": second_page, "NextToken": "page-3"}, {"NextToken": "page-2"})
    stub.add_response("list_accounts", {"Accounts": [account(6), account(7, "CLOSED")]}, {"NextToken": "page-3"})

    assert list(active_accounts(client)) == ["000000000001", "000000000003", "000000000006"]


def test_enqueue_sends_one_message_per_account_in_batches_of_ten(organizations: tuple[Any, Stubber]) -> None:
    orgs, org_stub = organizations
    ids = [f"{n:012d}" for n in range(1, 24)]
    org_stub.add_response("list_accounts", {"Accounts": [account(int(i)) for i in ids]})
    with stubbed_client("sqs") as (sqs, sqs_stub):
        for chunk in (ids[:10], ids[10:20], ids[20:]):
            entries = [{"Id": i, "MessageBody": json.dumps({"account_id": i})} for i in chunk]
            successful = [{"Id": i, "MessageId": f"msg-{i}", "MD5OfMessageBody": "0" * 32} for i in chunk]
            sqs_stub.add_response(
                "send_message_batch", {"Successful": successful, "Failed": []}, {"QueueUrl": QUEUE, "Entries": entries}
            )

        assert enqueue_accounts(orgs, sqs, QUEUE) == ids


def test_enqueue_fails_loudly_when_sqs_refuses_an_entry(organizations: tuple[Any, Stubber]) -> None:
    orgs, org_stub = organizations
    org_stub.add_response("list_accounts", {"Accounts": [account(1), account(2)]})
    with stubbed_client("sqs") as (sqs, sqs_stub):
        refused = {"Id": "000000000002", "SenderFault": False, "Code": "InternalError", "Message": "try again"}
        ok = {"Id": "000000000001", "MessageId": "msg-1", "MD5OfMessageBody": "0" * 32}
        sqs_stub.add_response("send_message_batch", {"Successful": [ok], "Failed": [refused]})

        with pytest.raises(RuntimeError, match=r"^SQS refused 1 account message\(s\): InternalError$"):
            enqueue_accounts(orgs, sqs, QUEUE)


def test_enqueued_messages_are_what_the_member_runs_read() -> None:
    """Round trip through moto: Organizations -> enqueue -> SQS -> the SQS event a member run receives."""
    with mock_aws():
        orgs = boto3.client("organizations", region_name="us-east-1")
        orgs.create_organization(FeatureSet="ALL")
        for n in range(11):
            orgs.create_account(Email=f"a{n}@example.com", AccountName=f"member {n}")
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue = sqs.create_queue(QueueName="keyreport-accounts")["QueueUrl"]

        enqueued = enqueue_accounts(orgs, sqs, queue)

        received = []
        while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            received += batch
            for message in batch:
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    assert len(enqueued) == 12 and len(set(enqueued)) == 12  # the management account and 11 members
    source = "arn:aws:sqs:us-east-1:" + ":".join(queue.split("/")[-2:])  # Lambda's eventSourceARN for it
    records = [
        {"messageId": m["MessageId"], "body": m["Body"], "eventSource": "aws:sqs", "eventSourceARN": source}
        for m in received
    ]
    messages, malformed = parse_messages({"Records": records}, queue)
    assert malformed == [] and sorted(m.account_id for m in messages) == sorted(enqueued)


def test_parse_messages_reads_account_messages() -> None:
    event = sqs_event(json.dumps({"account_id": MEMBER}), json.dumps({"account_id": OWN}))
    assert parse_messages(event, QUEUE) == ([AccountMessage("m0", MEMBER), AccountMessage("m1", OWN)], [])


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        None,
        "[]",
        json.dumps(MEMBER),
        json.dumps({"account": MEMBER}),
        json.dumps({"account_id": int(MEMBER)}),
        json.dumps({"account_id": None}),
        json.dumps({"account_id": "22222222222"}),
        json.dumps({"account_id": "2222222222222"}),
        json.dumps({"account_id": "22222222222a"}),
        json.dumps({"account_id": "222222222222:role/admin"}),
        json.dumps({"account_id": "../222222222222"}),
        json.dumps({"account_id": MEMBER, "role": "admin"}),  # the schema is exactly one field
    ],
)
def test_a_body_that_is_not_an_account_message_is_malformed(body: Any, capsys: pytest.CaptureFixture[str]) -> None:
    event = sqs_event(json.dumps({"account_id": MEMBER}), body)

    assert parse_messages(event, QUEUE) == ([AccountMessage("m0", MEMBER)], ["m1"])
    [logged] = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert (logged["message"], logged["message_id"]) == ("not a keyreport account message", "m1")


@pytest.mark.parametrize("account_id", [MEMBER + "\n", "\uff12" * 12, "\u0662" * 12])
def test_an_account_id_is_exactly_twelve_ascii_digits(account_id: str) -> None:
    assert parse_messages(sqs_event(json.dumps({"account_id": account_id})), QUEUE) == ([], ["m0"])


@pytest.mark.parametrize(
    "change",
    [
        {"eventSourceARN": "arn:aws:sqs:us-east-1:999999999999:keyreport-accounts"},  # another account's queue
        {"eventSourceARN": "arn:aws:sqs:us-east-1:111111111111:other-queue"},
        {"eventSourceARN": "arn:aws:sqs:eu-west-1:111111111111:keyreport-accounts"},  # same name, other region
        {"eventSourceARN": "arn:aws-cn:sqs:us-east-1:111111111111:keyreport-accounts"},  # other partition
        {"eventSourceARN": "arn:aws:sqs:us-east-1:111111111111:keyreport-accounts:extra"},
        {"eventSourceARN": "arn:aws:lambda:us-east-1:111111111111:keyreport-accounts"},
        {"eventSourceARN": None},
        {"eventSource": "aws:sns"},
        {"messageId": 7},
    ],
)
def test_a_message_that_does_not_come_from_the_configured_queue_is_refused(change: dict[str, Any]) -> None:
    event = sqs_event(json.dumps({"account_id": MEMBER}))
    event["Records"][0].update(change)
    messages, malformed = parse_messages(event, QUEUE)
    assert messages == [] and len(malformed) == 1


def test_is_sqs_event() -> None:
    assert is_sqs_event(sqs_event("{}", "{}"))
    assert not is_sqs_event({"source": "aws.events", "detail-type": "Scheduled Event"})
    assert not is_sqs_event({"Records": []})
    assert not is_sqs_event({"Records": [{"eventSource": "aws:sqs"}, {"eventSource": "aws:s3"}]})


def test_the_functions_own_account_needs_no_assume_role(sts: tuple[Any, Stubber]) -> None:
    client, _ = sts
    own_session = boto3.Session(region_name="us-gov-west-1")
    members = MemberSessions(own_session, client, ROLE, external_id="ext-123")

    assert members.for_account(OWN) is own_session  # the stub would fail an AssumeRole call
    assert members.role_arn(MEMBER) == role_arn(MEMBER)  # the partition is kept


@pytest.mark.parametrize("external_id", ["ext-123", None, ""])
def test_a_member_account_is_reached_through_its_role(sts: tuple[Any, Stubber], external_id: str | None) -> None:
    client, stub = sts
    expected = {"RoleArn": role_arn(MEMBER), "RoleSessionName": SESSION_NAME}
    if external_id:
        expected["ExternalId"] = external_id
    credentials = {
        "AccessKeyId": "ASIAMEMBER0000000001",
        "SecretAccessKey": "member-secret",
        "SessionToken": "member-token",
        "Expiration": datetime(2026, 11, 30, 2, 0, tzinfo=UTC),
    }
    stub.add_response("assume_role", {"Credentials": credentials}, expected)
    members = MemberSessions(boto3.Session(region_name="us-gov-west-1"), client, ROLE, external_id)

    session = members.for_account(MEMBER)

    held = session.get_credentials().get_frozen_credentials()  # type: ignore[union-attr]
    assert (held.access_key, held.secret_key, held.token) == ("ASIAMEMBER0000000001", "member-secret", "member-token")
    assert session.region_name == "us-gov-west-1"


def test_a_member_role_that_cannot_be_assumed_makes_the_account_unreachable(sts: tuple[Any, Stubber]) -> None:
    client, stub = sts
    stub.add_client_error("assume_role", "AccessDenied", "not authorized to perform sts:AssumeRole", 403)
    members = MemberSessions(boto3.Session(region_name="us-gov-west-1"), client, ROLE, None)

    with pytest.raises(AccountUnreachable) as caught:
        members.for_account(MEMBER)

    assert str(caught.value) == f"cannot assume arn:aws-us-gov:iam::{MEMBER}:role/{ROLE}: AccessDenied"
    assert caught.value.__cause__ is None


def test_batch_response_returns_failed_and_malformed_messages_to_the_queue() -> None:
    messages = [AccountMessage("m0", OWN), AccountMessage("m1", MEMBER)]

    response = batch_response(messages, ["m2"], lambda message: message.account_id == OWN)

    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}
    assert batch_response(messages, [], lambda _: True) == {"batchItemFailures": []}


def test_run_member_accounts_runs_each_reachable_account_and_reports_the_rest(sts: tuple[Any, Stubber]) -> None:
    client, stub = sts
    unreachable = "333333333333"
    credentials = {"AccessKeyId": "ASIAMEMBER0000000001", "SecretAccessKey": "s", "SessionToken": "t", "Expiration": 0}
    expected = {"RoleArn": role_arn(MEMBER), "RoleSessionName": SESSION_NAME}
    stub.add_response("assume_role", {"Credentials": credentials}, expected)
    stub.add_client_error("assume_role", "AccessDenied", http_status_code=403)
    own_session = boto3.Session(region_name="us-gov-west-1")
    members = MemberSessions(own_session, client, ROLE, None)
    ran: list[str] = []
    reported: list[tuple[str, str]] = []

    def run_account(session: boto3.Session) -> bool:
        if session is own_session:
            ran.append(OWN)
            return True
        ran.append(session.get_credentials().access_key)  # type: ignore[union-attr]
        return False  # the member's run did not deliver everything

    event = sqs_event(*(json.dumps({"account_id": a}) for a in (OWN, MEMBER, unreachable)), "{}")
    response = run_member_accounts(event, QUEUE, members, run_account, lambda a, reason: reported.append((a, reason)))

    assert ran == [OWN, "ASIAMEMBER0000000001"]
    assert reported == [(unreachable, f"cannot assume {role_arn(unreachable)}: AccessDenied")]
    assert response == {"batchItemFailures": [{"itemIdentifier": m} for m in ("m1", "m2", "m3")]}


@pytest.mark.parametrize(
    ("url", "region", "arn"),
    [
        (QUEUE, None, QUEUE_ARN),
        (QUEUE, "eu-west-1", QUEUE_ARN),  # the URL's own region wins
        ("https://eu-west-1.queue.amazonaws.com/111111111111/q", None, "arn:aws:sqs:eu-west-1:111111111111:q"),
        ("https://sqs.cn-north-1.amazonaws.com.cn/111111111111/q", None, "arn:aws-cn:sqs:cn-north-1:111111111111:q"),
        (
            "https://sqs.us-gov-west-1.amazonaws.com/111111111111/q",
            None,
            "arn:aws-us-gov:sqs:us-gov-west-1:111111111111:q",
        ),
        ("https://vpce-1.sqs.example.internal/111111111111/q", "eu-west-1", "arn:aws:sqs:eu-west-1:111111111111:q"),
        ("https://vpce-1.sqs.example.internal/111111111111/q", None, None),  # no region known: nothing trusted
    ],
)
def test_the_queue_arn_is_told_from_its_url_and_the_functions_region(
    url: str, region: str | None, arn: str | None
) -> None:
    assert queue_arn(url, region) == arn
