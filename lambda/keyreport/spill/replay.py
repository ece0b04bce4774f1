"""Re-ship spilled batches; an object is deleted only once every one of its rows was accepted."""

from __future__ import annotations

from dataclasses import dataclass, field

from keyreport.deadline import Deadline, bounding
from keyreport.errors import SpillError
from keyreport.log import logger
from keyreport.sinks import Sink
from keyreport.spill.bucket import SpillBucket


@dataclass
class ReplayOutcome:
    objects: int = 0
    delivered_objects: int = 0
    delivered_rows: int = 0
    kept: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return not self.kept and not self.errors


def replay(spill: SpillBucket, sink: Sink, deadline: Deadline) -> ReplayOutcome:
    with bounding(deadline):
        return _replay(spill, sink, deadline)


def _replay(spill: SpillBucket, sink: Sink, deadline: Deadline) -> ReplayOutcome:
    outcome = ReplayOutcome()
    for key in list(spill.object_keys()):
        outcome.objects += 1
        try:
            batch = spill.load(key)
        except SpillError as error:
            outcome.errors.append(str(error))
            continue
        delivery = sink.send(batch.table, batch.rows, deadline)
        outcome.delivered_rows += delivery.shipped
        try:
            if not delivery.failed_batches:
                spill.delete(key)
                outcome.delivered_objects += 1
                logger.info("spilled batch delivered", extra={"key": key, "rows": delivery.shipped})
                continue
            batch.rows = [row for failed in delivery.failed_batches for row in failed.rows]
            batch.attempts += [f"replay: {failed.reason}" for failed in delivery.failed_batches]
            spill.keep(batch)
        except SpillError as error:
            outcome.errors.append(str(error))
        outcome.kept.append(key)
        logger.warning("spilled batch kept", extra={"key": key, "rows": len(batch.rows)})
    return outcome
