"""The current state against a model: random histories of several accounts, loaded into the local workspace, give
what an independent Python model of "latest complete run by run time, stale against now" says.

A history is a few accounts, each a timeline of account-wide runs and event re-reads of one user, with the IAM estate
changing between them (keys created, used, deactivated, rotated and deleted, users created and deleted), and each
run's rows delivered their own way: on time, in pieces, twice, replayed days late, some lost, the run row lost; runs
ok, partial, failed, spilled; two runs of an account in the same second; accounts that stopped; clocks minutes apart.
Rows are made by keyreport's own record code (records.py -> columns.py); TimeGenerated follows Log Analytics' rule
(the run's own time when within [ingestion - 48 h, ingestion + 24 h], else the ingestion time), and a row ingested
after `now` has not arrived.

The model reads the history, never the KQL: a run (one per RunId) is complete when its inventory was read and its
distinct key and user rows in the workspace are at least those it announced; an account's snapshot is its complete
account-wide run with the greatest run time; a user's rows come from the latest complete re-read of that user newer
than the snapshot, else from the snapshot; Stale and Arriving are judged against `now`. Every current-state function
and the queries built on them must return exactly that, as multisets (a doubled row fails). On failure Hypothesis
prints the (shrunk) history.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from keyreport import queries
from keyreport.columns import KEY_COLUMNS, RUN_COLUMNS, USER_COLUMNS, stream_record
from keyreport.records import (
    ROOT_USER,
    KeyRecord,
    RunSummary,
    UserRecord,
    format_timestamp,
    key_row,
    summary_row,
    user_row,
)
from sandbox.local_kql import LocalWorkspace, TimeRange
from scripts import schema
from tests.queries.generated import FINGERPRINT_KEY, workspace

NOW = datetime(2026, 6, 15, 12, 0, 0, tzinfo=UTC)
STALE_AFTER = timedelta(hours=26)  # KeyReport_Thresholds: StaleAfterHours
ROTATION_DAYS = 90  # KeyReport_Thresholds: RotationDays
TIME_GENERATED_PAST, TIME_GENERATED_FUTURE = timedelta(days=2), timedelta(days=1)
LIBRARY = queries.library()
WINDOW = TimeRange.last(timedelta(days=30), NOW)
ROTATION_CONTROL = "CIS v5.0 1.13, CIS v6.0 2.13, Security Hub IAM.3"  # key-rotation-90-days in KeyReport_Controls
# An example costs one to four seconds of DuckDB (a few tenths per query): few examples in `make test`, many in
# `make soak`. No shrinking: it reruns hundreds of examples (minutes); the failing history is printed as found.
MODEL_SETTINGS = settings(
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --------------------------------------------------------------------------------------------------------------------
# The history: estates, runs, deliveries
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class Key:
    key_id: str
    status: str
    created: datetime
    last_used: datetime | None = None


@dataclass
class User:
    name: str
    created: datetime
    keys: list[Key] = field(default_factory=list)


@dataclass
class Run:
    """One run as the collector made it, and when each of its rows reached the workspace (empty: never, or not yet)."""

    label: str
    account: str
    true_time: datetime  # when it ran, by the ingestion clock
    logged: datetime  # its run time, by its own clock (loggedDate)
    scope: str  # account | user
    kind: str  # ok, spilled, partial, failed, failed-delivery
    keys: list[KeyRecord]
    users: list[UserRecord]
    scope_user: str | None = None
    user_deleted: bool = False
    run_row: list[datetime] = field(default_factory=list)
    key_deliveries: list[list[datetime]] = field(default_factory=list)
    user_deliveries: list[list[datetime]] = field(default_factory=list)
    spilled: int = 0  # key rows spilled (kind spilled) or failed at delivery (kind failed-delivery)
    run_id: str = ""  # from the label: a history replayed by Hypothesis has the same RunIds

    def __post_init__(self) -> None:
        self.run_id = self.run_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"keyreport-model:{self.label}"))

    def summary(self) -> RunSummary:
        spilled = self.spilled if self.kind == "spilled" else 0
        failed = self.spilled if self.kind == "failed-delivery" else 0
        return RunSummary(
            self.run_id,
            self.account,
            self.logged,
            "model",
            "logs_ingestion",
            users=len(self.users),
            keys=len(self.keys),
            shipped=max(0, len(self.keys) - spilled - failed),
            spilled=spilled,
            failed=failed,
            users_not_read=1 if self.kind == "partial" else 0,
            inventory_complete=self.kind != "failed",
            key_rows=len(self.keys),
            user_rows=len(self.users),
            scope=self.scope,
            scope_user=self.scope_user,
            user_deleted=self.user_deleted if self.scope == "user" else None,
        )

    @property
    def status(self) -> str:
        return self.summary().status

    @property
    def inventory_read(self) -> bool:
        return self.summary().inventory_read

    def describe(self) -> str:
        def when(deliveries: list[datetime]) -> str:
            if not deliveries:
                return "-"
            return "+".join(_offset(moment - self.true_time) for moment in deliveries)

        scope = (
            "account"
            if self.scope == "account"
            else f"user {self.scope_user}{' (deleted)' if self.user_deleted else ''}"
        )
        keys = " ".join(f"{k.user_name}/{k.access_key_id[-4:]}:{k.status[0]}@{when(d)}" for k, d in self._keyed())
        users = " ".join(f"{u.user_name}@{when(d)}" for u, d in zip(self.users, self.user_deliveries, strict=True))
        return (
            f"  {self.label} {scope} run {format_timestamp(self.logged)} (true {format_timestamp(self.true_time)})"
            f" {self.kind}/{self.status} read={self.inventory_read} run row@{when(self.run_row)}\n"
            f"      keys [{keys}]\n      users [{users}]"
        )

    def _keyed(self) -> Iterable[tuple[KeyRecord, list[datetime]]]:
        return zip(self.keys, self.key_deliveries, strict=True)


class History:
    """Runs of several accounts (skews: each account's clock against the ingestion clock). Not a dataclass: on a
    failure Hypothesis prints describe() (note()), not 30 kB of dataclass repr."""

    def __init__(self, runs: list[Run], skews: dict[str, timedelta]) -> None:
        self.runs = runs
        self.skews = skews

    def __repr__(self) -> str:
        return f"History({len(self.skews)} accounts, {len(self.runs)} runs: see above)"

    def describe(self) -> str:
        lines = [f"now {format_timestamp(NOW)}; delivery offsets are from the run's true time (- never / not yet)"]
        for account, skew in self.skews.items():
            lines.append(f"account {account} clock {_offset(skew)}")
            lines.extend(
                run.describe() for run in sorted(self.runs, key=lambda r: r.true_time) if run.account == account
            )
        return "\n".join(lines)

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        """The stored rows: one per delivery, TimeGenerated as Log Analytics sets it."""
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in schema.tables()}
        for run in self.runs:
            made = (
                (schema.RUNS_TABLE, stream_record(summary_row(run.summary()), RUN_COLUMNS), run.run_row),
                *(
                    (schema.KEYS_TABLE, stream_record(_key_row(run, k), KEY_COLUMNS), d)
                    for k, d in zip(run.keys, run.key_deliveries, strict=True)
                ),
                *(
                    (schema.USERS_TABLE, stream_record(_user_row(run, u), USER_COLUMNS), d)
                    for u, d in zip(run.users, run.user_deliveries, strict=True)
                ),
            )
            for table, row, deliveries in made:
                for received in deliveries:
                    rows[table].append(row | {"TimeGenerated": format_timestamp(time_generated(run.logged, received))})
        return rows

    def workspace(self) -> LocalWorkspace:
        return workspace([self.tables()])


def time_generated(supplied: datetime, received: datetime) -> datetime:
    """Log Analytics keeps a record's own time within [received - 2 days, received + 1 day], else the ingestion time."""
    if received - TIME_GENERATED_PAST <= supplied <= received + TIME_GENERATED_FUTURE:
        return supplied
    return received


def _key_row(run: Run, record: KeyRecord) -> dict[str, Any]:
    return key_row(record, run_time=run.logged, run_id=run.run_id, fingerprint_key=FINGERPRINT_KEY)


def _user_row(run: Run, record: UserRecord) -> dict[str, Any]:
    return user_row(record, run_time=run.logged, run_id=run.run_id)


def _offset(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    return f"{sign}{hours}h{rest // 60:02d}m{rest % 60:02d}s"


def arn(account: str, user: str) -> str:
    return f"arn:aws:iam::{account}:root" if user == ROOT_USER else f"arn:aws:iam::{account}:user/{user}"


def snapshot(
    account: str, estate: dict[str, User], only: str | None = None
) -> tuple[list[KeyRecord], list[UserRecord]]:
    """What a run reading the estate now produces: every user's row and key rows (or only `only`'s)."""
    keys: list[KeyRecord] = []
    users: list[UserRecord] = []
    for user in estate.values():
        if only is not None and user.name != only:
            continue
        user_arn = arn(account, user.name)
        for k in user.keys:
            used = k.last_used
            keys.append(
                KeyRecord(user.name, user_arn, k.key_id, k.status, k.created, used, "s3" if used else None, None)
            )
        uses = [k.last_used for k in user.keys if k.last_used]
        users.append(
            UserRecord(
                user.name,
                user_arn,
                "/",
                user.created,
                keys=len(user.keys),
                active_keys=sum(k.status == "Active" for k in user.keys),
                last_activity=max(uses, default=None),
            )
        )
    return keys, users


# --------------------------------------------------------------------------------------------------------------------
# The generator (Hypothesis: a failing history shrinks to a small one)
# --------------------------------------------------------------------------------------------------------------------

CHANGES = ("none", "use", "create-key", "deactivate", "rotate", "delete-key", "delete-user", "create-user")
ACCOUNT_KINDS = ("ok", "ok", "spilled", "partial", "failed", "failed-delivery")
USER_KINDS = ("ok", "ok", "failed")
PROFILES = ("on-time", "on-time", "pieces", "duplicates", "late", "drop", "run-row-lost")


class Generator:
    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw
        self.serial = 0

    def integer(self, low: int, high: int) -> int:
        return self.draw(st.integers(low, high))

    def flag(self, one_in: int = 2) -> bool:
        return self.draw(st.integers(0, one_in - 1)) == one_in - 1

    def key_id(self) -> str:
        self.serial += 1
        return f"AKIA{self.serial:016d}"

    def estate(self, root: bool) -> dict[str, User]:
        users = {}
        for index in range(self.integer(1, 3)):
            name = f"u{index}"
            users[name] = User(name, NOW - timedelta(days=400), [self.key(NOW) for _ in range(self.integer(0, 2))])
        if root:
            users[ROOT_USER] = User(
                ROOT_USER, NOW - timedelta(days=900), [Key("root:1", "Active", NOW - timedelta(400))]
            )
        return users

    def key(self, before: datetime) -> Key:
        created = before - timedelta(days=self.integer(0, 200), hours=self.integer(0, 23))
        return Key(self.key_id(), "Active" if self.integer(0, 4) else "Inactive", created)

    def change(self, estate: dict[str, User], at: datetime) -> None:
        kind = self.draw(st.sampled_from(CHANGES))
        names = sorted(name for name in estate if name != ROOT_USER)
        if kind == "create-user":
            name = f"u{self.serial}n"
            estate[name] = User(name, at, [Key(self.key_id(), "Active", at)])
            return
        if not names or kind == "none":
            return
        user = estate[self.draw(st.sampled_from(names))]
        if kind == "delete-user":
            del estate[user.name]
        elif kind in ("create-key", "rotate") and len(user.keys) < 2:
            for old in user.keys if kind == "rotate" else []:
                old.status = "Inactive"
            user.keys.append(Key(self.key_id(), "Active", at))
        elif user.keys:
            k = user.keys[self.integer(0, len(user.keys) - 1)]
            if kind == "use":
                k.last_used = at
            elif kind == "deactivate":
                k.status = "Inactive"
            elif kind == "delete-key":
                user.keys.remove(k)

    def deliveries(self, run: Run) -> None:
        """When each row of `run` reached the workspace, by its delivery profile; none after now."""
        profile = self.draw(st.sampled_from(PROFILES))
        start = run.true_time

        def on_time() -> datetime:
            return start + timedelta(seconds=self.integer(5, 900))

        def late() -> datetime:
            return start + timedelta(hours=self.integer(25, 150), seconds=self.integer(0, 59))

        def row() -> list[datetime]:
            if profile == "pieces":
                return [late() if self.flag() else on_time()]
            if profile == "duplicates":
                return [on_time(), late() if self.flag() else on_time()]
            if profile == "late":
                return [late()]
            if profile == "drop":
                return [] if self.flag(3) else [on_time()]
            return [on_time()]

        run.run_row = [] if profile == "run-row-lost" else [late() if profile == "late" else on_time()]
        if profile == "duplicates":
            run.run_row.append(on_time())
        run.key_deliveries = [row() for _ in run.keys]
        run.user_deliveries = [row() for _ in run.users]
        if run.kind in ("spilled", "failed-delivery") and run.keys:
            # Spilled rows wait for `keyreport replay` (days later, or not yet); failed ones are lost.
            run.spilled = self.integer(1, len(run.keys))
            for index in range(run.spilled):
                replayed = run.kind == "spilled" and self.flag()
                run.key_deliveries[index] = [late()] if replayed else []
        for deliveries in (run.run_row, *run.key_deliveries, *run.user_deliveries):
            deliveries[:] = [moment for moment in deliveries if moment <= NOW]

    def account_history(self, index: int) -> tuple[str, timedelta, list[Run]]:
        account = f"{100000000000 + index * 1111:012d}"
        skew = timedelta(seconds=self.integer(-600, 600))
        estate = self.estate(root=self.flag(3))
        events_only = self.flag(8)
        steps = self.draw(st.lists(st.sampled_from(("account", "account", "user")), min_size=1, max_size=9))
        steps = ["user" if events_only else step for step in steps]
        if not events_only and "account" not in steps:
            steps.append("account")
        stopped = self.flag(4)
        moment = NOW - (
            timedelta(hours=self.integer(27, 120)) if stopped else timedelta(minutes=self.integer(15, 1200))
        )
        times = [moment]
        for _ in steps[1:]:
            moment -= timedelta(minutes=self.integer(1, 2880), seconds=self.integer(0, 59))
            times.append(moment)
        runs: list[Run] = []
        for number, (step, at) in enumerate(zip(steps, reversed(times), strict=True), start=1):
            for _ in range(self.integer(0, 2)):
                self.change(estate, at - timedelta(seconds=1))
            logged = (at + skew).replace(microsecond=0)
            label = f"{account[-4:]}#{number}"
            if step == "account":
                kind = self.draw(st.sampled_from(ACCOUNT_KINDS))
                keys, users = snapshot(account, estate)
                if kind == "partial" and users:  # one user listed, not read
                    skipped = users.pop(self.integer(0, len(users) - 1)).user_name
                    keys = [k for k in keys if k.user_name != skipped]
                run = Run(label, account, at, logged, "account", kind, keys, users)
                runs.append(run)
                if self.flag(6):  # a second run in the same second (a retry, a manual run): the same inventory
                    runs.append(replace(run, label=label + "twin", run_id=""))
            else:
                names = sorted(name for name in estate if name != ROOT_USER)
                deleted = not names or self.flag(3)
                if deleted and names:  # the event was the user's deletion
                    target = self.draw(st.sampled_from(names))
                    del estate[target]
                else:
                    target = self.draw(st.sampled_from(names)) if names else "gone"
                keys, users = snapshot(account, estate, only=target)
                kind = self.draw(st.sampled_from(USER_KINDS))
                runs.append(Run(label, account, at, logged, "user", kind, keys, users, target, deleted))
        for run in runs:
            self.deliveries(run)
        return account, skew, runs


@st.composite
def histories(draw: st.DrawFn) -> History:
    generator = Generator(draw)
    runs: list[Run] = []
    skews: dict[str, timedelta] = {}
    for index in range(draw(st.integers(2, 5))):
        account, skew, account_runs = generator.account_history(index)
        skews[account] = skew
        runs.extend(account_runs)
    return History(runs, skews)


# --------------------------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountState:
    snapshot_ids: frozenset[str]  # the complete account-wide runs at the greatest run time (two in the same second)
    as_of: datetime | None
    latest_run: datetime
    latest_status: frozenset[str]
    arriving: bool
    stale: bool


@dataclass(frozen=True)
class CurrentRow:
    """One current key or user row with where it came from."""

    run: Run
    record: KeyRecord | UserRecord
    stale: bool
    arriving: bool


class Model:
    def __init__(self, history: History) -> None:
        self.history = history
        # The workspace holds a run when its run row arrived; one run per RunId whatever the deliveries.
        self.runs = [run for run in history.runs if run.run_row]
        self.accounts: dict[str, AccountState] = {}
        for account in history.skews:
            state = self._account(account)
            if state is not None:
                self.accounts[account] = state

    @staticmethod
    def arrived(run: Run) -> tuple[int, int]:
        keys = {_fingerprint(run, k) for k, d in zip(run.keys, run.key_deliveries, strict=True) if d}
        users = {u.user_name for u, d in zip(run.users, run.user_deliveries, strict=True) if d}
        return len(keys), len(users)

    def complete(self, run: Run) -> bool:
        summary = run.summary()
        keys, users = self.arrived(run)
        return summary.inventory_read and keys >= summary.key_rows and users >= summary.user_rows

    def _account(self, account: str) -> AccountState | None:
        runs = [r for r in self.runs if r.account == account and r.scope == "account"]
        if not runs:
            return None
        complete = [r for r in runs if self.complete(r)]
        as_of = max((r.logged for r in complete), default=None)
        latest = max(r.logged for r in runs)
        read = [r.logged for r in runs if r.inventory_read]
        return AccountState(
            snapshot_ids=frozenset(r.run_id for r in complete if r.logged == as_of),
            as_of=as_of,
            latest_run=latest,
            latest_status=frozenset(r.status for r in runs if r.logged == latest),
            arriving=bool(read) and (as_of is None or max(read) > as_of),
            stale=as_of is None or as_of < NOW - STALE_AFTER,
        )

    def snapshot_run(self, account: str) -> Run | None:
        state = self.accounts.get(account)
        if state is None or state.as_of is None:
            return None
        # Runs of one second are the same inventory (the generator's twins): either gives the same rows.
        return next(r for r in self.runs if r.run_id in state.snapshot_ids)

    def rereads(self, account: str) -> dict[str, Run]:
        """The latest complete re-read of each user newer than the account's snapshot."""
        state = self.accounts.get(account)
        since = state.as_of if state else None
        latest: dict[str, Run] = {}
        for run in self.runs:
            if run.account != account or run.scope != "user" or not self.complete(run):
                continue
            if since is not None and run.logged <= since:
                continue
            assert run.scope_user is not None
            if run.scope_user not in latest or run.logged > latest[run.scope_user].logged:
                latest[run.scope_user] = run
        return latest

    def current(self, which: str) -> list[CurrentRow]:
        rows: list[CurrentRow] = []
        for account in self.history.skews:
            state = self.accounts.get(account)
            stale, arriving = (state.stale, state.arriving) if state else (True, False)
            rereads = self.rereads(account)
            base = self.snapshot_run(account)
            # A re-read replaces its user's rows of the snapshot (with none when the user was gone).
            sources: list[tuple[Run, set[str | None]]] = [(run, {run.scope_user}) for run in rereads.values()]
            if base is not None:
                kept = {k.user_name for k in base.keys} | {u.user_name for u in base.users}
                sources.append((base, set[str | None](kept - set(rereads))))
            for run, owners in sources:
                records: list[KeyRecord] | list[UserRecord] = run.keys if which == "keys" else run.users
                rows.extend(CurrentRow(run, r, stale, arriving) for r in records if r.user_name in owners)
        return rows

    # What each function and query should return, as comparable tuples.

    def current_keys(self) -> Counter[tuple[Any, ...]]:
        return Counter(
            (
                row.run.account,
                row.record.user_name,
                _fingerprint(row.run, row.record),
                _masked(row.run, row.record),
                row.record.status,
                row.run.logged,
                row.stale,
                row.arriving,
            )
            for row in self.current("keys")
            if isinstance(row.record, KeyRecord)
        )

    def current_users(self) -> Counter[tuple[Any, ...]]:
        return Counter(
            (
                row.run.account,
                row.record.user_name,
                row.run.logged,
                row.stale,
                row.arriving,
                row.record.keys,
                row.record.active_keys,
            )
            for row in self.current("users")
            if isinstance(row.record, UserRecord)
        )

    def latest_runs(self) -> dict[str, AccountState]:
        return dict(self.accounts)

    def key_query(self, keep: Callable[[KeyRecord, int], bool]) -> Counter[tuple[Any, ...]]:
        """Current keys passing `keep(record, age in whole days at run time)`: (account, user, masked id, status,
        age, as of, stale)."""
        found: Counter[tuple[Any, ...]] = Counter()
        for row in self.current("keys"):
            record = row.record
            assert isinstance(record, KeyRecord)
            age = _age(row.run, record)
            if keep(record, age):
                found[(row.run.account, record.user_name, _masked(row.run, record), record.status, age,
                       row.run.logged, row.stale)] += 1  # fmt: skip
        return found

    def day_snapshots(self) -> dict[tuple[datetime, str], Run]:
        """Each account's last complete account-wide run of each day (by run time)."""
        last: dict[tuple[datetime, str], Run] = {}
        for run in self.runs:
            if run.scope != "account" or not self.complete(run):
                continue
            day = run.logged.replace(hour=0, minute=0, second=0)
            if (day, run.account) not in last or run.logged > last[(day, run.account)].logged:
                last[(day, run.account)] = run
        return last

    def rotation_compliance(self) -> Counter[tuple[Any, ...]]:
        found: Counter[tuple[Any, ...]] = Counter()
        for (day, account), run in self.day_snapshots().items():
            active = [k for k in run.keys if k.status == "Active"]
            overdue = sum(_age(run, k) > ROTATION_DAYS for k in active)
            if active:
                found[
                    (day, account, round(100.0 * (len(active) - overdue) / len(active), 1), len(active), overdue)
                ] += 1
        return found

    def rotation_trend(self) -> Counter[tuple[Any, ...]]:
        """compliance-trend's key-rotation-90-days line: per day, the failing active keys (root's aside) of each
        account's last complete inventory of the day that had any."""
        failing: dict[datetime, int] = {}
        for (day, _), run in self.day_snapshots().items():
            active = [k for k in run.keys if k.status == "Active" and k.user_name != ROOT_USER]
            if active:
                failing[day] = failing.get(day, 0) + sum(_age(run, k) > ROTATION_DAYS for k in active)
        return Counter((day, count) for day, count in failing.items())

    def arriving_runs(self) -> Counter[tuple[Any, ...]]:
        """Runs that read everything, newer than their account's snapshot, whose rows are not all here."""
        found: Counter[tuple[Any, ...]] = Counter()
        for run in self.runs:
            summary = run.summary()
            keys, users = self.arrived(run)
            if not summary.inventory_read or (keys >= summary.key_rows and users >= summary.user_rows):
                continue
            state = self.accounts.get(run.account)
            if state is not None and state.as_of is not None and run.logged <= state.as_of:
                continue
            found[(run.logged, run.account, run.scope, run.scope_user or "", run.run_id,
                   summary.key_rows - keys, summary.user_rows - users)] += 1  # fmt: skip
        return found


def _fingerprint(run: Run, record: KeyRecord | UserRecord) -> str:
    assert isinstance(record, KeyRecord)
    return str(_key_row(run, record)["KeyFingerprint"])


def _masked(run: Run, record: KeyRecord | UserRecord) -> str:
    assert isinstance(record, KeyRecord)
    return str(_key_row(run, record)["AccessKeyId"])


def _age(run: Run, record: KeyRecord) -> int:
    assert record.create_date is not None
    return max(0, (run.logged - record.create_date) // timedelta(days=1))


# --------------------------------------------------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------------------------------------------------


def _records(ws: LocalWorkspace, text: str, time_range: TimeRange = WINDOW) -> list[dict[str, Any]]:
    return ws.run(text, time_range=time_range, now=NOW).records()


def _query(ws: LocalWorkspace, query_id: str) -> list[dict[str, Any]]:
    query = LIBRARY[query_id]
    return _records(ws, query.text, TimeRange.last(query.timespan, NOW))


def _diff(name: str, got: Counter[tuple[Any, ...]], want: Counter[tuple[Any, ...]]) -> str:
    extra, missing = got - want, want - got
    lines = [f"{name}: the KQL and the model differ"]
    lines += [f"  KQL only ({n}x): {row}" for row, n in sorted(extra.items(), key=str)]
    lines += [f"  model only ({n}x): {row}" for row, n in sorted(missing.items(), key=str)]
    return "\n".join(lines)


def assert_same(name: str, got: Iterable[tuple[Any, ...]], want: Counter[tuple[Any, ...]]) -> None:
    counted = Counter(got)
    assert counted == want, _diff(name, counted, want)


def check_functions(history: History, ws: LocalWorkspace) -> None:
    model = Model(history)
    keys = _records(ws, "KeyReport_CurrentKeys()")
    assert_same(
        "KeyReport_CurrentKeys",
        ((r["account_number_s"], r["user_s"], r["KeyFingerprint_s"], r["AccessKeyId_s"], r["Status_s"], r["AsOf"],
          r["Stale"], r["Arriving"]) for r in keys),
        model.current_keys(),
    )  # fmt: skip
    users = _records(ws, "KeyReport_CurrentUsers()")
    assert_same(
        "KeyReport_CurrentUsers",
        ((r["account_number_s"], r["user_s"], r["AsOf"], r["Stale"], r["Arriving"], int(r["Keys_d"]),
          int(r["ActiveKeys_d"])) for r in users),
        model.current_users(),
    )  # fmt: skip
    latest = {r["account_number_s"]: r for r in _records(ws, "KeyReport_LatestRuns()")}
    want = model.latest_runs()
    assert sorted(latest) == sorted(want), f"KeyReport_LatestRuns accounts: KQL {sorted(latest)}, model {sorted(want)}"
    for account, state in want.items():
        row = latest[account]
        got = (row["AsOf"], row["LatestRun"], row["Arriving"], row["Stale"])
        assert got == (state.as_of, state.latest_run, state.arriving, state.stale), f"{account}: {row} != {state}"
        assert row["LatestRunStatus"] in state.latest_status, f"{account}: {row} != {state}"
        run_id = None if row["RunId_g"] is None else str(row["RunId_g"])
        assert (run_id in state.snapshot_ids) if state.snapshot_ids else run_id is None, f"{account}: {row} != {state}"


def check_queries(history: History, ws: LocalWorkspace) -> None:
    model = Model(history)

    def keys(query_id: str) -> Iterable[tuple[Any, ...]]:
        rows = _query(ws, query_id)
        return ((r["Account"], r.get("User", ROOT_USER), r["AccessKey"], r.get("Status"), r["AgeDays"], r["AsOf"],
                 r["Stale"]) for r in rows)  # fmt: skip

    def without_status(found: Counter[tuple[Any, ...]]) -> Counter[tuple[Any, ...]]:
        return Counter({(*row[:3], None, *row[4:]): n for row, n in found.items()})

    assert_same(
        "rotation-due",
        keys("rotation-due"),
        without_status(model.key_query(lambda k, age: k.status == "Active" and age > ROTATION_DAYS)),
    )
    assert_same(
        "inactive-keys", keys("inactive-keys"), without_status(model.key_query(lambda k, _: k.status == "Inactive"))
    )
    assert_same("root-keys", keys("root-keys"), model.key_query(lambda k, _: k.user_name == ROOT_USER))

    states = model.latest_runs()
    stale = _query(ws, "accounts-stale")
    assert_same(
        "accounts-stale",
        ((r["Account"], r["AsOf"], r["LatestRun"], r["LatestRunStatus"], r["Arriving"]) for r in stale),
        Counter(
            (account, s.as_of, s.latest_run, next(iter(s.latest_status)), s.arriving)
            for account, s in states.items()
            if s.stale
        ),
    )
    for row in stale:
        if row["AsOf"] is None:
            assert row["HoursSinceSnapshot"] is None, row
        else:
            assert abs(row["HoursSinceSnapshot"] - (NOW - row["AsOf"]) / timedelta(hours=1)) <= 0.05 + 1e-9, row
    assert_same(
        "ingestion-stopped",
        ((r["Account"], r["LastRun"], r["LastRunStatus"], r["AsOf"]) for r in _query(ws, "ingestion-stopped")),
        Counter(
            (account, s.latest_run, next(iter(s.latest_status)), s.as_of)
            for account, s in states.items()
            if s.latest_run < NOW - STALE_AFTER
        ),
    )
    assert_same(
        "rotation-compliance",
        ((r["Day"], r["Account"], r["CompliancePct"], r["ActiveKeys"], r["Overdue"])
         for r in _query(ws, "rotation-compliance")),
        model.rotation_compliance(),
    )  # fmt: skip
    assert_same(
        "ingestion-arriving",
        ((r["RunTime"], r["Account"], r["Scope"], r["User"], str(r["RunId"]), r["KeyRowsMissing"], r["UserRowsMissing"])
         for r in _query(ws, "ingestion-arriving")),
        model.arriving_runs(),
    )  # fmt: skip


def check_trend(history: History, ws: LocalWorkspace) -> list[dict[str, Any]]:
    """compliance-trend's key rotation line against the model; every line, for the caller."""
    model = Model(history)
    trend = _query(ws, "compliance-trend")
    rows = [r for r in trend if r["Control"] == ROTATION_CONTROL]
    assert_same("compliance-trend (key rotation)", ((r["Day"], r["Failing"]) for r in rows), model.rotation_trend())
    return trend


# --------------------------------------------------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------------------------------------------------


def check_history(history: History, *checks: Callable[[History, LocalWorkspace], object]) -> None:
    """Loads one generated history into a workspace and runs the checks on it; the history is noted for failures."""
    note(history.describe())
    ws = history.workspace()
    try:
        for check in checks:
            check(history, ws)
    finally:
        ws.close()


@settings(MODEL_SETTINGS, max_examples=15)
@given(histories())
def test_the_current_state_functions_equal_the_model(history: History) -> None:
    check_history(history, check_functions)


@settings(MODEL_SETTINGS, max_examples=6)
@given(histories())
def test_the_queries_on_the_current_state_equal_the_model(history: History) -> None:
    check_history(history, check_queries)


@pytest.mark.soak
@settings(MODEL_SETTINGS, max_examples=100)
@given(histories())
def test_the_current_state_and_its_queries_equal_the_model_soak(history: History) -> None:
    check_history(history, check_functions, check_queries, check_trend)


# --------------------------------------------------------------------------------------------------------------------
# The five situations of the issue, by name
# --------------------------------------------------------------------------------------------------------------------

A, B = "111111111111", "222222222222"


def estate_of(*keys: tuple[str, str, str, int]) -> dict[str, User]:
    """Users with their keys: (user, key id, status, age in days at NOW)."""
    users: dict[str, User] = {}
    for name, key_id, status, age in keys:
        user = users.setdefault(name, User(name, NOW - timedelta(days=500)))
        user.keys.append(Key(key_id, status, NOW - timedelta(days=age)))
    return users


def on_time(label: str, account: str, at: datetime, estate: dict[str, User], kind: str = "ok") -> Run:
    """An account-wide run at `at` (its clock right) whose rows all arrived a minute later."""
    keys, users = snapshot(account, estate)
    run = Run(label, account, at, at, "account", kind, keys, users)
    run.run_row = [at + timedelta(minutes=1)]
    run.key_deliveries = [[at + timedelta(minutes=1)] for _ in keys]
    run.user_deliveries = [[at + timedelta(minutes=1)] for _ in users]
    return run


def checked(runs: list[Run]) -> tuple[History, LocalWorkspace]:
    history = History(runs, {run.account: timedelta(0) for run in runs})
    ws = history.workspace()
    try:
        check_functions(history, ws)
    except AssertionError as error:
        ws.close()
        raise AssertionError(f"{error}\n{history.describe()}") from None
    return history, ws


def current_keys(ws: LocalWorkspace) -> list[tuple[Any, ...]]:
    rows = _records(ws, "KeyReport_CurrentKeys()")
    return sorted((r["account_number_s"], r["AccessKeyId_s"], r["AsOf"], r["Stale"], r["Arriving"]) for r in rows)


def test_a_late_replay_of_an_old_run_never_becomes_current() -> None:
    # Run 1 (3 days ago) lost its rows and they are replayed an hour ago: TimeGenerated is the replay's time, newer
    # than run 2's rows, but run 2 (yesterday, complete) is later by run time and stays the snapshot.
    old = on_time("A#1", A, NOW - timedelta(days=3), estate_of(("u0", "AKIA0000000000000001", "Active", 100)))
    old.key_deliveries = [[NOW - timedelta(hours=1)]]
    old.run_row = [NOW - timedelta(hours=1)]
    new = on_time("A#2", A, NOW - timedelta(days=1), estate_of(("u0", "AKIA0000000000000002", "Active", 1)))
    _, ws = checked([old, new])
    try:
        assert time_generated(old.logged, NOW - timedelta(hours=1)) == NOW - timedelta(hours=1)
        assert current_keys(ws) == [(A, "AKIA...0002", new.logged, False, False)]
        assert not _query(ws, "rotation-due"), "the replayed run's 100-day-old key is not current"
        [latest] = _records(ws, "KeyReport_LatestRuns()")
        assert (str(latest["RunId_g"]), latest["LatestRun"]) == (new.run_id, new.logged)
    finally:
        ws.close()


def test_a_duplicate_delivery_counts_once() -> None:
    # Run 2's batch was delivered twice, but only its first key made it: the duplicate does not make up for the
    # missing key, so run 1 stays the snapshot (Arriving); run 3 delivered everything twice and is current, once.
    estate = estate_of(("u0", "AKIA0000000000000001", "Active", 10), ("u1", "AKIA0000000000000002", "Active", 10))
    first = on_time("A#1", A, NOW - timedelta(hours=20), estate)
    doubled = on_time("A#2", A, NOW - timedelta(hours=10), estate)
    doubled.key_deliveries = [[doubled.true_time + timedelta(minutes=m) for m in (1, 2)], []]
    _, ws = checked([first, doubled])
    try:
        assert [row[2:] for row in current_keys(ws)] == [(first.logged, False, True)] * 2
        [arriving] = _query(ws, "ingestion-arriving")
        assert (str(arriving["RunId"]), arriving["KeyRowsMissing"]) == (doubled.run_id, 1)
    finally:
        ws.close()
    twice = on_time("A#3", A, NOW - timedelta(hours=2), estate)
    twice.run_row *= 2
    twice.key_deliveries = [deliveries * 2 for deliveries in twice.key_deliveries]
    twice.user_deliveries = [deliveries * 2 for deliveries in twice.user_deliveries]
    _, ws = checked([first, doubled, twice])
    try:
        assert current_keys(ws) == [(A, key, twice.logged, False, False) for key in ("AKIA...0001", "AKIA...0002")]
        assert len(_records(ws, "KeyReport_CurrentUsers()")) == 2
        assert not _query(ws, "ingestion-arriving"), "run 2 is older than the snapshot now"
    finally:
        ws.close()


def test_a_run_whose_key_rows_have_not_arrived_keeps_the_previous_snapshot_arriving() -> None:
    before = estate_of(("u0", "AKIA0000000000000001", "Active", 95))
    after = estate_of(("u0", "AKIA0000000000000002", "Active", 0))  # rotated: the old key deleted
    previous = on_time("A#1", A, NOW - timedelta(hours=20), before)
    arriving = on_time("A#2", A, NOW - timedelta(minutes=30), after)
    arriving.key_deliveries = [[]]  # the run row and the user row are here, the key row is not yet
    history, ws = checked([previous, arriving])
    try:
        assert current_keys(ws) == [(A, "AKIA...0001", previous.logged, False, True)]
        assert [r["User"] for r in _query(ws, "rotation-due")] == ["u0"]
        [latest] = _records(ws, "KeyReport_LatestRuns()")
        assert (latest["AsOf"], latest["LatestRun"], latest["Arriving"]) == (previous.logged, arriving.logged, True)
        [waiting] = _query(ws, "ingestion-arriving")
        assert (str(waiting["RunId"]), waiting["KeyRowsMissing"], waiting["UserRowsMissing"]) == (arriving.run_id, 1, 0)
        check_queries(history, ws)
    finally:
        ws.close()


def test_an_account_that_stopped_stays_listed_stale() -> None:
    stopped = on_time("A#1", A, NOW - timedelta(days=3), estate_of(("u0", "AKIA0000000000000001", "Inactive", 30)))
    failing = on_time("A#2", A, NOW - timedelta(days=2), estate_of(("u0", "AKIA0000000000000001", "Inactive", 30)))
    failing.kind = "failed"  # its last run failed: the snapshot stays run 1
    alive = on_time("B#1", B, NOW - timedelta(hours=3), estate_of(("u0", "AKIA0000000000000002", "Active", 5)))
    history, ws = checked([stopped, failing, alive])
    try:
        assert current_keys(ws) == [
            (A, "AKIA...0001", stopped.logged, True, False),
            (B, "AKIA...0002", alive.logged, False, False),
        ]
        assert [(r["Account"], r["Stale"]) for r in _query(ws, "inactive-keys")] == [(A, True)]
        [stale] = _query(ws, "accounts-stale")
        assert (stale["Account"], stale["AsOf"], stale["LatestRunStatus"]) == (A, stopped.logged, "failed")
        assert stale["HoursSinceSnapshot"] == 72.0
        [silent] = _query(ws, "ingestion-stopped")
        assert (silent["Account"], silent["LastRun"], silent["HoursSilent"]) == (A, failing.logged, 48.0)
        check_queries(history, ws)
    finally:
        ws.close()


def test_two_complete_runs_in_the_same_second_count_once() -> None:
    estate = estate_of(("u0", "AKIA0000000000000001", "Active", 100), ("u1", "AKIA0000000000000002", "Active", 10))
    at = NOW - timedelta(hours=5)
    scheduled = on_time("A#1", A, at, estate)
    manual = on_time("A#1b", A, at, estate)
    history, ws = checked([scheduled, manual])
    try:
        assert [row[1] for row in current_keys(ws)] == ["AKIA...0001", "AKIA...0002"]
        day = at.replace(hour=0, minute=0, second=0)
        rows = _query(ws, "rotation-compliance")
        assert [(r["Day"], r["ActiveKeys"], r["Overdue"], r["CompliancePct"]) for r in rows] == [(day, 2, 1, 50.0)]
        trend = check_trend(history, ws)
        [rotation] = [r for r in trend if r["Control"] == ROTATION_CONTROL]
        assert (rotation["Day"], rotation["Failing"]) == (day, 1)
    finally:
        ws.close()
    alone = History([scheduled], {A: timedelta(0)}).workspace()
    try:
        assert trend == _query(alone, "compliance-trend"), "every check counts the second's inventory once"
    finally:
        alone.close()


def test_a_days_last_inventory_without_keys_ends_the_days_rotation_figures() -> None:
    # In the morning u0 had one overdue key; by the evening run it was deleted and u0 has none: the day's last
    # complete inventory has no active key, so neither trend may show the morning's overdue key for that day.
    morning = on_time("A#1", A, NOW - timedelta(hours=11), estate_of(("u0", "AKIA0000000000000001", "Active", 100)))
    evening = on_time("A#2", A, NOW - timedelta(hours=3), {"u0": User("u0", NOW - timedelta(days=500))})
    assert morning.logged.date() == evening.logged.date()
    history, ws = checked([morning, evening])
    try:
        assert not _query(ws, "rotation-compliance")
        assert not [r for r in check_trend(history, ws) if r["Control"] == ROTATION_CONTROL]
    finally:
        ws.close()
