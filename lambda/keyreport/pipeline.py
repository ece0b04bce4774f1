"""inventory -> records -> sink for one account; the handler and the CLI are thin shells over `run`.

Time: the run's deadline bounds the work (reading, shipping); what is left after it (the margin) is for
spilling what could not be shipped and for the run row, which is shipped or spilled in every outcome.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from keyreport import __version__
from keyreport.aws.inventory import Inventory
from keyreport.aws.posture import read_posture
from keyreport.deadline import Deadline, bounding, on_this_thread
from keyreport.errors import (
    ConfigError,
    DeadlineReached,
    SecretUnavailable,
    SpillError,
    aws_credentials_problem,
    aws_problem,
    first_line,
)
from keyreport.log import logger
from keyreport.records import (
    ROOT_USER,
    UNKNOWN_ROOT_KEYS,
    KeyRecord,
    Row,
    RunSummary,
    UserRecord,
    key_row,
    summary_row,
    user_row,
)
from keyreport.settings import Settings
from keyreport.sinks.base import DEADLINE_REASON, FailedBatch, Sink, Table
from keyreport.spill.bucket import SpillBucket
from keyreport.tags import DEFAULT_MAX_EXCEPTION_DAYS, TagRules

if TYPE_CHECKING:
    from keyreport.aws.clients import AwsClients

# The account STS would not name: no real account has this id, and it keeps the run row's and the spill
# object's account fields valid (12 digits), so the row is stored and the spill object replayable.
UNKNOWN_ACCOUNT = "000000000000"


@dataclass
class RunResult:
    summary: RunSummary
    failed_batches: list[FailedBatch] = field(default_factory=list)  # neither delivered nor spilled
    reasons: list[str] = field(default_factory=list)  # why each undelivered batch was not, spilled or not


def run(
    settings: Settings,
    account: AwsClients,
    sink: Sink,
    deadline: Deadline,
    *,
    fingerprint_key: bytes | Callable[[], bytes],
    spill: SpillBucket | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RunResult:
    """Inventories the account `account` reaches and ships its records; failed batches are spilled at once.

    `fingerprint_key` is the deployment's (keyreport.deployment_key), so fingerprints join across its runs;
    given as the function that reads it, it is read under the deadline, and when it cannot be read no key is
    read either but the run row (which needs no fingerprint) is still shipped, spilled or logged.
    """
    started_clock = time.monotonic()
    with bounding(deadline):
        account_id, root_arn, why_unknown = _identify(account)
        summary = new_summary(account_id, sink.name, clock, settings.max_exception_days)
        logger.append_keys(run_id=summary.run_id, account=account_id)
        try:
            settle = Settler(spill, summary, deadline.closing())
            key, why_not = _key(fingerprint_key) if root_arn is not None else (None, why_unknown)
            if root_arn is not None and key is not None:
                _ship_records(settings, account, sink, deadline, Reading(summary, settle, root_arn, key))
            else:
                summary.inventory_complete = False
                summary.errors.append(str(why_not))
            summary.duration_seconds = time.monotonic() - started_clock
            if deadline.stopped_early():  # Ctrl-C or SIGTERM: the row says so, not only "deadline"
                summary.inventory_complete = False
                summary.errors.insert(0, deadline.stopped_early())
            ship_run_row(summary, sink, deadline, settle)
            logger.info("run finished", extra={"summary": summary_row(summary)})
        finally:
            logger.remove_keys(["run_id", "account"])  # a later run (CLI, member accounts) logs its own
    return RunResult(summary, settle.unsettled, settle.reasons)


def _key(source: bytes | Callable[[], bytes]) -> tuple[bytes | None, str | None]:
    """(the fingerprint key, None), or (None, why it cannot be read): no row can be made without it."""
    if not callable(source):
        return source, None
    try:
        return source(), None
    except SecretUnavailable as error:
        logger.error("the fingerprint key is unavailable: no key is read, the run row is still shipped")
        return None, f"nothing read: {error}"


def _identify(account: AwsClients) -> tuple[str, str | None, str | None]:
    """(account id, its root ARN, None), or (UNKNOWN_ACCOUNT, None, why STS would not tell).

    An account STS cannot name still gets its run row.
    """
    try:
        identity = account.sts().get_caller_identity()
    except (ClientError, BotoCoreError, DeadlineReached) as error:
        problem = aws_credentials_problem(error)
        if problem:  # a mistake of the environment, not of this run: said once, no run row to ship
            raise ConfigError([problem]) from None
        return UNKNOWN_ACCOUNT, None, f"account not identified: STS GetCallerIdentity: {aws_problem(error)}"
    partition = identity["Arn"].split(":")[1]
    return identity["Account"], f"arn:{partition}:iam::{identity['Account']}:root", None


@dataclass(frozen=True)
class Reading:
    """What reading one account's keys needs besides its clients: the run's summary, where failed batches go,
    the account's root ARN (for a row about unknown root keys) and the deployment's fingerprint key."""

    summary: RunSummary
    settle: Settler
    root_arn: str
    fingerprint_key: bytes


def _ship_records(
    settings: Settings,
    account: AwsClients,
    sink: Sink,
    deadline: Deadline,
    reading: Reading,
) -> None:
    summary, settle = reading.summary, reading.settle
    inventory = Inventory(account.client("iam"), concurrency=settings.iam_concurrency, tag_rules=settings.tag_rules)
    records = _read(inventory, deadline, summary, reading.root_arn)
    rows = counted(
        (
            key_row(record, run_time=summary.started, run_id=summary.run_id, fingerprint_key=reading.fingerprint_key)
            for record in records
        ),
        summary,
        Table.KEYS,
    )
    delivery = sink.send(Table.KEYS, rows, deadline, on_failed=settle)
    stats = inventory.stats
    summary.users, summary.users_skipped = stats.users, stats.users_skipped
    summary.keys = stats.keys + (not stats.root_keys_known)
    summary.users_not_read = stats.users - stats.users_read
    summary.errors.extend(stats.errors)
    summary.read_errors += len(stats.errors)
    summary.shipped = delivery.shipped
    users = inventory.users()
    # Tags IAM would not give are no error of the run (like its posture): the run row says so (TagsRead false).
    summary.tags_read, summary.tags_not_read = inventory.tags_read, inventory.tags_not_read
    if summary.inventory_complete:  # a failed inventory is no snapshot: its account's posture is not asked for
        posture = read_posture(account.client("iam"), reading.root_arn)
        summary.password_policy, summary.posture_not_read = posture.password_policy, posture.not_read
        root = inventory.root_user(posture)
        users += [root] if root is not None else []
    _ship_users(users, sink, deadline, summary, settle, rules=settings.tag_rules)
    summary.spilled, summary.failed = settle.spilled_rows, settle.failed_rows
    logger.info("inventory finished", extra={"credential_report": stats.report_used})


def ship_run_row(summary: RunSummary, sink: Sink, deadline: Deadline, settle: Settler) -> None:
    """The run row goes to the sink while the margin allows a spill after it; past the deadline, straight
    to the spill bucket, so the function's time never runs out with no trace of the run."""
    row = summary_row(summary)
    if deadline.expired:
        settle(FailedBatch(Table.RUNS, [row], DEADLINE_REASON, ["not attempted"]))
        return
    before_spill = deadline.within(0.5)
    with on_this_thread(before_spill):
        delivery = sink.send(Table.RUNS, [row], before_spill)
    if delivery.failed_batches:
        summary.errors.append("run summary row not delivered")
        for batch in delivery.failed_batches:
            settle(batch)


def _ship_users(
    users: list[UserRecord], sink: Sink, deadline: Deadline, summary: RunSummary, settle: Settler, *, rules: TagRules
) -> None:
    """One row per IAM user read, and the root user's; a row not delivered makes the run partial (its snapshot
    is not complete)."""
    rows = counted(
        (user_row(user, run_time=summary.started, run_id=summary.run_id, tag_rules=rules) for user in users),
        summary,
        Table.USERS,
    )
    delivery = sink.send(Table.USERS, rows, deadline, on_failed=settle)
    if delivery.failed:
        summary.errors.append(f"{delivery.failed} user rows not delivered")


def counted(rows: Iterable[Row], summary: RunSummary, table: Table) -> Iterator[Row]:
    """The rows, counted into the run row as the sink takes them: what the run announces it produced, so a
    snapshot counts as arrived only when that many rows of the run are in the table."""
    for row in rows:
        if table is Table.KEYS:
            summary.key_rows += 1
        else:
            summary.user_rows += 1
        yield row


def report_unreachable_account(
    account_id: str,
    reason: str,
    sink: Sink,
    deadline: Deadline,
    *,
    spill: SpillBucket | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    max_exception_days: int = DEFAULT_MAX_EXCEPTION_DAYS,
) -> RunResult:
    """A failed run row for an account that could not be inventoried at all, so it shows up in the
    ingestion-health queries instead of silently missing."""
    summary = new_summary(account_id, sink.name, clock, max_exception_days)
    summary.inventory_complete = False
    summary.errors.append(reason)
    logger.error("account not inventoried", extra={"account": account_id, "reason": reason})
    settle = Settler(spill, summary, deadline.closing())
    with bounding(deadline):
        ship_run_row(summary, sink, deadline, settle)
    return RunResult(summary, settle.unsettled, settle.reasons)


def new_summary(
    account_id: str,
    sink_name: str,
    clock: Callable[[], datetime],
    max_exception_days: int = DEFAULT_MAX_EXCEPTION_DAYS,
) -> RunSummary:
    return RunSummary(
        run_id=str(uuid.uuid4()),
        account_id=account_id,
        started=clock(),
        collector_version=__version__,
        sink=sink_name,
        max_exception_days=max_exception_days,
    )


class Settler:
    """Parks each undelivered batch in the spill bucket the moment the sink gives up on it, with the time
    the margin leaves (not the work deadline: a batch failed at the deadline still needs parking).

    A batch that cannot be parked is logged row by row as a last resort: the rows hold no secret, and a
    record in the function's log can still be recovered, while a record nowhere makes a stale key look
    like a clean account.
    """

    def __init__(self, spill: SpillBucket | None, summary: RunSummary, closing: Deadline) -> None:
        self.spill = spill
        self.summary = summary
        self.closing = closing
        self.unsettled: list[FailedBatch] = []
        self.reasons: list[str] = []  # every undelivered batch's, for the cause a person reads
        self.spilled_rows = self.failed_rows = 0
        self.sequence = 0  # the number of the next spill object of the run

    def __call__(self, batch: FailedBatch) -> None:
        self.reasons.append(batch.reason)
        keys = batch.table is Table.KEYS
        parked, maybe = self._parked(batch)
        if parked:
            self.spilled_rows += len(batch.rows) if keys else 0
            return
        self.failed_rows += len(batch.rows) if keys else 0
        self.unsettled.append(batch)
        # A spill whose answer never came may have been stored anyway: the lines name that object.
        where: dict[str, Any] = {"maybe_spilled_as": maybe} if maybe else {}
        for row in batch.rows:
            logger.error(
                "undelivered record",
                extra={"table": batch.table.value, "record": row, "reason": batch.reason} | where,
            )

    def _parked(self, batch: FailedBatch) -> tuple[bool, str | None]:
        """(parked, None), or (False, the key S3 may have stored it under anyway)."""
        if self.spill is None:
            return False, None
        summary = self.summary
        self.sequence += 1  # never reused: a spill that failed may still have been stored under its key
        try:
            with on_this_thread(self.closing):
                spilled = self.spill.put(
                    batch,
                    run_id=summary.run_id,
                    account_id=summary.account_id,
                    sink=summary.sink,
                    sequence=self.sequence - 1,
                )
        except SpillError as error:
            summary.errors.append(str(error))
            return False, error.maybe_written
        except DeadlineReached as error:
            summary.errors.append(str(error))
            return False, None
        summary.spill_keys.append(spilled.key)
        logger.warning("batch spilled", extra={"key": spilled.key, "rows": len(batch.rows), "reason": batch.reason})
        return True, None


def _read(inventory: Inventory, deadline: Deadline, summary: RunSummary, root_arn: str) -> Iterator[KeyRecord]:
    """The inventory's records until it ends, fails (what was read is still shipped, the run is marked
    incomplete) or the deadline nears (reading stops; the users not reached are counted); then, when the
    credential report could not tell the root user's keys, a record that says they are unknown."""
    yield from _until_stopped(inventory, deadline, summary)
    if not inventory.stats.root_keys_known:
        yield unknown_root_keys(root_arn)


def unknown_root_keys(root_arn: str) -> KeyRecord:
    """The root user's keys, unknown: a row in the table (the root-keys query shows it) instead of none."""
    return KeyRecord(
        user_name=ROOT_USER,
        user_arn=root_arn,
        access_key_id=UNKNOWN_ROOT_KEYS,
        status="Unknown",
        create_date=None,
        last_use_known=False,
    )


def _until_stopped(inventory: Inventory, deadline: Deadline, summary: RunSummary) -> Iterator[KeyRecord]:
    records = inventory.records()
    try:
        yield from records  # the inventory stops itself at the deadline (DeadlineReached)
    except (ClientError, BotoCoreError, DeadlineReached) as error:
        getattr(records, "close", lambda: None)()  # pending calls are refused now: the pool winds down at once
        text = f"inventory stopped: {type(error).__name__}: {first_line(error)}"[:500]
        summary.errors.append(text)
        summary.read_errors += 1
        logger.error("inventory stopped early", extra={"error": text})
        if isinstance(error, DeadlineReached) or deadline.expired:
            # Not an IAM failure: the run had no time left. The users not reached are counted instead.
            if not inventory.stats.listing_complete:
                summary.errors.append("inventory stopped: users not yet listed are not counted in UsersNotRead")
        else:
            summary.inventory_complete = False
