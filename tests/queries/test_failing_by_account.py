"""failing-by-account (what every Sentinel check rule reads) on duckdb-kql over generated rows: one row per
account and failing check, so AlertPerResult raises one alert per account, with the entity columns filled."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keyreport.records import KeyRecord, UserRecord
from scripts.sentinel import rules
from tests.queries import generated

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
RUN = NOW - timedelta(hours=5)
NOISY, QUIET = "111122223333", "444455556666"


def noisy_account() -> generated.Tables:
    old = RUN - timedelta(days=400)
    keys = [
        generated.key(NOISY, "alice", "AKIAIOSFODNN7EXAMPLE", "Active", old, last_used_date=RUN - timedelta(days=1)),
        generated.key(NOISY, "bob", "AKIAI44QH8DHBEXAMPLE", "Active", old, last_used_date=RUN - timedelta(days=2)),
        KeyRecord("<root_account>", f"arn:aws:iam::{NOISY}:root", "root:1", "Active", old),  # a root key
    ]
    users = [
        UserRecord("alice", generated.arn(NOISY, "alice"), "/", old, True, RUN, RUN, False, 1, 1, RUN),
        UserRecord("bob", generated.arn(NOISY, "bob"), "/", old, False, None, None, None, 1, 1, RUN),
        root(NOISY, keys=1),  # the root user's row: its key fails root-access-key
    ]
    return generated.complete_run(NOISY, RUN, keys, users)


def root(account: str, keys: int) -> UserRecord:
    """The root user's row as an account-scope run ships it: MFA on a hardware device, not used lately."""
    created = RUN - timedelta(days=2000)
    arn = f"arn:aws:iam::{account}:root"
    return UserRecord("<root_account>", arn, "/", created, True, None, None, True, keys, keys, hardware_mfa=True)


def quiet_account() -> generated.Tables:
    fresh = RUN - timedelta(days=10)
    key = generated.key(QUIET, "carol", "AKIAJQABLZS4A3QDU576", "Active", fresh, last_used_date=RUN - timedelta(days=1))
    users = [
        UserRecord("carol", generated.arn(QUIET, "carol"), "/", fresh, False, None, None, None, 1, 1, RUN),
        root(QUIET, keys=0),
    ]
    return generated.complete_run(QUIET, RUN, [key], users)


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    workspace = generated.workspace([noisy_account(), quiet_account()])
    try:
        return workspace.run(rules.analytic_rules()[0].text().rsplit("| where ControlId", 1)[0], now=NOW).records()
    finally:
        workspace.close()


def test_one_row_per_account_and_failing_check(rows: list[dict[str, Any]]) -> None:
    keys = [(row["Account"], row["ControlId"]) for row in rows]
    assert len(keys) == len(set(keys)) and keys
    assert {row["Account"] for row in rows} == {NOISY}  # the quiet account fails nothing


def test_each_rule_sees_one_row_per_failing_account_with_its_entities(rows: list[dict[str, Any]]) -> None:
    by_check = {row["ControlId"]: row for row in rows}
    rotation = by_check["key-rotation-90-days"]
    assert rotation["FailingResources"] == 2 and set(json.loads(rotation["Users"])) == {"alice", "bob"}
    assert set(json.loads(rotation["Credentials"])) == {"AKIA...MPLE"}  # masked ids only
    assert (rotation["UserName"], rotation["UserArn"]) == ("alice", generated.arn(NOISY, "alice"))
    assert rotation["AccountArn"] == f"arn:aws:iam::{NOISY}:root" and rotation["Stale"] is False
    root = by_check["root-access-key"]
    assert (root["UserName"], root["UserArn"]) == ("root", f"arn:aws:iam::{NOISY}:root")
    assert by_check["console-mfa"]["Users"] == '["alice"]'


def test_every_rule_query_is_this_query_narrowed_to_its_check() -> None:
    for rule in rules.analytic_rules():
        if rule.query == rules.PER_ACCOUNT_QUERY:
            assert rule.text().endswith(f'| where ControlId == "{rule.name}"\n')
