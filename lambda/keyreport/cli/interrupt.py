"""Ctrl-C and SIGTERM during a command: stop the work, keep what was read, exit 130 without a traceback.

The first signal ends the command's deadline at once but keeps a grace period, so a run stops reading,
spills what it holds and writes its run row exactly as a run cut short by its deadline does. A second
signal aborts at once (KeyboardInterrupt, still without a traceback).
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from keyreport.deadline import Deadline

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a command stopped by Ctrl-C
#: After the signal: the time spilling and the run row may still take (the run's closing steps keep 1 s of it).
GRACE_SECONDS = 10.0
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupt:
    """Which signal stopped the command (None while none did), and the deadlines that obey it."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self._at: float | None = None

    def deadline(self, seconds: float | None, margin: float) -> Deadline:
        """The command's deadline (`seconds` from now, or none) that also ends when a signal arrives.

        Without a timeout the margin is the grace period (plus the second the closing steps keep back), so
        a signal leaves the same time for spilling and the run row with or without --timeout.
        """
        margin = GRACE_SECONDS + 1.0 if seconds is None else margin
        end = None if seconds is None else time.monotonic() + seconds

        def remaining_ms() -> int:
            now = time.monotonic()
            left = math.inf if end is None else end - now
            if self._at is not None:
                left = min(left, margin - (now - self._at))
            return sys.maxsize if left == math.inf else int(left * 1000)

        return Deadline(remaining_ms, margin, why=self.why)

    def why(self) -> str:
        return f"the command was interrupted ({self.signal})" if self.signal else ""

    def _received(self, number: int, _: FrameType | None) -> None:
        if self._at is not None:  # the second signal: stop waiting for the closing steps
            raise KeyboardInterrupt
        self._at, self.signal = time.monotonic(), signal.Signals(number).name
        print(
            f"keyreport: {self.signal}: stopping; what was read is spilled and the run row written "
            f"(at most {GRACE_SECONDS:g} s; press Ctrl-C again to abort)",
            file=sys.stderr,
            flush=True,
        )

    @contextmanager
    def catching(self) -> Iterator[Interrupt]:
        """SIGINT and SIGTERM stop the work gracefully inside the block (only the main thread may set handlers)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        before = {number: signal.signal(number, self._received) for number in SIGNALS}
        try:
            yield self
        finally:
            for number, handler in before.items():
                signal.signal(number, handler)


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM as Ctrl-C (KeyboardInterrupt) for commands with no graceful stop, so both exit 130 the same way."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)
