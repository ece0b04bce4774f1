"""Event path: one user-scope run per IAM user an event named, the same rows as a scheduled run's.

Each user is re-read from IAM (keyreport.aws.user_snapshot) and becomes a run of its own (run id, run row
with Scope "user" and the user's name, "deleted" when IAM no longer has it), whose key and user rows are
exactly those a scheduled run would ship for that user at that moment. The users of one invocation are read
concurrently (the run's IAM concurrency, its clients' retry budget) and their rows go to the sink together,
so a burst of 500 users costs a few POSTs, not 1,500; a batch that fails is split back into its runs to be
spilled, each under its own run id. The run row (contract: Scope "user", ScopeUser, UserDeleted, KeyRows, UserRows)
is the one `records.summary_row` writes for every run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from keyreport.aws.inventory import bounded_map
from keyreport.aws.user_snapshot import UserSnapshot, read_user
from keyreport.deadline import Deadline, bounding, on_this_thread
from keyreport.errors import DeadlineReached, KeysChanging, aws_error_code
from keyreport.log import logger
from keyreport.pipeline import Settler, new_summary
from keyreport.records import USER_SCOPE, Row, RunSummary, key_row, summary_row, user_row
from keyreport.sinks.base import DEADLINE_REASON, FailedBatch, Sink, Table
from keyreport.spill.bucket import SpillBucket
from keyreport.tags import TagRules

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

    from keyreport.aws.clients import AwsClients


@dataclass
class UserRun:
    """One user's run: its summary, its rows, and what the re-read found."""

    user_name: str
    summary: RunSummary
    snapshot: UserSnapshot | None = None  # None: the re-read failed (summary.errors says why)
    settle: Settler | None = None
    rows: dict[Table, list[Row]] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.snapshot is not None and self.summary.succeeded


def run_users(
    account: AwsClients,
    account_id: str,
    users: Sequence[str],
    sink: Sink,
    deadline: Deadline,
    *,
    fingerprint_key: bytes,
    concurrency: int,
    spill: SpillBucket | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    tag_rules: TagRules | None = None,
) -> list[UserRun]:
    """Re-reads each of `users` of `account_id` (whose IAM `account` reaches) and ships one run per user;
    `tag_rules` (default: the settings' defaults) says which of the user's tags make its owner and exceptions."""
    iam = account.client("iam")
    rules = tag_rules or TagRules()
    with bounding(deadline):
        runs = list(
            bounded_map(lambda name: _reread(iam, account_id, name, sink, clock, rules=rules), users, concurrency)
        )
        for run in runs:
            run.settle = Settler(spill, run.summary, deadline.closing())
            _rows(run, fingerprint_key, rules)
        by_run = {run.summary.run_id: run for run in runs}
        for table in (Table.KEYS, Table.USERS):
            _ship(table, [row for run in runs for row in run.rows.get(table, [])], by_run, sink, deadline)
        _ship_run_rows(runs, by_run, sink, deadline)
    for run in runs:
        logger.info("user re-read", extra={"summary": summary_row(run.summary)})
    return runs


def _reread(
    iam: IAMClient, account_id: str, name: str, sink: Sink, clock: Callable[[], datetime], *, rules: TagRules
) -> UserRun:
    """One user's re-read on a worker thread: its run starts (and is dated) just before IAM is asked."""
    summary = new_summary(account_id, sink.name, clock, rules.max_exception_days)
    summary.scope, summary.scope_user = USER_SCOPE, name
    run = UserRun(name, summary)
    started = time.monotonic()
    try:
        run.snapshot = read_user(iam, name, tag_rules=rules)
    except (ClientError, BotoCoreError, DeadlineReached, KeysChanging) as error:
        summary.inventory_complete = False
        summary.read_errors += 1
        summary.errors.append(f"user {name}: {aws_error_code(error)}")
    summary.duration_seconds = time.monotonic() - started
    return run


def _rows(run: UserRun, fingerprint_key: bytes, rules: TagRules) -> None:
    """The user's rows, counted into its run row (KeyRows, UserRows: what the run announces it produced)."""
    summary, snapshot = run.summary, run.snapshot
    if snapshot is None:
        return  # not read: the run row says failed, and announces no row
    summary.user_deleted = snapshot.gone
    summary.tags_read, summary.tags_not_read = (
        snapshot.user is not None and not snapshot.tags_not_read,
        (snapshot.tags_not_read or ("the user is gone" if snapshot.gone else "")),
    )
    if snapshot.user is not None:
        summary.users = 1
        summary.keys = len(snapshot.keys)
        run.rows[Table.KEYS] = [
            key_row(key, run_time=summary.started, run_id=summary.run_id, fingerprint_key=fingerprint_key)
            for key in snapshot.keys
        ]
        run.rows[Table.USERS] = [
            user_row(snapshot.user, run_time=summary.started, run_id=summary.run_id, tag_rules=rules)
        ]
    summary.key_rows, summary.user_rows = len(run.rows.get(Table.KEYS, [])), len(run.rows.get(Table.USERS, []))


def _ship(table: Table, rows: list[Row], by_run: dict[str, UserRun], sink: Sink, deadline: Deadline) -> None:
    """All runs' rows of one table in one stream; a failed batch is settled run by run."""
    if not rows:
        return

    def settle(batch: FailedBatch) -> None:
        for run_id, part in _split(batch).items():
            run = by_run[run_id]
            assert run.settle is not None
            run.settle(part)
            if table is not Table.KEYS:
                run.summary.errors.append(f"{len(part.rows)} {table.value} rows not delivered")

    delivery = sink.send(table, rows, deadline, on_failed=settle)
    if table is Table.KEYS:
        for run in by_run.values():
            run.summary.shipped = len(run.rows.get(Table.KEYS, []))
        for batch in delivery.failed_batches:
            for run_id, part in _split(batch).items():
                by_run[run_id].summary.shipped -= len(part.rows)
    for run in by_run.values():
        assert run.settle is not None
        run.summary.spilled, run.summary.failed = run.settle.spilled_rows, run.settle.failed_rows


def _split(batch: FailedBatch) -> dict[str, FailedBatch]:
    parts: dict[str, FailedBatch] = {}
    for row in batch.rows:
        part = parts.setdefault(row["RunId"], FailedBatch(batch.table, [], batch.reason, batch.attempts))
        part.rows.append(row)
    return parts


def _ship_run_rows(runs: list[UserRun], by_run: dict[str, UserRun], sink: Sink, deadline: Deadline) -> None:
    """Every run row, after the data rows (so each row counts what was delivered); spilled past the deadline."""
    rows = [summary_row(run.summary) for run in runs]
    if deadline.expired:
        for run, row in zip(runs, rows, strict=True):
            assert run.settle is not None
            run.settle(FailedBatch(Table.RUNS, [row], DEADLINE_REASON, ["not attempted"]))
        return
    before_spill = deadline.within(0.5)

    def settle(batch: FailedBatch) -> None:
        for run_id, part in _split(batch).items():
            run = by_run[run_id]
            assert run.settle is not None
            run.summary.errors.append("run summary row not delivered")
            run.settle(part)

    with on_this_thread(before_spill):
        sink.send(Table.RUNS, rows, before_spill, on_failed=settle)
