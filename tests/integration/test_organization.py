"""Organization mode end to end in the sandbox: moto Organizations, STS and SQS, many member accounts,
one denied, the real handler for the orchestrator and for every SQS-triggered account run."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

import keyreport.handler
from keyreport.errors import ConfigError
from sandbox.aws import assumed_iam
from sandbox.aws_faults import IamFaults
from sandbox.estate import Estate, seed_estate
from sandbox.lambda_context import LocalLambdaContext
from tests.integration.conftest import RUNS_TABLE, World

MEMBERS = 8
ROLE = "keyreport-member"
EXTERNAL_ID = "keyreport-sandbox-external-id"


def member_iam(world: World, account_id: str) -> Any:
    role = f"arn:aws:iam::{account_id}:role/{ROLE}"
    return assumed_iam(world.stack.aws.client("sts"), role, EXTERNAL_ID)


@pytest.fixture
def organization(world: World, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    org = world.stack.aws.client("organizations")
    org.create_organization(FeatureSet="ALL")
    estates: dict[str, Estate] = {world.estate.account_id: world.estate}
    for index in range(MEMBERS):
        account = org.create_account(Email=f"member{index}@example.com", AccountName=f"member-{index}")
        account_id = account["CreateAccountStatus"]["AccountId"]
        estates[account_id] = seed_estate(member_iam(world, account_id), users=4 + index, seed=100 + index, root_keys=0)
    sqs = world.stack.aws.client("sqs")
    dlq = sqs.create_queue(QueueName="keyreport-accounts-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(
        QueueName="keyreport-accounts",
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}),
            "VisibilityTimeout": "0",
        },
    )["QueueUrl"]
    monkeypatch.setenv("KEYREPORT_MODE", "organization")
    monkeypatch.setenv("KEYREPORT_QUEUE_URL", queue)
    monkeypatch.setenv("KEYREPORT_EXTERNAL_ID", EXTERNAL_ID)
    return {"estates": estates, "queue": queue, "dlq": dlq}


def queue_arn(world: World, queue: str) -> str:
    attributes = world.stack.aws.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    return attributes["Attributes"]["QueueArn"]


def drain(world: World, queue: str, session: boto3.Session, limit: int = 100) -> list[dict[str, Any]]:
    """What Lambda's SQS event source mapping does: one message per invocation, delete what succeeded."""
    sqs = world.stack.aws.client("sqs")
    source = queue_arn(world, queue)
    responses = []
    for _ in range(limit):
        messages = sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=1, AttributeNames=["ApproximateReceiveCount"]
        ).get("Messages", [])
        if not messages:
            break
        message = messages[0]
        event = {
            "Records": [
                {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message["Body"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": source,
                    "attributes": {},
                }
            ]
        }
        response = keyreport.handler.handle(event, LocalLambdaContext(), session)  # type: ignore[arg-type]
        responses.append(response)
        if not response["batchItemFailures"]:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return responses


def test_every_active_account_is_inventoried_and_a_denied_one_ends_in_the_dlq(
    world: World, organization: dict[str, Any]
) -> None:
    estates: dict[str, Estate] = organization["estates"]
    denied = sorted(account for account in estates if account != world.estate.account_id)[0]
    faults = IamFaults("sts")
    faults.fail_when("AssumeRole", "AccessDenied", denied)
    session = faults.install(boto3.Session())
    earlier_runs = len(world.stack.collector.rows(RUNS_TABLE))  # the collector outlives each test

    enqueued = keyreport.handler.handle({}, LocalLambdaContext(), session)  # type: ignore[arg-type]
    assert enqueued == {"accounts_enqueued": MEMBERS + 1}
    responses = drain(world, organization["queue"], session)

    assert sum(bool(r["batchItemFailures"]) for r in responses) == 2  # the denied account, received twice
    dead = world.stack.aws.client("sqs").receive_message(QueueUrl=organization["dlq"]).get("Messages", [])
    assert [json.loads(m["Body"])["account_id"] for m in dead] == [denied]

    runs = world.stack.collector.rows(RUNS_TABLE)[earlier_runs:]
    by_account: dict[str, list[str]] = {}
    for row in runs:
        by_account.setdefault(row["account_number_s"], []).append(row["Status_s"])
    assert set(by_account) == set(estates)  # every account appears in the run table
    assert by_account[denied] == ["failed", "failed"]
    for account, estate in estates.items():
        if account == denied:
            continue
        assert by_account[account] == ["ok"]
        [run] = [row for row in runs if row["account_number_s"] == account]
        shipped = world.rows(run["RunId_g"])
        assert len(shipped) == estate.key_count == run["RecordsShipped_d"]
        assert {row["account_number_s"] for row in shipped} <= {account}
    [denied_run, _] = [row for row in runs if row["account_number_s"] == denied]
    assert f"cannot assume arn:aws:iam::{denied}:role/{ROLE}: AccessDenied" in denied_run["ErrorDetail_s"]


def sqs_event(source: str, *bodies: str) -> dict[str, Any]:
    records = [
        {"messageId": f"m-{n}", "receiptHandle": "r", "body": body, "eventSource": "aws:sqs", "eventSourceARN": source}
        for n, body in enumerate(bodies, 1)
    ]
    return {"Records": records}


@pytest.mark.parametrize(
    "body",
    [
        '{"account": 1}',
        '{"account_id": "123456789012\\n"}',  # a trailing newline: `$` would have matched it
        '{"account_id": "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660\u0661\u0662"}',
        '{"account_id": "123456789012", "role": "arn:aws:iam::999999999999:role/x"}',  # nothing but the id
        '["123456789012"]',
        "not json",
    ],
)
def test_a_message_that_is_not_an_account_goes_back_to_the_queue(
    world: World, organization: dict[str, Any], body: str
) -> None:
    event = sqs_event(queue_arn(world, organization["queue"]), body)
    response = keyreport.handler.handle(event, LocalLambdaContext(), boto3.Session())  # type: ignore[arg-type]
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}


def test_a_message_from_another_queue_is_refused(world: World, organization: dict[str, Any]) -> None:
    other = world.stack.aws.client("sqs").create_queue(QueueName="somebody-elses-queue")["QueueUrl"]
    runs_before = len(world.stack.collector.rows(RUNS_TABLE))
    event = sqs_event(queue_arn(world, other), json.dumps({"account_id": world.estate.account_id}))
    response = keyreport.handler.handle(event, LocalLambdaContext(), boto3.Session())  # type: ignore[arg-type]
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert len(world.stack.collector.rows(RUNS_TABLE)) == runs_before  # nothing was run


def test_an_sqs_event_in_account_mode_runs_nothing(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    runs_before = len(world.stack.collector.rows(RUNS_TABLE))
    event = sqs_event("arn:aws:sqs:us-east-1:123456789012:q", json.dumps({"account_id": world.estate.account_id}))
    with pytest.raises(ConfigError, match="an SQS event reached the function in KEYREPORT_MODE=account"):
        keyreport.handler.handle(event, LocalLambdaContext(), boto3.Session())  # type: ignore[arg-type]
    assert len(world.stack.collector.rows(RUNS_TABLE)) == runs_before
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("event", [[], ["Records"], "run", 7, None, {"Records": "abc"}, {"Records": [1, 2]}])
def test_an_event_that_is_not_a_json_object_or_has_odd_records_is_refused_cleanly(
    world: World, capsys: pytest.CaptureFixture[str], event: Any
) -> None:
    """Lambda passes whatever JSON an invoker sent: no AttributeError, a clear refusal or a plain run."""
    runs_before = len(world.stack.collector.rows(RUNS_TABLE))
    if isinstance(event, dict):  # a JSON object without real SQS records is a scheduled run
        keyreport.handler.handle(event, LocalLambdaContext(), boto3.Session())  # type: ignore[arg-type]
        assert len(world.stack.collector.rows(RUNS_TABLE)) == runs_before + 1
        return
    with pytest.raises(ConfigError, match=f"invoked with a JSON {type(event).__name__}, not an object"):
        keyreport.handler.handle(event, LocalLambdaContext(), boto3.Session())  # type: ignore[arg-type]
    assert len(world.stack.collector.rows(RUNS_TABLE)) == runs_before
    assert "Traceback" not in capsys.readouterr().err


def test_organization_mode_needs_its_queue(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from keyreport.settings import ConfigError

    monkeypatch.setenv("KEYREPORT_MODE", "organization")
    with pytest.raises(ConfigError, match="KEYREPORT_QUEUE_URL is required for KEYREPORT_MODE=organization"):
        world.invoke()
