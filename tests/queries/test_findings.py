"""KeyReport_Findings on a crafted estate, on the local engine (duckdb-kql): every check fails exactly the resources
the benchmarks' boundaries say, passing rows included.

The rows are made by keyreport's own record code (records.py -> columns.py, as the Logs Ingestion sink ships
them) for one complete run per account at RUN; each case sits on an edge: 44/45/89/90/91 days, a password never
used, a key created a second before the run, an inactive old key, two active keys, the root user with and without
keys and MFA, a missing, weak and strong password policy, a posture IAM would not tell.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keyreport.columns import KEY_COLUMNS, RUN_COLUMNS, USER_COLUMNS, stream_record
from keyreport.queries import compliance
from keyreport.records import (
    ROOT_USER,
    KeyRecord,
    PasswordPolicy,
    RunSummary,
    UserRecord,
    key_row,
    mask_key_id,
    summary_row,
    user_row,
)
from sandbox.local_kql import LocalWorkspace, StoredTable
from tests import schema

RUN = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
FINGERPRINT_KEY = b"k" * 32
STRONG = PasswordPolicy(True, 14, 24, True, True, True, True, 90)


def ago(days: float = 0, seconds: float = 0) -> datetime:
    return RUN - timedelta(days=days, seconds=seconds)


@dataclass
class Account:
    """One account's complete run: its users (with keys) and root user, and its password policy."""

    account_id: str
    policy: PasswordPolicy | None
    root: UserRecord
    root_keys: list[KeyRecord] = field(default_factory=list)
    users: list[tuple[UserRecord, list[KeyRecord]]] = field(default_factory=list)
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def arn(self, name: str) -> str:
        return f"arn:aws:iam::{self.account_id}:user/{name}"

    def user(self, name: str, *, created: datetime, password: bool = False, mfa: bool = True, **more: Any) -> None:
        keys = [
            KeyRecord(name, self.arn(name), key_id, status, made, used, "s3" if used else None, None, password, mfa)
            for key_id, status, made, used in more.pop("keys", [])
        ]
        record = UserRecord(
            name,
            self.arn(name),
            "/",
            created,
            password_enabled=password,
            password_last_used=more.pop("signed_in", None),
            password_last_changed=created if password else None,
            mfa_active=mfa,
            active_keys=sum(k.status == "Active" for k in keys),
            keys=len(keys),
        )
        self.users.append((record, keys))

    def rows(self) -> Iterator[tuple[str, dict[str, Any]]]:
        summary = RunSummary(self.run_id, self.account_id, RUN, "test", "stdout", password_policy=self.policy)
        if self.policy is None:
            summary.posture_not_read = ["GetAccountPasswordPolicy: AccessDenied"]
        yield schema.RUNS_TABLE, stream_record(summary_row(summary), RUN_COLUMNS)
        for record, keys in [(self.root, self.root_keys), *self.users]:
            yield schema.USERS_TABLE, stream_record(user_row(record, run_time=RUN, run_id=self.run_id), USER_COLUMNS)
            for key in keys:
                row = key_row(key, run_time=RUN, run_id=self.run_id, fingerprint_key=FINGERPRINT_KEY)
                yield schema.KEYS_TABLE, stream_record(row, KEY_COLUMNS)


def root(account_id: str, **fields: Any) -> UserRecord:
    keys = fields.pop("keys", 0)
    return UserRecord(
        ROOT_USER, f"arn:aws:iam::{account_id}:root", "/", ago(2000), active_keys=keys, keys=keys, **fields
    )


def key(n: int, status: str, created: datetime, used: datetime | None) -> tuple[str, str, datetime, datetime | None]:
    return (f"AKIA{n:016d}", status, created, used)


def masked(n: int) -> str:
    return mask_key_id(f"AKIA{n:016d}")


def estate() -> list[Account]:
    # A: the IAM user edges; root with an active key and virtual MFA, no password policy.
    a = Account(
        "111111111111",
        PasswordPolicy(present=False),
        root("111111111111", password_enabled=True, mfa_active=True, hardware_mfa=False, keys=1,
             last_activity=ago(6, -60)),
    )  # fmt: skip
    a.root_keys.append(
        KeyRecord(ROOT_USER, a.root.user_arn, "root:1", "Active", ago(900), ago(6, -60), "s3", "us-east-1", None, True)
    )
    a.user("pw44", created=ago(300), password=True, signed_in=ago(44))
    a.user("pw45", created=ago(300), password=True, signed_in=ago(45))
    a.user("pw89", created=ago(300), password=True, signed_in=ago(89))
    a.user("pw90", created=ago(300), password=True, signed_in=ago(90))
    a.user("pw-never-50", created=ago(50), password=True, mfa=False)  # never signed in: counted from creation
    a.user("pw-never-44", created=ago(44, seconds=-5), password=True)
    a.user("key44", created=ago(400), keys=[key(1, "Active", ago(400), ago(44))])
    a.user("key45", created=ago(400), keys=[key(2, "Active", ago(400), ago(45))])
    a.user("key89", created=ago(89), keys=[key(3, "Active", ago(89), ago(89))])
    a.user("key90", created=ago(90), keys=[key(4, "Active", ago(90), ago(90))])
    a.user("key91", created=ago(91), keys=[key(5, "Active", ago(91), ago(1))])
    a.user("never45", created=ago(45), keys=[key(6, "Active", ago(45), None)])  # never used: from creation
    a.user("fresh", created=ago(0, 1), password=True, keys=[key(7, "Active", ago(0, 1), None)])  # at setup
    a.user("inactive-old", created=ago(400), keys=[key(8, "Inactive", ago(400), None)])
    a.user("two", created=ago(10), keys=[key(9, "Active", ago(10), ago(1)), key(10, "Active", ago(2), ago(1))])
    a.user("one-of-two", created=ago(10), keys=[key(11, "Active", ago(10), ago(1)), key(12, "Inactive", ago(2), None)])
    a.user("nothing", created=ago(500))  # no password, no key: nothing of it is unused
    a.user("signs-in-key-idle", created=ago(300), password=True, signed_in=ago(1),
           keys=[key(13, "Active", ago(80), ago(200, -1))])  # fmt: skip
    a.user("idle-pw-key-daily", created=ago(300), password=True, signed_in=ago(200),
           keys=[key(14, "Active", ago(80), ago(0, 3600))])  # fmt: skip
    a.user("late-key", created=ago(30), password=True, keys=[key(15, "Active", ago(28), None)])  # not at setup
    # B: root without keys, hardware MFA, used 7 days ago; a strong policy.
    b = Account(
        "222222222222",
        STRONG,
        root("222222222222", password_enabled=True, mfa_active=True, hardware_mfa=True, last_activity=ago(7)),
    )
    # C: root without any credential (centralized root access); a policy a bit short of CIS.
    c = Account(
        "333333333333",
        PasswordPolicy(True, 13, 23, True, True, True, True),
        root("333333333333", password_enabled=False, mfa_active=False, hardware_mfa=False),
    )
    # D: root with a password and no MFA; the posture could not be read (no policy row, hardware MFA unknown).
    d = Account("444444444444", None, root("444444444444", password_enabled=True, mfa_active=False))
    e = Account(  # E: a policy strong for CIS but without symbols (Security Hub IAM.7)
        "555555555555",
        PasswordPolicy(True, 20, 24, False, True, True, True),
        root("555555555555", password_enabled=None, mfa_active=True, hardware_mfa=True),
    )
    return [a, b, c, d, e]


RESOURCES_A = {
    "pw44 password", "pw45 password", "pw89 password", "pw90 password", "pw-never-50 password",
    "pw-never-44 password", "fresh password", "signs-in-key-idle password", "idle-pw-key-daily password",
    "late-key password",
}  # fmt: skip
KEY_USERS = {1: "key44", 2: "key45", 3: "key89", 4: "key90", 5: "key91", 6: "never45", 7: "fresh", 9: "two",
             10: "two", 11: "one-of-two", 13: "signs-in-key-idle", 14: "idle-pw-key-daily", 15: "late-key"}  # fmt: skip
ACTIVE_KEYS = {f"{user} {masked(n)}" for n, user in KEY_USERS.items()}
POLICY = "<password_policy>"

# check -> (failing resources, every resource checked), per account id where it matters.
# fmt: off
EXPECTED: dict[str, tuple[set[str], set[str]]] = {
    "unused-45-days": (
        {"pw45 password", "pw89 password", "pw90 password", "pw-never-50 password", "idle-pw-key-daily password",
         f"key45 {masked(2)}", f"key89 {masked(3)}", f"key90 {masked(4)}", f"never45 {masked(6)}",
         f"signs-in-key-idle {masked(13)}"},
        RESOURCES_A | ACTIVE_KEYS,
    ),
    "unused-90-days": (
        {"pw90 password", "idle-pw-key-daily password", f"key90 {masked(4)}", f"signs-in-key-idle {masked(13)}"},
        RESOURCES_A | ACTIVE_KEYS,
    ),
    # 89, 90 days old: within "90 days or less"; 91 fails (and the 400-day-old keys of key44, key45).
    "key-rotation-90-days": ({f"key91 {masked(5)}", f"key44 {masked(1)}", f"key45 {masked(2)}"}, ACTIVE_KEYS),
    "console-mfa": ({"pw-never-50 password"}, RESOURCES_A),
    "setup-key": (
        {f"fresh {masked(7)}"},
        {f"fresh {masked(7)}", f"signs-in-key-idle {masked(13)}", f"idle-pw-key-daily {masked(14)}",
         f"late-key {masked(15)}"},
    ),
    "one-active-key": (
        {"two"},
        {"pw44", "pw45", "pw89", "pw90", "pw-never-50", "pw-never-44", "key44", "key45", "key89", "key90", "key91",
         "never45", "fresh", "inactive-old", "two", "one-of-two", "nothing", "signs-in-key-idle",
         "idle-pw-key-daily", "late-key"},
    ),
}
# fmt: on
# Root and policy checks: account -> failing (True/False), or absent when not checked.
ACCOUNT_CHECKS: dict[str, dict[str, bool]] = {
    "root-access-key": {
        "111111111111": True,
        "222222222222": False,
        "333333333333": False,
        "444444444444": False,
        "555555555555": False,
    },
    "root-mfa": {
        "111111111111": False,
        "222222222222": False,
        "333333333333": False,
        "444444444444": True,
        "555555555555": False,
    },
    "root-hardware-mfa": {
        "111111111111": True,
        "222222222222": False,
        "333333333333": False,
        "555555555555": False,
    },  # D: unknown, no row
    "root-recent-use": {
        "111111111111": True,
        "222222222222": False,
        "333333333333": False,
        "444444444444": False,
        "555555555555": False,
    },
    "password-policy-length": {
        "111111111111": True,
        "222222222222": False,
        "333333333333": True,
        "555555555555": False,
    },
    "password-policy-reuse": {"111111111111": True, "222222222222": False, "333333333333": True, "555555555555": False},
    "password-policy-strong": {
        "111111111111": True,
        "222222222222": False,
        "333333333333": False,
        "555555555555": True,
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def findings() -> list[dict[str, Any]]:
    rows: dict[str, list[dict[str, Any]]] = {table: [] for table in schema.tables()}
    for account in estate():
        for table, row in account.rows():
            rows[table].append(row)
    workspace = LocalWorkspace(StoredTable(name, schema.columns(name), rows[name]) for name in schema.tables())
    try:
        return workspace.run("KeyReport_Findings()", now=RUN + timedelta(hours=1)).records()
    finally:
        workspace.close()


def of(findings: list[dict[str, Any]], control: str, account: str | None = None) -> list[dict[str, Any]]:
    return [r for r in findings if r["ControlId"] == control and account in (None, r["account_number_s"])]


@pytest.mark.parametrize("control", sorted(EXPECTED))
def test_each_credential_check_fails_exactly_the_resources_at_its_boundary(
    findings: list[dict[str, Any]], control: str
) -> None:
    failing, checked = EXPECTED[control]
    rows = of(findings, control, "111111111111")
    assert {r["Resource"] for r in rows} == checked
    assert {r["Resource"] for r in rows if r["Failing"]} == failing
    assert len(rows) == len(checked), "one row per resource"
    assert not of(findings, control, "222222222222"), "accounts without IAM users have no rows for it"


@pytest.mark.parametrize("control", sorted(ACCOUNT_CHECKS))
def test_root_and_password_policy_checks_per_account(findings: list[dict[str, Any]], control: str) -> None:
    rows = of(findings, control)
    assert {r["account_number_s"]: r["Failing"] for r in rows} == ACCOUNT_CHECKS[control]
    resource = POLICY if control.startswith("password-policy") else ROOT_USER
    assert {r["Resource"] for r in rows} == {resource}
    assert {r["Credential"] for r in rows} == {"policy" if resource == POLICY else "root"}


def test_every_row_names_the_maps_ids_and_severity(findings: list[dict[str, Any]]) -> None:
    controls = compliance.load().controls
    assert {r["ControlId"] for r in findings} == set(controls) - {"exception-valid"}  # no exception in this estate
    for row in findings:
        control = controls[row["ControlId"]]
        assert (row["Control"], row["Severity"]) == (control.text, control.severity)
        assert row["AsOf"] == RUN and row["Stale"] is False
        assert isinstance(row["Failing"], bool)


def test_the_root_user_is_never_judged_as_an_iam_user(findings: list[dict[str, Any]]) -> None:
    judged_as_user = {"unused-45-days", "unused-90-days", "key-rotation-90-days", "console-mfa", "setup-key"}
    assert not [r for r in findings if r["user_s"] == ROOT_USER and r["ControlId"] in judged_as_user]
    assert not [r for r in findings if r["ControlId"] == "one-active-key" and r["user_s"] == ROOT_USER]
