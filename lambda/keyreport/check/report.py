"""A hop's outcome (passed or not, what was seen, how long it took, the likely cause and the fix) and the checklist."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from keyreport.deadline import Deadline, on_this_thread
from keyreport.errors import HopFailed, first_line

#: Of a hop's timeout, what its calls may use: the rest lets the hop report its own error before the timeout.
HOP_WORK_FRACTION = 0.9

PASS, FAIL, SKIP = "pass", "fail", "skip"
MARKS = {PASS: "✓", FAIL: "✗", SKIP: "·"}


@dataclass(frozen=True)
class Hop:
    name: str
    status: str
    detail: str
    milliseconds: int
    cause: str = ""
    fix: str = ""

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def lines(self) -> list[str]:
        text = [f"{MARKS[self.status]} {self.name}: {self.detail} ({self.milliseconds} ms)"]
        text += [f"    cause: {self.cause}"] if self.cause else []
        text += [f"    fix:   {self.fix}"] if self.fix else []
        return text


@dataclass
class Report:
    hops: list[Hop] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Every hop passed (a skipped hop is one that could not be tried: not a pass)."""
        return bool(self.hops) and all(hop.passed for hop in self.hops)

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "hops": [asdict(hop) for hop in self.hops]}

    def lines(self) -> list[str]:
        failed = [hop for hop in self.hops if hop.status == FAIL]
        skipped = sum(hop.status == SKIP for hop in self.hops)
        verdict = "every hop passed" if self.passed else f"{len(failed)} of {len(self.hops)} hops did not pass"
        verdict += f", {skipped} not checked behind them" if skipped else ""
        text = [line for hop in self.hops for line in hop.lines()] + [f"keyreport check: {verdict}"]
        # The first failure's cause again at the end, where the eye lands, when other lines stand between.
        if failed and failed[0] is not self.hops[-1] and (failed[0].cause or failed[0].fix):
            first = failed[0]
            text += [f"  first failure: {first.name}: {first.cause or first.detail}"]
            text += [f"  fix: {first.fix}"] if first.fix else []
        return text


def run_hop(name: str, probe: Callable[[], str], timeout: float) -> Hop:
    """Runs `probe` with a bound on its time: a hop that never answers is reported, not waited on forever.

    The probe runs on a daemon thread, so one stuck in a socket read cannot keep the process alive either.
    """
    outcome: list[Hop] = []
    started = time.monotonic()

    def elapsed() -> int:
        return round((time.monotonic() - started) * 1000)

    def attempt() -> None:
        try:
            # Every call of the hop (and every retry of it) ends inside the hop's time, whatever the retry settings:
            # the hop then fails with its real error (refused, no route) instead of a bare "no answer".
            with on_this_thread(Deadline.after(timeout * HOP_WORK_FRACTION)):
                detail = probe()
        except HopFailed as failure:
            outcome.append(Hop(name, FAIL, failure.detail, elapsed(), failure.cause, failure.fix))
        except Exception as error:  # any other failure is reported on its line, never a traceback
            outcome.append(Hop(name, FAIL, f"{type(error).__name__}: {first_line(error)}", elapsed()))
        else:
            outcome.append(Hop(name, PASS, detail, elapsed()))

    worker = threading.Thread(target=attempt, name=f"check {name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if outcome:
        return outcome[0]
    return Hop(
        name,
        FAIL,
        f"no answer within {timeout:g} s",
        elapsed(),
        "the service or the network path to it is silent (a firewall dropping packets, a proxy, an outage)",
        "check egress from where keyreport runs (VPC route, NAT, security group, proxy), then run check again",
    )


def not_checked(name: str, behind: str) -> Hop:
    """A hop not tried because one it depends on did not pass: it would fail the same way, or has nothing to use."""
    return Hop(name, SKIP, f"not checked: needs {behind}, which did not pass", 0)
