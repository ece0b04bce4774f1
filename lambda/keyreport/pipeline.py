"""inventory -> records -> sink for one account; the handler and the CLI are thin shells over `run`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from keyreport import __version__
from keyreport.deadline import Deadline
from keyreport.inventory import Inventory
from keyreport.log import logger
from keyreport.records import KeyRecord, RunSummary, key_row, summary_row
from keyreport.settings import Settings
from keyreport.sinks import FailedBatch, Sink, Table

if TYPE_CHECKING:
    import boto3


class RunFailed(Exception):
    """Raised after a run that did not read or deliver every record, so Lambda retries and alarms fire."""

    def __init__(self, summary: RunSummary) -> None:
        self.summary = summary
        super().__init__(
            f"keyreport run {summary.run_id} for account {summary.account_id} {summary.status}: "
            f"{summary.shipped} shipped, {summary.failed} failed, {summary.spilled} spilled"
            + (f"; {summary.errors[0]}" if summary.errors else "")
        )


@dataclass
class RunResult:
    summary: RunSummary
    failed_batches: list[FailedBatch] = field(default_factory=list)


def aws_config(settings: Settings) -> Config:
    """Retry behaviour chosen explicitly, and enough pooled connections for the worker threads."""
    return Config(
        retries={"mode": settings.aws_retry_mode, "max_attempts": settings.aws_max_attempts},  # type: ignore[arg-type]
        max_pool_connections=settings.iam_concurrency + 4,
        user_agent_extra=f"keyreport/{__version__}",
    )


def run(
    settings: Settings,
    session: boto3.Session,
    sink: Sink,
    deadline: Deadline,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RunResult:
    started_clock = time.monotonic()
    config = aws_config(settings)
    account_id = session.client("sts", config=config).get_caller_identity()["Account"]
    summary = RunSummary(
        run_id=str(uuid.uuid4()),
        account_id=account_id,
        started=clock(),
        collector_version=__version__,
        sink=sink.name,
    )
    logger.append_keys(run_id=summary.run_id, account=account_id)
    inventory = Inventory(session.client("iam", config=config), concurrency=settings.iam_concurrency)
    records = _until_inventory_fails(inventory.records(), summary)
    rows = (key_row(record, run_time=summary.started, run_id=summary.run_id) for record in records)
    delivery = sink.send(Table.KEYS, rows, deadline)

    stats = inventory.stats
    summary.users, summary.keys, summary.users_skipped = stats.users, stats.keys, stats.users_skipped
    summary.errors.extend(stats.errors)
    summary.shipped, summary.failed = delivery.shipped, delivery.failed
    summary.duration_seconds = time.monotonic() - started_clock
    failed_batches = list(delivery.failed_batches)
    run_delivery = sink.send(Table.RUNS, [summary_row(summary)], deadline)
    if run_delivery.failed_batches:
        summary.errors.append("run summary row not delivered")
        failed_batches.extend(run_delivery.failed_batches)
    logger.info("run finished", extra={"summary": summary_row(summary), "credential_report": stats.report_used})
    return RunResult(summary, failed_batches)


def _until_inventory_fails(records: Iterator[KeyRecord], summary: RunSummary) -> Iterator[KeyRecord]:
    """Ships what was read before an AWS error that retries could not cure, and marks the run incomplete."""
    try:
        yield from records
    except (ClientError, BotoCoreError) as error:
        summary.inventory_complete = False
        summary.errors.append(f"inventory stopped: {type(error).__name__}: {error}"[:500])
        logger.error("inventory stopped early", extra={"error": str(error)[:500]})
