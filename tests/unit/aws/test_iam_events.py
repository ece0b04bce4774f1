"""An IAM event is a hint: only a strictly checked account and user name come out of it, or a reason why not."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from keyreport.aws.iam_events import EVENT_NAMES, Refused, UserHint, coalesce, coalesce_sqs, hint_of
from sandbox.cloudtrail import iam_event, queue_arn, sqs_batch

ACCOUNT = "123456789012"
AT = datetime(2026, 12, 7, 5, 0, 0, tzinfo=UTC)
QUEUE = f"https://sqs.eu-west-1.amazonaws.com/{ACCOUNT}/keyreport-iam-events"


@pytest.mark.parametrize("name", sorted(EVENT_NAMES - {"DeleteVirtualMFADevice"}))
def test_every_event_name_names_its_user(name: str) -> None:
    assert hint_of(iam_event(name, ACCOUNT, "alice", at=AT)) == UserHint(ACCOUNT, "alice", name, AT)


def test_a_self_service_call_names_the_calling_iam_user() -> None:
    hint = hint_of(iam_event("CreateAccessKey", ACCOUNT, None, caller="bob", at=AT))
    assert hint == UserHint(ACCOUNT, "bob", "CreateAccessKey", AT)


def test_a_failed_call_an_unlisted_call_and_the_root_users_own_key_are_ignored() -> None:
    for event in (
        iam_event("CreateAccessKey", ACCOUNT, "alice", error_code="LimitExceeded"),
        iam_event("AttachUserPolicy", ACCOUNT, "alice"),
        iam_event("CreateAccessKey", ACCOUNT, None, caller_type="Root"),
        iam_event("DeleteVirtualMFADevice", ACCOUNT, None, extra_parameters={"serialNumber": "arn:aws:iam::1:mfa/x"}),
    ):
        refused = hint_of(event)
        assert isinstance(refused, Refused) and refused.ignored, refused


def forged(change: Any) -> dict[str, Any]:
    event = iam_event("CreateAccessKey", ACCOUNT, "alice", at=AT)
    change(event)
    return event


MALFORMED = {
    "custom source": forged(lambda e: e.update(source="my.app")),
    "other detail-type": forged(lambda e: e.update({"detail-type": "AWS Console Sign In via CloudTrail"})),
    "no detail": forged(lambda e: e.pop("detail")),
    "detail not an object": forged(lambda e: e.update(detail="x")),
    "other event source": forged(lambda e: e["detail"].update(eventSource="sts.amazonaws.com")),
    "short account": forged(lambda e: e["detail"].update(recipientAccountId="12345")),
    "non-ASCII digits": forged(lambda e: e["detail"].update(recipientAccountId="١٢٣٤٥٦٧٨٩٠١٢")),
    "account not a string": forged(lambda e: e["detail"].update(recipientAccountId=123456789012)),
    "envelope of another account": forged(lambda e: e.update(account="210987654321")),
    "no event time": forged(lambda e: e["detail"].pop("eventTime")),
    "local event time": forged(lambda e: e["detail"].update(eventTime="2026-12-07T05:00:00+02:00")),
    "user name with a slash": forged(lambda e: e["detail"]["requestParameters"].update(userName="a/b")),
    "user name too long": forged(lambda e: e["detail"]["requestParameters"].update(userName="a" * 65)),
    "user name with a space": forged(lambda e: e["detail"]["requestParameters"].update(userName="alice smith")),
    "user name not a string": forged(lambda e: e["detail"]["requestParameters"].update(userName=["alice"])),
    "user name empty": forged(lambda e: e["detail"]["requestParameters"].update(userName="")),
    "parameters not an object": forged(lambda e: e["detail"].update(requestParameters="alice")),
    "self-service by a role": iam_event("CreateAccessKey", ACCOUNT, None, caller_type="AssumedRole"),
    "self-service of another account": forged(
        lambda e: (e["detail"].update(requestParameters=None), e["detail"]["userIdentity"].update(accountId="1" * 12))
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_or_forged_event_is_refused_with_a_reason(case: str) -> None:
    refused = hint_of(MALFORMED[case])
    assert isinstance(refused, Refused) and not refused.ignored and refused.reason, case


def test_a_huge_forged_value_is_quoted_short() -> None:
    refused = hint_of(forged(lambda e: e["detail"]["requestParameters"].update(userName="x" * 100_000)))
    assert isinstance(refused, Refused) and len(refused.reason) < 200


def test_events_for_the_same_user_coalesce_into_one_reread_dated_by_the_earliest() -> None:
    later = AT.replace(second=30)
    events = [
        iam_event("CreateAccessKey", ACCOUNT, "alice", at=later),
        iam_event("UpdateAccessKey", ACCOUNT, "alice", at=AT),
        iam_event("DeleteAccessKey", ACCOUNT, "alice", at=later),
        iam_event("TagUser", ACCOUNT, "bob", at=later),
        iam_event("TagUser", "210987654321", "bob", at=later),
        {"not": "an event"},
    ]
    batch = coalesce(events)
    assert batch.by_account() == {ACCOUNT: ["alice", "bob"], "210987654321": ["bob"]}
    assert batch.first_event[(ACCOUNT, "alice")] == AT
    assert (batch.received, batch.refused, batch.ignored) == (6, 1, 0)


def test_sqs_records_of_another_queue_or_with_a_broken_body_are_refused() -> None:
    good = sqs_batch([iam_event("CreateUser", ACCOUNT, "carol")], queue_arn(QUEUE, "eu-west-1"))
    other = sqs_batch([iam_event("CreateUser", ACCOUNT, "mallory")], queue_arn(QUEUE.replace("events", "x")))
    broken = copy.deepcopy(good)
    broken["Records"][0]["body"] = "{not json"
    broken["Records"][0]["messageId"] = "m-broken"
    deep = copy.deepcopy(broken)
    deep["Records"][0]["body"] = "[" * 200_000 + "]" * 200_000  # deeper than Python's parser recurses
    odd: list[Any] = ["not a record", {"eventSource": "aws:sqs"}]
    event = {"Records": good["Records"] + other["Records"] + broken["Records"] + deep["Records"] + odd}
    batch = coalesce_sqs(event, QUEUE)
    assert batch.by_account() == {ACCOUNT: ["carol"]}
    assert batch.messages[(ACCOUNT, "carol")] == [good["Records"][0]["messageId"]]
    assert (batch.received, batch.refused) == (6, 5)
    assert json.loads(good["Records"][0]["body"])["detail"]["recipientAccountId"] == ACCOUNT
