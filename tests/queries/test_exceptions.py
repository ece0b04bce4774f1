"""Owners and exceptions on KeyReport_Findings and KeyReport_Exceptions, on the local engine (duckdb-kql).

One account's complete run, made by keyreport's own record code, whose user rows carry the owner and the parsed
keyreport-exception tags as the collector ships them (Owner, Exceptions), plus rows of the KeyReportExceptions
watchlist. Each case sits on an edge: a key's exception and the user's other key, an exception for `all` and a
check of the user itself, the last day of an exception and the day after, a refused exception next to the finding
it fails to except, the clock moved past an expiry.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keyreport import queries
from keyreport.columns import KEY_COLUMNS, RUN_COLUMNS, USER_COLUMNS, stream_record
from keyreport.records import (
    ROOT_USER,
    KeyRecord,
    PasswordPolicy,
    RunSummary,
    UserRecord,
    key_row,
    summary_row,
    user_row,
)
from sandbox.local_kql import LocalWorkspace, StoredTable
from sandbox.watchlist import WatchlistStore, sentinel_functions
from scripts import render_alerts
from tests import schema
from tests.queries.test_findings import FINGERPRINT_KEY, RUN, ago, masked

NOW = RUN + timedelta(hours=1)
ACCOUNT = "111111111111"
KEY_9 = f"AKIA{9:016d}"  # the key ids of test_findings: masked(n) is this one masked
RUN_ID = str(uuid.uuid4())


def day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def exception(
    control: str, until: str, *, key: str = "", tag: str = "keyreport-exception", problem: str = ""
) -> dict[str, str]:
    value = f"{control}{f' key={key}' if key else ''} until={until} by=alice@example.com reason=SES SMTP"
    return {"Tag": tag, "Value": value, "Control": control if not problem else "", "Key": key, "Until": until,
            "ApprovedBy": "alice@example.com", "Reason": "SES SMTP", "Problem": problem}  # fmt: skip


# user -> (owner, exceptions as the collector parses them, keys: n -> (status, created, last used))
USERS: dict[str, tuple[str, list[dict[str, str]], dict[int, tuple[str, datetime, datetime | None]]]] = {
    # A user-level exception: the 400-day-old key is excepted from rotation, and only from rotation.
    "ses-smtp": ("alice@example.com", [exception("key-rotation-90-days", day(RUN + timedelta(days=90)))],
                 {1: ("Active", ago(400), ago(50))}),
    # One key excepted from everything: its rotation is excepted; the user's new key (never used for 50 days) and
    # the user's two active keys (a check of the user, not of a key) still fail.
    "rotator": ("payments",
                [exception("all", day(RUN + timedelta(days=30)), key=masked(2), tag="keyreport-exception-old")],
                {2: ("Active", ago(300), ago(1)), 3: ("Active", ago(50), None)}),
    # Lapsed yesterday: excepts nothing, listed expired.
    "lapsed": ("", [exception("key-rotation-90-days", day(RUN - timedelta(days=1)))],
               {4: ("Active", ago(200), ago(1))}),
    # Its last day is today (the run's and the clock's): still excepted.
    "last-day": ("", [exception("key-rotation-90-days", day(RUN))], {5: ("Active", ago(200), ago(1))}),
    # Refused by the collector: excepts nothing, and its own check fails.
    "malformed": ("ops", [exception("key-rotation-90-days", "", problem="no expiry (until=)")],
                  {6: ("Active", ago(200), ago(1))}),
    # Excepted by the watchlist only.
    "wl-user": ("", [], {7: ("Active", ago(200), ago(1))}),
    "wl-long": ("", [], {8: ("Active", ago(200), ago(1))}),
    "plain": ("", [], {9: ("Active", ago(200), ago(1))}),
}  # fmt: skip
WATCHLIST_UPDATED = RUN - timedelta(days=3)
WATCHLIST = [
    # Account, User, Control, Key, Until, ApprovedBy, Reason
    (ACCOUNT, "wl-user", "CIS-2.13", "", day(RUN + timedelta(days=10)), "bob", "vendor integration"),
    (ACCOUNT, "wl-long", "IAM.3", "", day(WATCHLIST_UPDATED + timedelta(days=366)), "bob", "too long"),
    (ACCOUNT, "plain", "CIS-9.99", "", day(RUN + timedelta(days=10)), "bob", "no such check"),
    (ACCOUNT, "plain", "IAM.3", KEY_9, day(RUN + timedelta(days=10)), "", "a full key id, no approver"),
    (ACCOUNT, "<password_policy>", "IAM.7", "", day(RUN + timedelta(days=10)), "bob", "policy from the IdP"),
]


def rows() -> Iterator[tuple[str, dict[str, Any]]]:
    summary = RunSummary(RUN_ID, ACCOUNT, RUN, "test", "stdout", password_policy=PasswordPolicy(present=False))
    run = stream_record(summary_row(summary), RUN_COLUMNS)
    yield schema.RUNS_TABLE, run | {"MaxExceptionDays_d": 365.0, "TagsRead_b": True}
    root = UserRecord(ROOT_USER, f"arn:aws:iam::{ACCOUNT}:root", "/", ago(2000), password_enabled=False)
    yield schema.USERS_TABLE, stream_record(user_row(root, run_time=RUN, run_id=RUN_ID), USER_COLUMNS)
    for name, (owner, exceptions, keys) in USERS.items():
        arn = f"arn:aws:iam::{ACCOUNT}:user/{name}"
        records = [
            KeyRecord(name, arn, f"AKIA{n:016d}", status, made, used, "s3" if used else None, None, False, False)
            for n, (status, made, used) in keys.items()
        ]
        user = UserRecord(name, arn, "/", ago(500), password_enabled=False,
                          active_keys=sum(r.status == "Active" for r in records), keys=len(records))  # fmt: skip
        row = stream_record(user_row(user, run_time=RUN, run_id=RUN_ID), USER_COLUMNS)
        yield schema.USERS_TABLE, row | {"Owner_s": owner, "OwnerTags_s": json.dumps({"owner": owner} if owner else {}),
                                         "Exceptions_s": json.dumps(exceptions)}  # fmt: skip
        for record in records:
            key = key_row(record, run_time=RUN, run_id=RUN_ID, fingerprint_key=FINGERPRINT_KEY)
            yield schema.KEYS_TABLE, stream_record(key, KEY_COLUMNS)


def watchlist() -> WatchlistStore:
    """The KeyReportExceptions watchlist as a SOC would upload it: the CSV of the template's columns."""
    store = WatchlistStore(clock=lambda: WATCHLIST_UPDATED)
    text = io.StringIO()
    csv.writer(text).writerows([("Account", "User", "Control", "Key", "Until", "ApprovedBy", "Reason"), *WATCHLIST])
    store.create("KeyReportExceptions", text.getvalue(), "User")
    return store


@pytest.fixture(scope="module")
def workspace() -> Iterator[LocalWorkspace]:
    stored: dict[str, list[dict[str, Any]]] = {table: [] for table in schema.tables()}
    for table, row in rows():
        stored[table].append(row)
    columns = {name: dict(schema.columns(name)) for name in schema.tables()}
    local = LocalWorkspace(
        (StoredTable(name, columns[name], stored[name]) for name in schema.tables()),
        functions=sentinel_functions(watchlist()),  # the Sentinel solution's KeyReport_WatchlistExceptions
    )
    yield local
    local.close()


@pytest.fixture(scope="module")
def findings(workspace: LocalWorkspace) -> list[dict[str, Any]]:
    return workspace.run("KeyReport_Findings()", now=NOW).records()


@pytest.fixture(scope="module")
def exceptions(workspace: LocalWorkspace) -> list[dict[str, Any]]:
    return workspace.run("KeyReport_Exceptions()", now=NOW).records()


def finding(findings: list[dict[str, Any]], control: str, resource: str) -> dict[str, Any]:
    [row] = [r for r in findings if r["ControlId"] == control and r["Resource"] == resource]
    return row


def test_a_users_exception_excepts_its_check_until_its_day(findings: list[dict[str, Any]]) -> None:
    row = finding(findings, "key-rotation-90-days", f"ses-smtp {masked(1)}")
    assert row["Failing"] and row["Excepted"]
    assert row["ExceptedUntil"] == datetime(2026, 8, 30, tzinfo=UTC)
    assert (row["ExceptionReason"], row["ExceptionApprovedBy"]) == ("SES SMTP", "alice@example.com")
    assert (row["ExceptionSource"], row["ExceptionId"]) == ("tag", "keyreport-exception")
    assert row["Owner"] == "alice@example.com"
    unused = finding(findings, "unused-45-days", f"ses-smtp {masked(1)}")  # another check of the same key
    assert unused["Failing"] and not unused["Excepted"] and unused["ExceptedUntil"] is None


def test_a_keys_exception_does_not_cover_the_users_new_key_nor_the_user(findings: list[dict[str, Any]]) -> None:
    assert finding(findings, "key-rotation-90-days", f"rotator {masked(2)}")["Excepted"]
    new = finding(findings, "unused-45-days", f"rotator {masked(3)}")
    assert new["Failing"] and not new["Excepted"]
    two = finding(findings, "one-active-key", "rotator")
    assert two["Failing"] and not two["Excepted"]
    assert two["Owner"] == "payments"


def test_an_exception_lasts_through_its_last_day_and_lapses_after(
    findings: list[dict[str, Any]], exceptions: list[dict[str, Any]]
) -> None:
    assert finding(findings, "key-rotation-90-days", f"last-day {masked(5)}")["Excepted"]
    lapsed = finding(findings, "key-rotation-90-days", f"lapsed {masked(4)}")
    assert lapsed["Failing"] and not lapsed["Excepted"]
    status = {(r["user_s"], r["ExceptionSource"]): r["Status"] for r in exceptions}
    assert status[("lapsed", "tag")] == "expired" and status[("last-day", "tag")] == "active"


def test_a_refused_exception_excepts_nothing_and_fails_its_own_check(
    findings: list[dict[str, Any]], exceptions: list[dict[str, Any]]
) -> None:
    assert not finding(findings, "key-rotation-90-days", f"malformed {masked(6)}")["Excepted"]
    own = finding(findings, "exception-valid", "malformed tag keyreport-exception")
    assert own["Failing"] and not own["Excepted"] and own["Owner"] == "ops"
    [refused] = [r for r in exceptions if r["user_s"] == "malformed"]
    assert (refused["Status"], refused["Problem"]) == ("refused", "no expiry (until=)")
    valid = finding(findings, "exception-valid", "ses-smtp tag keyreport-exception")
    assert not valid["Failing"]


def test_watchlist_rows_are_judged_by_the_same_rules(
    findings: list[dict[str, Any]], exceptions: list[dict[str, Any]]
) -> None:
    excepted = finding(findings, "key-rotation-90-days", f"wl-user {masked(7)}")
    assert excepted["Excepted"] and excepted["ExceptionSource"] == "watchlist"
    assert excepted["ExceptedUntil"] == datetime(2026, 6, 11, tzinfo=UTC)
    listed = {(r["user_s"], r["Written"]): r for r in exceptions if r["ExceptionSource"] == "watchlist"}
    [long] = [r["Problem"] for (user, _), r in listed.items() if user == "wl-long"]
    assert long.startswith("over-long: Until is 366 days after the row was written; the maximum is 365")
    plain = sorted(r["Problem"] for (user, _), r in listed.items() if user == "plain")
    assert plain == ["Key is a full key id: write it masked, its first 4 and last 4 characters (AKIA...WXYZ)",
                     "unknown check 'CIS-9.99'"]  # fmt: skip
    assert not finding(findings, "key-rotation-90-days", f"wl-long {masked(8)}")["Excepted"]
    assert not finding(findings, "key-rotation-90-days", f"plain {masked(9)}")["Excepted"]
    assert KEY_9 not in json.dumps([r for r in exceptions], default=str), "a full key id is masked"


def test_the_password_policy_is_excepted_by_its_own_name(findings: list[dict[str, Any]]) -> None:
    assert finding(findings, "password-policy-strong", "<password_policy>")["Excepted"]
    assert not finding(findings, "password-policy-length", "<password_policy>")["Excepted"]


def test_passing_rows_are_never_excepted(findings: list[dict[str, Any]]) -> None:
    assert not [r for r in findings if r["Excepted"] and not r["Failing"]]


def test_the_clock_moved_past_the_expiry_brings_the_finding_back(workspace: LocalWorkspace) -> None:
    later = workspace.run("KeyReport_Findings()", now=RUN + timedelta(days=12)).records()
    assert not finding(later, "key-rotation-90-days", f"wl-user {masked(7)}")["Excepted"]
    assert finding(later, "key-rotation-90-days", f"ses-smtp {masked(1)}")["Excepted"]


def test_the_alert_rules_skip_excepted_findings(workspace: LocalWorkspace) -> None:
    by_control = {alert.control: alert for alert in render_alerts.ALERTS if alert.control}
    rotation = by_control["key-rotation-90-days"].library_query().text
    [row] = workspace.run(rotation, now=NOW).records()
    failing = {"lapsed", "malformed", "wl-long", "plain"}
    assert row["FailingResources"] == len(failing)
    assert set(json.loads(row["Users"])) == failing
    assert set(json.loads(row["Owners"])) == {"(no owner)", "ops"}


def test_the_library_lists_exceptions_expiring_and_findings_by_owner(workspace: LocalWorkspace) -> None:
    library = queries.library()
    listed = workspace.run(library["exceptions"].text, now=NOW).records()
    assert [r["Status"] for r in listed] == ["refused"] * 4 + ["expired"] + ["active"] * 5
    expiring = workspace.run(library["exceptions-expiring"].text, now=NOW).records()
    expected = {("wl-user", 10), ("last-day", 0), ("<password_policy>", 10)}
    assert {(r["User"], r["DaysLeft"]) for r in expiring} == expected
    owners = {r["Owner"]: r for r in workspace.run(library["findings-by-owner"].text, now=NOW).records()}
    assert owners["alice@example.com"]["Excepted"] == 1
    assert owners["payments"]["Failing"] >= 2
    summary = {r["ControlId"]: r for r in workspace.run(library["compliance-summary"].text, now=NOW).records()}
    rotation = summary["key-rotation-90-days"]
    assert (rotation["Failing"], rotation["Excepted"]) == (4, 4)  # ses-smtp, rotator, last-day, wl-user
    assert rotation["Failing"] + rotation["Excepted"] + rotation["Passing"] == rotation["Checked"]
