"""The CloudTrail join (queries/key-use-cloudtrail.kql, the hunting query and the workbook's key-use tab) run on
duckdb-kql over keyreport rows made by the product's own record code and generated AWSCloudTrail rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keyreport import queries
from sandbox.local_kql import TimeRange
from tests.queries import generated
from tests.queries.generated import arn

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
ACCOUNT, OTHER_ACCOUNT = "111122223333", "444455556666"
ALICE_KEY, BOB_KEY, CAROL_KEY = "AKIAIOSFODNN7EXAMPLE", "AKIAI44QH8DHBEXAMPLE", "AKIAJQABLZS4A3QDU576"


def run_rows(started: datetime, alice_status: str) -> generated.Tables:
    """One complete run of ACCOUNT: alice's key (status as given), bob's and carol's keys, their users."""
    return generated.complete_run(
        ACCOUNT,
        started,
        [
            generated.key(ACCOUNT, "alice", ALICE_KEY, alice_status, started - timedelta(days=400)),
            generated.key(ACCOUNT, "bob", BOB_KEY, "Active", started - timedelta(days=30)),
            generated.key(ACCOUNT, "carol", CAROL_KEY, "Active", started - timedelta(days=3)),
        ],
    )


def call(moment: datetime, key: str, user: str, ip: str, **fields: Any) -> dict[str, Any]:
    """One AWSCloudTrail row as Sentinel's S3 connector stores a call signed with an IAM user's key."""
    row = {
        "TimeGenerated": moment.isoformat(),
        "EventSource": "s3.amazonaws.com",
        "EventName": "ListBuckets",
        "UserIdentityType": "IAMUser",
        "UserIdentityAccountId": ACCOUNT,
        "UserIdentityUserName": user,
        "UserIdentityArn": arn(ACCOUNT, user),
        "UserIdentityAccessKeyId": key,
        "AWSRegion": "eu-west-1",
        "SourceIpAddress": ip,
        "UserAgent": "aws-cli/2.15.0",
        "RecipientAccountId": ACCOUNT,
    }
    row.update(fields)
    return row


def cloudtrail_rows() -> list[dict[str, Any]]:
    deactivated_run = NOW - timedelta(days=3)
    return [
        call(NOW - timedelta(days=6), ALICE_KEY, "alice", "198.51.100.7"),
        call(
            NOW - timedelta(days=5),
            ALICE_KEY,
            "alice",
            "198.51.100.7",
            EventSource="iam.amazonaws.com",
            ErrorCode="AccessDenied",
        ),
        call(
            deactivated_run + timedelta(hours=30),
            ALICE_KEY,
            "alice",
            "203.0.113.9",
            AWSRegion="us-east-1",
            UserAgent="python-requests/2.31",
        ),
        call(NOW - timedelta(days=20), ALICE_KEY, "alice", "192.0.2.1"),  # outside the 14 days
        call(NOW - timedelta(days=2), BOB_KEY, "bob", "198.51.100.99"),  # same masked id as alice's: AKIA...MPLE
        # Another account's alice whose key masks the same way: not this account's key.
        call(
            NOW - timedelta(days=2), "AKIAXXXXXXXXXXXXMPLE", "alice", "192.0.2.50", UserIdentityAccountId=OTHER_ACCOUNT
        ),
        # A session of a role: temporary ASIA key, not an IAM user's access key.
        call(NOW - timedelta(days=1), "ASIAIOSFODNN7EXAMPLE", "deploy", "192.0.2.77", UserIdentityType="AssumedRole"),
    ]


@pytest.fixture(scope="module")
def result() -> list[dict[str, Any]]:
    runs = [run_rows(NOW - timedelta(days=10), "Active"), run_rows(NOW - timedelta(days=3), "Inactive")]
    workspace = generated.workspace(runs, cloudtrail_rows())
    try:
        query = queries.library()["key-use-cloudtrail"].text
        return workspace.run(query, now=NOW, time_range=TimeRange.last(timedelta(days=14), NOW)).records()
    finally:
        workspace.close()


def by_user(result: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    assert len({row["User"] for row in result}) == len(result)
    return {row["User"]: row for row in result}


def test_each_key_gets_its_own_calls_by_account_user_and_masked_id(result: list[dict[str, Any]]) -> None:
    rows = by_user(result)
    assert set(rows) == {"alice", "bob"}  # carol's key made no call
    assert all(row["Account"] == ACCOUNT for row in result)
    alice, bob = rows["alice"], rows["bob"]
    assert alice["AccessKey"] == bob["AccessKey"] == "AKIA...MPLE"  # the user tells them apart
    assert (alice["Calls"], alice["FailedCalls"]) == (3, 1)  # the 20-day-old call is outside the 14 days
    assert bob["Calls"] == 1 and "198.51.100.99" in bob["SourceIps"]
    assert "192.0.2.50" not in alice["SourceIps"] and "192.0.2.77" not in str(result)


def test_sources_agents_regions_and_services_are_listed(result: list[dict[str, Any]]) -> None:
    alice = by_user(result)["alice"]
    for value, column in (("198.51.100.7", "SourceIps"), ("203.0.113.9", "SourceIps"), ("us-east-1", "Regions"),
                          ("python-requests/2.31", "UserAgents"), ("iam.amazonaws.com", "Services")):  # fmt: skip
        assert value in alice[column], (value, column)
    assert alice["FirstCall"] == NOW - timedelta(days=6) and alice["LastCall"] == NOW - timedelta(hours=42)


def test_a_call_after_the_key_was_found_inactive_is_flagged(result: list[dict[str, Any]]) -> None:
    alice, bob = by_user(result)["alice"], by_user(result)["bob"]
    assert alice["Status"] == "Inactive" and alice["InactiveSince"] == NOW - timedelta(days=3)
    assert alice["CallsAfterDeactivation"] == 1 and alice["UsedAfterDeactivation"] is True
    assert bob["InactiveSince"] is None and bob["UsedAfterDeactivation"] is False
    assert result[0]["User"] == "alice"  # used after deactivation sorts first


def test_the_full_key_id_is_not_in_the_result(result: list[dict[str, Any]]) -> None:
    text = repr(result)
    for key in (ALICE_KEY, BOB_KEY, CAROL_KEY, "AKIAXXXXXXXXXXXXMPLE"):
        assert key not in text and key[4:-4] not in text
