"""The KQL library executed (duckdb-kql) over the rows the real handler shipped, checked against the estate.

Every query whose header says `local: duckdb-kql` runs here; each result is compared with what the seeded
estate implies, computed independently from moto's objects. `now` is pinned to just after the run, so
ages and thresholds are those of a fixed instant. The workspace holds only the rows of the test's own runs:
the session's collector also keeps every other test's rows.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from keyreport import __version__, queries
from keyreport.deadline import Deadline
from keyreport.records import RunSummary, mask_key_id, parse_timestamp, summary_row
from keyreport.settings import Settings
from keyreport.sinks.base import Table
from keyreport.wiring import Wiring
from sandbox.estate import EstateKey
from sandbox.expected import Expected
from sandbox.local_kql import LocalWorkspace, ResultTable, StoredTable, TimeRange
from sandbox.stack import Stack
from tests.integration.conftest import World, new_world

LIBRARY = queries.library()
SILENT_ACCOUNT = "210987654321"


@dataclass
class Shipped:
    world: World
    run_ids: set[str]
    at: datetime  # the query clock: just after the last run
    summary: dict[str, Any]
    _loaded: tuple[frozenset[str], LocalWorkspace] | None = None
    _results: dict[tuple[str, frozenset[str], datetime], ResultTable] = field(default_factory=dict)

    def ship(self) -> Shipped:
        """Run the real handler once more."""
        self.summary = self.world.invoke()
        self.run_ids.add(self.summary["RunId"])
        self.at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
        return self

    def run(self, query_id: str) -> ResultTable:
        """The query over this test's runs, in the query's default time range ending at `at`: evaluated once per set
        of runs and `at` (the workspace is a snapshot of those runs' rows), however many assertions read it."""
        key = (query_id, frozenset(self.run_ids), self.at)
        if key not in self._results:
            query = LIBRARY[query_id]
            window = TimeRange.last(query.timespan, self.at)
            self._results[key] = self.workspace().run(query.text, time_range=window, now=self.at)
        return self._results[key]

    def workspace(self) -> LocalWorkspace:
        """The stored rows of this test's runs, loaded once until another run is added."""
        loaded = frozenset(self.run_ids)
        if self._loaded is None or self._loaded[0] != loaded:
            collector = self.world.stack.collector
            if self._loaded is not None:
                self._loaded[1].close()
            workspace = LocalWorkspace(
                StoredTable(name, collector.columns(name), [r for r in collector.rows(name) if r["RunId_g"] in loaded])
                for name in collector.tables()
            )
            self._loaded = (loaded, workspace)
        return self._loaded[1]

    def records(self, query_id: str) -> list[dict[str, Any]]:
        return self.run(query_id).records()

    @property
    def expected(self) -> Expected:
        """What the estate implies as the last run saw it (ages in whole days at its run time)."""
        return Expected(self.world.estate, parse_timestamp(self.summary["loggedDate"]))


def pairs(keys: tuple[EstateKey, ...]) -> Counter[tuple[str, str]]:
    return Counter((key.user_name, mask_key_id(key.access_key_id)) for key in keys)


def shipped(world: World) -> Shipped:
    return Shipped(world, set(), datetime.now(UTC), {}).ship()


@pytest.fixture(scope="module")
def one_run(stack: Stack) -> Iterator[Shipped]:
    """One seeded account and one run, shared by the tests that only read it."""
    with pytest.MonkeyPatch.context() as patch:
        yield shipped(new_world(stack, patch))


@pytest.fixture
def fresh(world: World) -> Shipped:
    return Shipped(world, set(), datetime.now(UTC), {})


def test_rotation_due_is_exactly_the_active_keys_over_90_whole_days(one_run: Shipped) -> None:
    expected = one_run.expected
    records = one_run.records("rotation-due")
    assert Counter((r["User"], r["AccessKey"]) for r in records) == pairs(expected.rotation_due())
    ages = [r["AgeDays"] for r in records]
    assert ages == sorted(ages, reverse=True) and min(ages) == min(expected.age(k) for k in expected.rotation_due())
    assert min(ages) > 90 and all(r["Stale"] is False for r in records)
    near = [k for k in one_run.world.estate.keys if timedelta(days=90) < k.age(expected.run_time) < timedelta(days=91)]
    listed = {r["AccessKey"] for r in records}
    assert near and not listed & {mask_key_id(k.access_key_id) for k in near}, "90.5 days is 90 whole days: not over 90"


@pytest.mark.parametrize("query_id", ["never-used", "stale-keys", "inactive-keys", "root-keys"])
def test_never_used_stale_inactive_and_root(one_run: Shipped, query_id: str) -> None:
    expected = {
        "never-used": one_run.expected.never_used,
        "stale-keys": one_run.expected.stale,
        "inactive-keys": one_run.expected.inactive,
        "root-keys": one_run.expected.root_keys,
    }[query_id]()
    found = Counter((r.get("User", "<root_account>"), r["AccessKey"]) for r in one_run.records(query_id))
    assert expected, f"{query_id}: the seeded estate should have some"
    assert found == pairs(expected)


def test_never_used_keys_within_the_grace_period_are_not_listed(one_run: Shipped) -> None:
    fresh = [k for k in one_run.world.estate.never_used() if one_run.expected.age(k) <= 7]
    assert fresh, "the seeded estate has never-used keys created this week"
    listed = {r["AccessKey"] for r in one_run.records("never-used")}
    assert not listed & {mask_key_id(k.access_key_id) for k in fresh}


def test_users_with_two_active_keys(one_run: Shipped) -> None:
    records = one_run.records("two-active-keys")
    assert sorted(r["User"] for r in records) == sorted(one_run.expected.users_with_two_active_keys())
    assert all(r["ActiveKeys"] == 2 for r in records)


def test_last_use_by_service_and_region(one_run: Shipped) -> None:
    records = one_run.records("last-use-by-service")
    used = [key for key in one_run.world.estate.keys if key.last_used_date is not None]
    expected = Counter((key.last_used_service, key.last_used_region) for key in used)
    assert {(r["Service"], r["Region"]): r["Keys"] for r in records} == dict(expected)
    assert max(r["MostRecentUse"] for r in records) == max(key.last_used_date for key in used if key.last_used_date)


def test_account_compliance_tiles(one_run: Shipped) -> None:
    estate, truth = one_run.world.estate, one_run.expected
    [tile] = one_run.records("account-compliance")
    active, due = len(estate.active()), len(truth.rotation_due())
    assert tile["Account"] == estate.account_id and tile["SnapshotStale"] is False
    assert (tile["Keys"], tile["ActiveKeys"], tile["RotationDue"]) == (estate.key_count, active, due)
    expected = (len(truth.never_used()), len(truth.stale()), len(truth.root_keys()))
    assert (tile["NeverUsed"], tile["Stale"], tile["RootKeys"]) == expected
    assert tile["CompliancePct"] == round(100.0 * (active - due) / active, 1)


def test_rotation_compliance_counts_ages_at_run_time(one_run: Shipped) -> None:
    estate = one_run.world.estate
    [today] = one_run.records("rotation-compliance")
    overdue = len(one_run.expected.rotation_due())
    assert (today["Account"], today["ActiveKeys"], today["Overdue"]) == (
        estate.account_id,
        len(estate.active()),
        overdue,
    )


def test_ingestion_health_after_one_run(one_run: Shipped) -> None:
    estate, summary = one_run.world.estate, one_run.summary
    [last] = one_run.records("ingestion-last-run")
    assert (last["Account"], last["Status"], last["Keys"], last["Shipped"]) == (
        estate.account_id,
        "ok",
        estate.key_count,
        estate.key_count,
    )
    assert str(last["RunId"]) == summary["RunId"] and last["Version"] == __version__ and 0 <= last["HoursAgo"] < 0.1
    [per_run] = one_run.records("ingestion-records-per-run")
    assert per_run["KeysArrived"] == per_run["KeysAnnounced"] == estate.key_count
    assert per_run["UsersArrived"] == per_run["UsersAnnounced"] > 0
    assert per_run["Missing"] == 0 and per_run["Complete"] is True
    assert one_run.records("ingestion-stopped") == []
    assert one_run.records("ingestion-recent-runs") == [{"Runs": 1}]  # the collector-stopped rule stays quiet


def test_the_original_key_age_query_runs_on_our_rows(one_run: Shipped) -> None:
    at = one_run.at
    records = one_run.records("original-key-age")
    calendar_old = tuple(key for key in one_run.world.estate.keys if (at.date() - key.create_date.date()).days > 90)
    assert Counter((r["User"], r["AccessKey"]) for r in records) == pairs(calendar_old)
    ages = [r["Age"] for r in records]
    assert ages == sorted(ages, reverse=True)  # `sort by` is descending by default


def test_a_second_run_doubles_naive_counts_but_not_the_deduplicated_ones(fresh: Shipped) -> None:
    twice = fresh.ship().ship()
    estate, at = twice.world.estate, twice.at
    rotation = Counter((r["User"], r["AccessKey"]) for r in twice.records("rotation-due"))
    assert rotation == pairs(twice.expected.rotation_due())
    naive = Counter((r["User"], r["AccessKey"]) for r in twice.records("original-key-age"))
    calendar_old = tuple(key for key in estate.keys if (at.date() - key.create_date.date()).days > 90)
    assert naive == pairs(calendar_old) + pairs(calendar_old)  # the original query counts records, not keys
    [tile] = twice.records("account-compliance")
    assert tile["Keys"] == estate.key_count
    days = twice.records("rotation-compliance")
    assert [d["ActiveKeys"] for d in days] == [len(estate.active())] * len({d["Day"] for d in days})
    runs = twice.records("ingestion-records-per-run")
    assert len(runs) == 2 and all(r["KeysArrived"] == r["KeysAnnounced"] == estate.key_count for r in runs)


def test_an_account_that_stopped_reporting_is_listed(fresh: Shipped) -> None:
    # A run summary of another account from 30 hours ago, shipped through the real sink (signed POST).
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=30)
    silent = RunSummary(
        str(uuid.uuid4()), SILENT_ACCOUNT, started, __version__, "data_collector", users=2, keys=3, shipped=3
    )
    sink = Wiring(Settings.from_env(), boto3.Session()).sink
    assert sink.send(Table.RUNS, [summary_row(silent)], Deadline()).shipped == 1
    fresh.run_ids.add(silent.run_id)
    fresh.ship()
    stopped = {r["Account"]: r for r in fresh.records("ingestion-stopped")}
    assert set(stopped) == {SILENT_ACCOUNT}
    assert stopped[SILENT_ACCOUNT]["LastRun"] == started and stopped[SILENT_ACCOUNT]["LastRunStatus"] == "ok"
    assert 30 <= stopped[SILENT_ACCOUNT]["HoursSilent"] < 30.1
    # Only the fresh run is within the cadence: the silent account's 30-hour-old run is not counted.
    assert fresh.records("ingestion-recent-runs") == [{"Runs": 1}]
    last_runs = {r["Account"]: r["Status"] for r in fresh.records("ingestion-last-run")}
    assert last_runs == {SILENT_ACCOUNT: "ok", fresh.world.estate.account_id: "ok"}
