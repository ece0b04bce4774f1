"""Re-ship spilled batches: each object authenticated and validated first, recorded and deleted once every row
was accepted.

An object that is not an authentic, well-formed batch is moved to the quarantine prefix with the reason
and replay goes on with the others. A read-only replay (the stdout dry run) changes nothing in the bucket.
An object only partly delivered is left as it was: the bucket policy lets only the function (and the
break-glass role) write under the spill prefix, and rows sent twice are absorbed by the queries'
latest-row-per-key logic.

Bounded: the listing is streamed page by page, no new object is taken once the deadline has passed, and
the bucket work of the object in hand (record, delete, quarantine) uses the closing deadline. What was not
reached is counted as `left` (from the rest of the listing, if there is time to finish it).

Delivered once: before an object is deleted, the ledger records its MAC (keyreport.spill.bucket.LEDGER_PREFIX),
and the exact version that was read is deleted, which leaves no delete marker to remove. An object whose
MAC the ledger already holds (a version restored from a backup, a delete marker removed) is not delivered
again: it is deleted and counted as `already_delivered`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from keyreport.deadline import Deadline, bounding, on_this_thread
from keyreport.errors import DeadlineReached, SpillError, SpillRejected
from keyreport.log import logger
from keyreport.sinks import Sink
from keyreport.spill.bucket import SpillBucket, SpilledBatch


@dataclass
class ReplayOutcome:
    objects: int = 0  # taken: read, then delivered, kept or quarantined
    delivered_objects: int = 0
    delivered_rows: int = 0
    already_delivered: int = 0  # in the ledger already: deleted without being sent again
    kept: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)  # one line per object: where it went and why
    errors: list[str] = field(default_factory=list)
    left: int = 0  # listed but not taken: the deadline came first
    left_unlisted: bool = False  # the listing itself could not be finished: more may be left
    stopped: str | None = None  # why replay stopped taking objects before the end of the listing

    @property
    def succeeded(self) -> bool:
        return not self.kept and not self.errors and not self.quarantined and not self.left and not self.stopped

    def summary(self) -> str:
        """One line: what happened to every object replay saw."""
        left = f"{self.left}{' or more' if self.left_unlisted else ''}"
        return (
            f"{self.delivered_objects} delivered ({self.delivered_rows} rows), {len(self.kept)} kept, "
            f"{len(self.quarantined)} quarantined, {self.already_delivered} already delivered, {left} left"
        )


def replay(spill: SpillBucket, sink: Sink, deadline: Deadline, *, read_only: bool) -> ReplayOutcome:
    with bounding(deadline):  # every S3 and Azure call of the replay, SDK internals included
        outcome = _replay(spill, sink, deadline, read_only=read_only)
    logger.info("replay finished", extra={"summary": outcome.summary()})
    return outcome


def _replay(spill: SpillBucket, sink: Sink, deadline: Deadline, *, read_only: bool) -> ReplayOutcome:
    outcome = ReplayOutcome()
    keys = spill.object_keys()
    try:
        for key in keys:
            if deadline.expired:
                outcome.stopped = "the deadline came: objects left for the next replay"
                outcome.left = 1
                break
            outcome.objects += 1
            _take(spill, key, sink, deadline, outcome, read_only=read_only)
    except DeadlineReached as reached:  # a call of the object in hand could not start: that object is left
        outcome.stopped, outcome.left = str(reached), 1
    except SpillError as error:  # the listing failed: nothing more can be taken
        outcome.errors.append(str(error))
        outcome.stopped = "the listing failed"
    if outcome.stopped:
        _count_left(keys, deadline, outcome)
    return outcome


def _count_left(keys: Iterator[str], deadline: Deadline, outcome: ReplayOutcome) -> None:
    """The rest of the listing, counted (not held) in the closing time; `left_unlisted` when it cannot be."""
    try:
        with on_this_thread(deadline.closing()):
            outcome.left += sum(1 for _ in keys)
    except (SpillError, DeadlineReached):
        outcome.left_unlisted = True


def _take(
    spill: SpillBucket, key: str, sink: Sink, deadline: Deadline, outcome: ReplayOutcome, *, read_only: bool
) -> None:
    try:
        batch = spill.load(key)
    except SpillRejected as rejected:
        _set_aside(spill, key, str(rejected), outcome, read_only=read_only, deadline=deadline)
        return
    except SpillError as error:
        outcome.errors.append(str(error))
        return
    try:
        delivered_before = spill.delivered(batch)
    except SpillError as error:  # without the ledger, replay could deliver it twice: it waits
        outcome.errors.append(str(error))
        outcome.kept.append(batch.key)
        return
    if delivered_before:
        _forget_delivered(spill, batch, outcome, read_only=read_only, deadline=deadline)
        return
    if batch.refused and not _set_aside_refused(spill, batch, outcome, read_only=read_only, deadline=deadline):
        return  # its refused rows could not be parked: the object stays as it is, nothing lost
    _deliver(spill, batch, sink, deadline, outcome, read_only=read_only)


def _deliver(
    spill: SpillBucket, batch: SpilledBatch, sink: Sink, deadline: Deadline, outcome: ReplayOutcome, *, read_only: bool
) -> None:
    delivery = sink.send(batch.table, batch.rows, deadline)
    outcome.delivered_rows += delivery.shipped
    if delivery.failed_batches:
        outcome.kept.append(batch.key)
        reasons = [failed.reason for failed in delivery.failed_batches]
        logger.warning("spilled batch kept", extra={"key": batch.key, "failed": delivery.failed, "reasons": reasons})
        return
    if read_only:
        outcome.delivered_objects += 1
        logger.info("spilled batch shown, left in the bucket", extra={"key": batch.key, "rows": delivery.shipped})
        return
    try:
        with on_this_thread(deadline.closing()):  # delivered: recording it must not wait for the next replay
            spill.record_delivered(batch)
            spill.delete(batch.key, batch.version)
    except (SpillError, DeadlineReached) as error:  # delivered, but it stays: the queries absorb a second delivery
        outcome.errors.append(str(error))
        outcome.kept.append(batch.key)
        return
    outcome.delivered_objects += 1
    logger.info("spilled batch delivered", extra={"key": batch.key, "rows": delivery.shipped})


def _forget_delivered(
    spill: SpillBucket, batch: SpilledBatch, outcome: ReplayOutcome, *, read_only: bool, deadline: Deadline
) -> None:
    """An object the ledger says was delivered (restored, or its delete marker removed): never sent again."""
    outcome.already_delivered += 1
    logger.warning("spilled batch already delivered: not sent again", extra={"key": batch.key})
    if read_only:
        return
    try:
        with on_this_thread(deadline.closing()):
            spill.delete(batch.key, batch.version)
    except (SpillError, DeadlineReached) as error:
        outcome.errors.append(str(error))


def _set_aside_refused(
    spill: SpillBucket, batch: SpilledBatch, outcome: ReplayOutcome, *, read_only: bool, deadline: Deadline
) -> bool:
    """Rows of an authentic object that fail validation: keyreport wrote what it cannot read back (a bug in
    the writer or the validation). Reported loudly and parked alone; the object's other rows are delivered."""
    problems = [refused.problem for refused in batch.refused]
    reason = f"{len(problems)} row(s) refused although the MAC held (a keyreport bug, please report): {problems[0]}"
    logger.error("authentic spilled rows refused", extra={"key": batch.key, "problems": problems[:20]})
    where = f"s3://{spill.bucket}/{batch.key}"
    if read_only:
        outcome.quarantined.append(f"would quarantine {len(problems)} row(s) of {where}: {reason}")
        return True
    try:
        with on_this_thread(deadline.closing()):
            moved = f"s3://{spill.bucket}/{spill.quarantine_refused(batch, reason)}"
    except (SpillError, DeadlineReached) as error:
        outcome.errors.append(str(error))
        outcome.kept.append(batch.key)
        return False
    outcome.quarantined.append(f"quarantined {len(problems)} row(s) of {where} as {moved}: {reason}")
    return True


def _set_aside(
    spill: SpillBucket, key: str, reason: str, outcome: ReplayOutcome, *, read_only: bool, deadline: Deadline
) -> None:
    """Quarantines a rejected object (a dry run only reports it) and records one line about it."""
    where = f"s3://{spill.bucket}/{key}"
    if read_only:
        line = f"would quarantine {where}: {reason}"
    else:
        try:
            with on_this_thread(deadline.closing()):
                line = f"quarantined s3://{spill.bucket}/{spill.quarantine(key, reason)}: {reason}"
        except (SpillError, DeadlineReached) as error:
            outcome.errors.append(str(error))
            line = f"rejected {where} (left in place): {reason}"
    outcome.quarantined.append(line)
    logger.info("spilled object rejected", extra={"key": key, "reason": reason})  # the caller prints `line`
