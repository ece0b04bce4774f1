"""Retrying as pure decisions: what one attempt came back with, and what to do next. The sinks' loops carry it out."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Answer:
    """What one attempt came back with: an HTTP status (with its Retry-After), or a transport failure."""

    status: int | None = None
    retry_after: float | None = None
    failure: str | None = None  # "tls", "connection", "no-token": no HTTP answer at all
    detail: str = ""  # the service's error or the exception's first line, for messages only

    def __str__(self) -> str:
        """The line an attempt leaves in a batch's history."""
        if self.status is not None:
            return f"{self.status} {self.detail}".strip()
        return f"{self.failure}: {self.detail}" if self.detail else str(self.failure)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def transient(self) -> bool:
        return self.failure == "connection" or self.status in RETRYABLE_STATUSES


@dataclass(frozen=True)
class Retry:
    wait: float


@dataclass(frozen=True)
class RefreshKey:
    """Read the signing key again and retry at once (a rotated workspace key)."""


@dataclass(frozen=True)
class Halve:
    """The service found the request too large: send each half on its own."""


@dataclass(frozen=True)
class GiveUp:
    why: str  # "tls", "signature", "refused", "exhausted", "no-token"


Decision = Retry | RefreshKey | Halve | GiveUp


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter, capped; a server's Retry-After wins when it gives one."""

    max_attempts: int = 6
    base_seconds: float = 1.0
    cap_seconds: float = 30.0
    # A server's wait is honoured up to this; longer (or past the deadline) gives up, so the batch is spilled.
    max_retry_after_seconds: float = 300.0
    rng: Callable[[], float] = random.random

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        return self.rng() * min(self.cap_seconds, self.base_seconds * 2.0 ** (attempt - 1))

    def after(self, answer: Answer, attempt: int, remaining: float) -> Retry | GiveUp:
        """Wait and try again, unless no attempt is left or the wait would end past the time remaining."""
        if attempt >= self.max_attempts or (answer.retry_after or 0.0) > self.max_retry_after_seconds:
            return GiveUp("exhausted")
        wait = self.delay(attempt, answer.retry_after)
        return Retry(wait) if wait < remaining else GiveUp("exhausted")


def retry_after_seconds(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), or None when absent or unreadable."""
    value = headers.get("Retry-After") or headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        seconds: float = (parsedate_to_datetime(value) - (now or datetime.now(UTC))).total_seconds()
        return max(0.0, seconds)
    except (TypeError, ValueError):
        return None
