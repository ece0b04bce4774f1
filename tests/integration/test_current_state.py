"""The dashboards show the estate as it is now: several runs of the real collector over an estate that changes
between them (keys deleted, deactivated and rotated, a user deleted, a console user created with a key), and
one partial run. Every key and user query, run on duckdb-kql with the workspace functions registered, must
equal what the latest complete snapshot implies (sandbox/expected.py, computed from moto's objects).
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from keyreport import pipeline
from keyreport.deadline import Deadline
from keyreport.records import mask_key_id, parse_timestamp
from keyreport.settings import Settings
from keyreport.wiring import Wiring
from sandbox.aws_faults import IamFaults
from sandbox.estate import Estate, EstateKey, EstateUser, read_estate
from sandbox.expected import Expected
from sandbox.stack import Stack
from tests.integration.conftest import World, new_world
from tests.integration.test_query_results import Shipped

Check = Callable[[Expected], tuple[Any, ...]]
KEY_QUERIES: dict[str, Check] = {
    "rotation-due": Expected.rotation_due,
    "never-used": Expected.never_used,
    "stale-keys": Expected.stale,
    "inactive-keys": Expected.inactive,
    "root-keys": Expected.root_keys,
    "setup-keys": Expected.setup_keys,
}
USER_QUERIES: dict[str, Check] = {
    "console-without-mfa": Expected.console_without_mfa,
    "inactive-users": Expected.inactive_users,
}


def keys_found(shipped: Shipped, query_id: str) -> Counter[tuple[str, str]]:
    return Counter((r.get("User", "<root_account>"), r["AccessKey"]) for r in shipped.records(query_id))


def keys_expected(keys: tuple[EstateKey, ...]) -> Counter[tuple[str, str]]:
    return Counter((key.user_name, mask_key_id(key.access_key_id)) for key in keys)


def assert_dashboards_show(shipped: Shipped, truth: Expected, *, stale: bool) -> None:
    """Every key and user query, the tiles and the compliance summary against `truth`, snapshot marked or not."""
    for query_id, check in KEY_QUERIES.items():
        assert keys_found(shipped, query_id) == keys_expected(check(truth)), query_id
    for query_id, check in USER_QUERIES.items():
        users: tuple[EstateUser, ...] = check(truth)
        assert sorted(r["User"] for r in shipped.records(query_id)) == sorted(u.name for u in users), query_id
    for query_id, credentials in (("unused-45-days", truth.unused_45()), ("unused-90-days", truth.unused_90())):
        listed = sorted(f"{r['User']} {r['Credential']}" for r in shipped.records(query_id))
        assert listed == list(credentials), query_id
    two = shipped.records("two-active-keys")
    assert sorted(r["User"] for r in two) == sorted(truth.users_with_two_active_keys())
    queries = [*KEY_QUERIES, *USER_QUERIES, "two-active-keys", "unused-45-days", "unused-90-days"]
    listed = [r for q in queries for r in shipped.records(q)]
    assert listed and {r["Stale"] for r in listed} == {stale}
    assert {r["AsOf"] for r in listed} == {truth.run_time}, "every row is of the snapshot shown"
    [tile] = shipped.records("account-compliance")
    assert (tile["Keys"], tile["RotationDue"], tile["SnapshotStale"]) == (
        truth.estate.key_count,
        len(truth.rotation_due()),
        stale,
    )
    summary = {
        r["ControlId"]: (r["Failing"], r["Excepted"], r["Checked"]) for r in shipped.records("compliance-summary")
    }
    assert summary == truth.compliance()
    assert_trends_and_last_use(shipped, truth)


def assert_trends_and_last_use(shipped: Shipped, truth: Expected) -> None:
    """The day's trend points are the day's last complete run; last use counts the keys of the snapshot."""
    day = truth.run_time.replace(hour=0, minute=0, second=0)
    trend = {r["Control"]: r["Failing"] for r in shipped.records("compliance-trend") if r["Day"] == day}
    assert trend == truth.failing_by_control_text()
    [today] = [r for r in shipped.records("rotation-compliance") if r["Day"] == day]
    active = [key for key in truth.estate.keys if key.active]
    assert (today["ActiveKeys"], today["Overdue"]) == (len(active), len(truth.rotation_due()))
    used = Counter((k.last_used_service, k.last_used_region) for k in truth.estate.keys if k.last_used_date)
    assert {(r["Service"], r["Region"]): r["Keys"] for r in shipped.records("last-use-by-service")} == dict(used)


def ship_partial(shipped: Shipped, user: str, code: str) -> pipeline.RunResult:
    """One run in which listing one user's keys fails with IAM error `code`: the run is partial."""
    faults = IamFaults()
    faults.fail_when("ListAccessKeys", code, f"UserName={user}")
    settings = Settings.from_env()
    wiring = Wiring(settings, faults.install(boto3.Session()))
    next_second()
    key = wiring.deployment_key.fingerprint
    result = pipeline.run(settings, wiring.aws, wiring.sink, Deadline(), fingerprint_key=key, spill=wiring.spill)
    shipped.run_ids.add(result.summary.run_id)
    shipped.at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    return result


def next_second() -> None:
    """Runs are told apart by their time (to the second): never start two in the same second."""
    time.sleep(1.05 - datetime.now(UTC).microsecond / 1e6)


def run_complete(shipped: Shipped) -> Expected:
    """One complete run of the real handler; the truth it saw, read back from moto."""
    next_second()
    shipped.ship()
    assert shipped.summary["Status"] == "ok", shipped.summary
    return Expected(read_estate(shipped.world.stack.aws), parse_timestamp(shipped.summary["loggedDate"]))


# -- changes to the estate between runs, through IAM's own API ----------------------------------------


def delete_user(iam: Any, name: str) -> None:
    for key in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    for device in iam.list_mfa_devices(UserName=name)["MFADevices"]:
        iam.deactivate_mfa_device(UserName=name, SerialNumber=device["SerialNumber"])
        iam.delete_virtual_mfa_device(SerialNumber=device["SerialNumber"])
    with contextlib.suppress(iam.exceptions.NoSuchEntityException):
        iam.delete_login_profile(UserName=name)
    iam.delete_user(UserName=name)


def pick(estate: Estate, wanted: Callable[[EstateUser, tuple[EstateKey, ...]], bool], taken: set[str]) -> EstateUser:
    user = next(u for u in estate.users if u.name not in taken and wanted(u, estate.keys_of(u.name)))
    taken.add(user.name)
    return user


def change_the_estate(estate: Estate, truth: Expected, iam: Any) -> dict[str, str]:
    """Delete a key due for rotation, deactivate another, rotate a third, delete a user with keys and create a
    console user with a key; returns what changed, for the messages."""
    taken: set[str] = set()
    due = {key.access_key_id for key in truth.rotation_due()}
    deleted = pick(estate, lambda u, keys: len(keys) == 1 and keys[0].access_key_id in due, taken)
    iam.delete_access_key(UserName=deleted.name, AccessKeyId=deleted.access_key_ids[0])
    deactivated = pick(estate, lambda u, keys: len(keys) == 1 and keys[0].access_key_id in due, taken)
    iam.update_access_key(UserName=deactivated.name, AccessKeyId=deactivated.access_key_ids[0], Status="Inactive")
    rotated = pick(estate, lambda u, keys: len(keys) == 1 and keys[0].access_key_id in due, taken)
    iam.create_access_key(UserName=rotated.name)
    iam.delete_access_key(UserName=rotated.name, AccessKeyId=rotated.access_key_ids[0])
    gone = pick(estate, lambda u, keys: len(keys) == 2 and not u.mfa_active and u.password_enabled, taken)
    delete_user(iam, gone.name)
    iam.create_user(UserName="new.console.user", Path="/new/")
    iam.create_login_profile(UserName="new.console.user", Password="Sandbox-Passw0rd!x")
    iam.create_access_key(UserName="new.console.user")
    return {"deleted": deleted.name, "deactivated": deactivated.name, "rotated": rotated.name, "gone": gone.name}


@dataclass
class Phase:
    """The dashboards' inputs after one run of the history: that run's set of runs, the query clock, the truth."""

    run_ids: frozenset[str]
    at: datetime
    truth: Expected
    result: pipeline.RunResult | None = None  # the partial runs' own result


@dataclass
class History:
    world: World
    changed: dict[str, str]
    unreadable: str
    vanished: str
    phases: dict[str, Phase]

    def shipped(self, phase: str) -> Shipped:
        """The dashboards as they were right after `phase`'s run: its runs' rows, its clock."""
        at = self.phases[phase]
        return Shipped(self.world, set(at.run_ids), at.at, {})


@pytest.fixture(scope="module")
def history(stack: Stack) -> Iterator[History]:
    """Five runs of the real collector over one seeded account, the estate changed between them (built once per
    worker; each phase's dashboards are a test of their own, so xdist runs them side by side):
    first: complete; second: complete after the changes; partial: a third run, partial (one user unreadable);
    fourth: complete; fifth: partial, a user deleted while listed (a complete snapshot)."""
    with pytest.MonkeyPatch.context() as patch:
        world = new_world(stack, patch)
        fresh = Shipped(world, set(), datetime.now(UTC), {})
        phases: dict[str, Phase] = {}

        def record(name: str, truth: Expected, result: pipeline.RunResult | None = None) -> None:
            phases[name] = Phase(frozenset(fresh.run_ids), fresh.at, truth, result)

        iam = world.stack.aws.client("iam")
        first = run_complete(fresh)
        record("first", first)
        changed = change_the_estate(first.estate, first, iam)
        second = run_complete(fresh)
        record("second", second)
        iam.delete_access_key(
            UserName="new.console.user", AccessKeyId=second.estate.keys_of("new.console.user")[0].access_key_id
        )
        unreadable = next(u.name for u in second.estate.users if second.estate.keys_of(u.name))
        record("partial", second, ship_partial(fresh, unreadable, "AccessDenied"))
        fourth = run_complete(fresh)
        record("fourth", fourth)
        vanished = next(u.name for u in fourth.estate.users if len(fourth.estate.keys_of(u.name)) == 2)
        fifth = ship_partial(fresh, vanished, "NoSuchEntity")
        without = replace(
            fourth.estate,
            users=tuple(u for u in fourth.estate.users if u.name != vanished),
            keys=tuple(k for k in fourth.estate.keys if k.user_name != vanished),
        )
        record("fifth", Expected(without, fifth.summary.started.replace(microsecond=0)), fifth)
        yield History(world, changed, unreadable, vanished, phases)


def test_the_dashboards_show_the_first_complete_run(history: History) -> None:
    assert_dashboards_show(history.shipped("first"), history.phases["first"].truth, stale=False)


def test_changes_reach_the_dashboards_at_the_next_complete_run(history: History) -> None:
    shipped, changed = history.shipped("second"), history.changed
    assert_dashboards_show(shipped, history.phases["second"].truth, stale=False)
    rotation = {user for user, _ in keys_found(shipped, "rotation-due")}
    assert not rotation & {changed["deleted"], changed["deactivated"], changed["rotated"], changed["gone"]}
    assert changed["deactivated"] in {r["User"] for r in shipped.records("inactive-keys")}
    assert changed["gone"] not in {r["User"] for r in shipped.records("console-without-mfa")}
    assert [r["User"] for r in shipped.records("setup-keys")] == ["new.console.user"]
    assert "new.console.user" in {r["User"] for r in shipped.records("console-without-mfa")}


def test_a_partial_run_keeps_the_last_complete_snapshot(history: History) -> None:
    # A third run reads a changed estate but is partial: the dashboards keep the second run's snapshot. It is not
    # stale (Stale is measured against the clock: the snapshot is minutes old); the partial run is named instead.
    phase, shipped = history.phases["partial"], history.shipped("partial")
    assert phase.result is not None
    partial = phase.result.summary
    assert partial.status == "partial" and partial.errors == [f"user {history.unreadable}: AccessDenied"]
    assert_dashboards_show(shipped, history.phases["second"].truth, stale=False)
    [latest] = shipped.records("ingestion-last-run")
    assert (latest["Status"], latest["Complete"]) == ("partial", False)
    assert shipped.records("accounts-stale") == [] and shipped.records("ingestion-arriving") == []


def test_the_next_complete_run_shows_the_estate_as_it_is_again(history: History) -> None:
    shipped = history.shipped("fourth")
    assert_dashboards_show(shipped, history.phases["fourth"].truth, stale=False)
    assert shipped.records("setup-keys") == []


def test_a_user_deleted_while_listed_is_skipped_and_the_snapshot_stays_complete(history: History) -> None:
    # A user deleted while the run lists it is skipped without an error: partial, yet a complete snapshot.
    phase = history.phases["fifth"]
    assert phase.result is not None
    fifth = phase.result.summary
    assert (fifth.status, fifth.users_skipped, fifth.errors) == ("partial", 1, [])
    assert_dashboards_show(history.shipped("fifth"), phase.truth, stale=False)
