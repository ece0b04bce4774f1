"""inventory -> records -> sink for one account; the handler and the CLI are thin shells over `run`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from keyreport import __version__
from keyreport.aws.inventory import Inventory
from keyreport.deadline import Deadline
from keyreport.errors import SpillError
from keyreport.log import logger
from keyreport.records import KeyRecord, RunSummary, key_row, summary_row, user_row
from keyreport.settings import Settings
from keyreport.sinks.base import FailedBatch, Sink, Table
from keyreport.spill.bucket import SpillBucket

if TYPE_CHECKING:
    from keyreport.aws.clients import AwsClients


@dataclass
class RunResult:
    summary: RunSummary
    failed_batches: list[FailedBatch] = field(default_factory=list)  # neither delivered nor spilled


def run(
    settings: Settings,
    account: AwsClients,
    sink: Sink,
    deadline: Deadline,
    *,
    fingerprint_key: bytes,
    spill: SpillBucket | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RunResult:
    """Inventories the account `account` reaches and ships its records; failed batches are spilled.

    `fingerprint_key` is the deployment's (keyreport.deployment_key), so fingerprints join across its runs.
    """
    started_clock = time.monotonic()
    account_id = account.sts().get_caller_identity()["Account"]
    summary = _new_summary(account_id, sink, clock)
    logger.append_keys(run_id=summary.run_id, account=account_id)
    inventory = Inventory(account.client("iam"), concurrency=settings.iam_concurrency)
    records = _until_inventory_fails(inventory.records(), summary)
    rows = (
        key_row(record, run_time=summary.started, run_id=summary.run_id, fingerprint_key=fingerprint_key)
        for record in records
    )
    delivery = sink.send(Table.KEYS, rows, deadline)

    stats = inventory.stats
    summary.users, summary.keys, summary.users_skipped = stats.users, stats.keys, stats.users_skipped
    summary.errors.extend(stats.errors)
    summary.shipped = delivery.shipped
    unsettled = _settle(delivery.failed_batches, spill, summary)
    summary.spilled = delivery.failed - sum(len(batch.rows) for batch in unsettled)
    summary.failed = delivery.failed - summary.spilled
    unsettled += _ship_users(inventory, sink, deadline, spill, summary)
    summary.duration_seconds = time.monotonic() - started_clock
    run_delivery = sink.send(Table.RUNS, [summary_row(summary)], deadline)
    if run_delivery.failed_batches:
        summary.errors.append("run summary row not delivered")
        unsettled += _settle(run_delivery.failed_batches, spill, summary)
    logger.info("run finished", extra={"summary": summary_row(summary), "credential_report": stats.report_used})
    return RunResult(summary, unsettled)


def _ship_users(
    inventory: Inventory, sink: Sink, deadline: Deadline, spill: SpillBucket | None, summary: RunSummary
) -> list[FailedBatch]:
    """One row per IAM user read; a row not delivered makes the run partial (its snapshot is not complete)."""
    rows = (user_row(user, run_time=summary.started, run_id=summary.run_id) for user in inventory.users())
    delivery = sink.send(Table.USERS, rows, deadline)
    if delivery.failed:
        summary.errors.append(f"{delivery.failed} user rows not delivered")
    return _settle(delivery.failed_batches, spill, summary)


def report_unreachable_account(
    account_id: str,
    reason: str,
    sink: Sink,
    deadline: Deadline,
    *,
    spill: SpillBucket | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RunResult:
    """A failed run row for an account that could not be inventoried at all, so it shows up in the
    ingestion-health queries instead of silently missing."""
    summary = _new_summary(account_id, sink, clock)
    summary.inventory_complete = False
    summary.errors.append(reason)
    logger.error("account not inventoried", extra={"account": account_id, "reason": reason})
    delivery = sink.send(Table.RUNS, [summary_row(summary)], deadline)
    return RunResult(summary, _settle(delivery.failed_batches, spill, summary))


def _new_summary(account_id: str, sink: Sink, clock: Callable[[], datetime]) -> RunSummary:
    return RunSummary(
        run_id=str(uuid.uuid4()), account_id=account_id, started=clock(), collector_version=__version__, sink=sink.name
    )


def _settle(batches: list[FailedBatch], spill: SpillBucket | None, summary: RunSummary) -> list[FailedBatch]:
    """Parks undelivered batches in the spill bucket; returns those that could not be parked either.

    Those are logged row by row as a last resort: the rows hold no secret, and a record in the function's
    log can still be recovered, while a record nowhere makes a stale key look like a clean account.
    """
    unsettled: list[FailedBatch] = []
    for batch in batches:
        if spill is not None:
            try:
                spilled = spill.put(
                    batch,
                    run_id=summary.run_id,
                    account_id=summary.account_id,
                    sink=summary.sink,
                    sequence=len(summary.spill_keys),
                )
            except SpillError as error:
                summary.errors.append(str(error))
            else:
                summary.spill_keys.append(spilled.key)
                logger.warning(
                    "batch spilled", extra={"key": spilled.key, "rows": len(batch.rows), "reason": batch.reason}
                )
                continue
        unsettled.append(batch)
        for row in batch.rows:
            logger.error(
                "undelivered record", extra={"table": batch.table.value, "record": row, "reason": batch.reason}
            )
    return unsettled


def _until_inventory_fails(records: Iterator[KeyRecord], summary: RunSummary) -> Iterator[KeyRecord]:
    """Ships what was read before an AWS error that retries could not cure, and marks the run incomplete."""
    try:
        yield from records
    except (ClientError, BotoCoreError) as error:
        summary.inventory_complete = False
        summary.errors.append(f"inventory stopped: {type(error).__name__}: {error}"[:500])
        logger.error("inventory stopped early", extra={"error": str(error)[:500]})
