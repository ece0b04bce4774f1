"""The time a run may still spend: Lambda's remaining time less a safety margin, or unbounded on a workstation.

The deadline of the run in progress is also published process-wide (`bounding`), so the SDK hooks that
cut every network call's timeouts (keyreport.aws.clients, `azure_request_hook`) find it without being
handed it: SDK internals (token requests, retries) make calls keyreport never sees.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from keyreport.errors import DeadlineReached

#: What the closing steps (spilling, the run row) keep back from the function's own end.
CLOSING_MARGIN_SECONDS = 1.0
#: No call starts with less than this left: it could not even finish a TLS handshake.
MIN_CALL_SECONDS = 0.05


class Deadline:
    def __init__(
        self,
        remaining_ms: Callable[[], int] | None = None,
        margin_seconds: float = 0.0,
        why: Callable[[], str] | None = None,
    ) -> None:
        self._remaining_ms = remaining_ms
        self._margin = margin_seconds
        self._why = why  # what ended it early (an interrupted command), else "" and the usual wording

    @classmethod
    def after(cls, seconds: float, margin_seconds: float = 0.0) -> Deadline:
        end = time.monotonic() + seconds
        return cls(lambda: int((end - time.monotonic()) * 1000), margin_seconds)

    def remaining(self) -> float:
        """Seconds left for work; never negative."""
        if self._remaining_ms is None:
            return math.inf
        return max(0.0, self._remaining_ms() / 1000 - self._margin)

    def allows(self, seconds: float) -> bool:
        return seconds < self.remaining()

    @property
    def expired(self) -> bool:
        return self.remaining() < MIN_CALL_SECONDS

    def closing(self) -> Deadline:
        """The same end with the margin spent: what spilling and the run row may use after work stops."""
        margin = min(self._margin, CLOSING_MARGIN_SECONDS)
        return self if margin == self._margin else Deadline(self._remaining_ms, margin, self._why)

    def within(self, fraction: float) -> Deadline:
        """A deadline that keeps `fraction` of the margin back (a step that must leave time for another)."""
        return Deadline(self._remaining_ms, max(self._margin * fraction, CLOSING_MARGIN_SECONDS), self._why)

    def stopped_early(self) -> str:
        """What ended this deadline before its time (an interrupted command), or ""."""
        return self._why() if self._why else ""

    def why(self) -> str:
        """Why no more work starts: "the run's deadline has passed", or what stopped the command early."""
        return self.stopped_early() or "the run's deadline has passed"

    def timeouts(self, connect: float, read: float, what: str = "call") -> tuple[float, float]:
        """(connect, read) timeouts cut to the time left; DeadlineReached when too little is left to start."""
        left = self.remaining()
        if left < MIN_CALL_SECONDS:
            raise DeadlineReached(f"{what} not started: {self.why()}")
        return min(connect, left), min(read, left)


class _Process:
    deadline = Deadline()


_thread = threading.local()


def current() -> Deadline:
    """The deadline a network call made now must respect (this thread's, else the run's)."""
    here: Deadline | None = getattr(_thread, "deadline", None)
    return here or _Process.deadline


@contextmanager
def bounding(deadline: Deadline) -> Iterator[Deadline]:
    """Every network call of the process respects `deadline` inside the block (a run, a command)."""
    before, _Process.deadline = _Process.deadline, deadline
    try:
        yield deadline
    finally:
        _Process.deadline = before


@contextmanager
def on_this_thread(deadline: Deadline) -> Iterator[Deadline]:
    """Calls made by this thread respect `deadline` instead (spilling while worker threads still read)."""
    before = getattr(_thread, "deadline", None)
    _thread.deadline = deadline
    try:
        yield deadline
    finally:
        _thread.deadline = before


def azure_request_hook(request: Any) -> None:
    """azure-core `raw_request_hook`: the transport's connect and read timeouts cut to the current deadline.

    azure-core hands `request.context.options` to the transport as keyword arguments on every attempt,
    retries included; raising here stops the call before it starts (DeadlineReached is no AzureError,
    so azure-core's retry policy does not sleep and try again).
    """
    options = request.context.options
    connect = options.get("connection_timeout") or AZURE_CONNECT_TIMEOUT
    read = options.get("read_timeout") or AZURE_READ_TIMEOUT
    options["connection_timeout"], options["read_timeout"] = current().timeouts(connect, read, "Azure request")


AZURE_CONNECT_TIMEOUT = 10.0
AZURE_READ_TIMEOUT = 60.0
