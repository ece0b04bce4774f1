"""Re-ship spilled batches: each object authenticated and validated first, deleted once every row was accepted.

An object that is not an authentic, well-formed batch is moved to the quarantine prefix with the reason
and replay goes on with the others. A read-only replay (the stdout dry run) changes nothing in the bucket.
An object only partly delivered is left as it was: the bucket policy lets only the function write under
the spill prefix, and rows sent twice are absorbed by the queries' latest-row-per-key logic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from keyreport.deadline import Deadline, bounding
from keyreport.errors import SpillError, SpillRejected
from keyreport.log import logger
from keyreport.sinks import Sink
from keyreport.spill.bucket import SpillBucket, SpilledBatch


@dataclass
class ReplayOutcome:
    objects: int = 0
    delivered_objects: int = 0
    delivered_rows: int = 0
    kept: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)  # one line per object: where it went and why
    errors: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return not self.kept and not self.errors and not self.quarantined


def replay(spill: SpillBucket, sink: Sink, deadline: Deadline, *, read_only: bool) -> ReplayOutcome:
    with bounding(deadline):  # every S3 and Azure call of the replay, SDK internals included
        return _replay(spill, sink, deadline, read_only=read_only)


def _replay(spill: SpillBucket, sink: Sink, deadline: Deadline, *, read_only: bool) -> ReplayOutcome:
    outcome = ReplayOutcome()
    for key in list(spill.object_keys()):
        outcome.objects += 1
        try:
            batch = spill.load(key)
        except SpillRejected as rejected:
            _set_aside(spill, key, str(rejected), outcome, read_only)
            continue
        except SpillError as error:
            outcome.errors.append(str(error))
            continue
        if batch.refused and not _set_aside_refused(spill, batch, outcome, read_only):
            continue  # its refused rows could not be parked: the object stays as it is, nothing lost
        _deliver(spill, batch, sink, deadline, outcome, read_only=read_only)
    return outcome


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
        spill.delete(batch.key)
    except SpillError as error:  # delivered, but it stays: the next replay sends it again, the queries absorb it
        outcome.errors.append(str(error))
        outcome.kept.append(batch.key)
        return
    outcome.delivered_objects += 1
    logger.info("spilled batch delivered", extra={"key": batch.key, "rows": delivery.shipped})


def _set_aside_refused(spill: SpillBucket, batch: SpilledBatch, outcome: ReplayOutcome, read_only: bool) -> bool:
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
        moved = spill.quarantine_refused(batch, reason)
    except SpillError as error:
        outcome.errors.append(str(error))
        outcome.kept.append(batch.key)
        return False
    moved = f"s3://{spill.bucket}/{moved}"
    outcome.quarantined.append(f"quarantined {len(problems)} row(s) of {where} as {moved}: {reason}")
    return True


def _set_aside(spill: SpillBucket, key: str, reason: str, outcome: ReplayOutcome, read_only: bool) -> None:
    """Quarantines a rejected object (a dry run only reports it) and records one line about it."""
    where = f"s3://{spill.bucket}/{key}"
    if read_only:
        line = f"would quarantine {where}: {reason}"
    else:
        try:
            line = f"quarantined s3://{spill.bucket}/{spill.quarantine(key, reason)}: {reason}"
        except SpillError as error:
            outcome.errors.append(str(error))
            line = f"rejected {where} (left in place): {reason}"
    outcome.quarantined.append(line)
    logger.info("spilled object rejected", extra={"key": key, "reason": reason})  # the caller prints `line`
