"""The time a run may still spend: Lambda's remaining time less a safety margin, or unbounded on a workstation."""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class Deadline:
    def __init__(self, remaining_ms: Callable[[], int] | None = None, margin_seconds: float = 0.0) -> None:
        self._remaining_ms = remaining_ms
        self._margin = margin_seconds

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        end = time.monotonic() + seconds
        return cls(lambda: int((end - time.monotonic()) * 1000))

    def remaining(self) -> float:
        """Seconds left for work; never negative."""
        if self._remaining_ms is None:
            return math.inf
        return max(0.0, self._remaining_ms() / 1000 - self._margin)

    def allows(self, seconds: float) -> bool:
        return seconds < self.remaining()
