"""What every sink shares: the tables, the outcome of a delivery, batching and the retry decision."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Protocol

from keyreport.deadline import Deadline
from keyreport.records import Row

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class Table(Enum):
    KEYS = "keys"
    RUNS = "runs"


@dataclass
class FailedBatch:
    """Rows that could not be delivered, kept so they can be spilled and replayed."""

    table: Table
    rows: list[Row]
    reason: str
    attempts: list[str] = field(default_factory=list)


@dataclass
class Delivery:
    shipped: int = 0
    failed_batches: list[FailedBatch] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(len(batch.rows) for batch in self.failed_batches)


class Sink(Protocol):
    name: str

    def send(self, table: Table, rows: Iterable[Row], deadline: Deadline) -> Delivery: ...


def encode_row(row: Row) -> bytes:
    return json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_array(rows: list[Row]) -> bytes:
    return b"[" + b",".join(encode_row(row) for row in rows) + b"]"


def json_array_batches(rows: Iterable[Row], max_bytes: int) -> Iterator[tuple[list[Row], bytes]]:
    """Rows grouped into JSON array bodies of at most `max_bytes`, encoded once, streamed.

    A single row too large for any request comes alone, its body over the limit: the sink must fail it
    (so it is spilled) rather than send it, and the rows around it still go.
    """
    batch: list[Row] = []
    parts: list[bytes] = []
    size = 2  # the brackets
    for row in rows:
        encoded = encode_row(row)
        if batch and size + len(encoded) + 1 > max_bytes:
            yield batch, b"[" + b",".join(parts) + b"]"
            batch, parts, size = [], [], 2
        batch.append(row)
        parts.append(encoded)
        size += len(encoded) + (1 if len(parts) > 1 else 0)
    if batch:
        yield batch, b"[" + b",".join(parts) + b"]"


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), or None when absent or unreadable."""
    value = headers.get("Retry-After") or headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        seconds: float = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        return max(0.0, seconds)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped; a server's Retry-After wins when it gives one."""

    max_attempts: int = 6
    base_seconds: float = 1.0
    cap_seconds: float = 30.0
    rng: Callable[[], float] = random.random

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        return self.rng() * min(self.cap_seconds, self.base_seconds * 2.0 ** (attempt - 1))

    def next_delay(self, attempt: int, retry_after: float | None, deadline: Deadline) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None when no attempt is left or time runs out."""
        if attempt >= self.max_attempts:
            return None
        wait = self.delay(attempt, retry_after)
        return wait if deadline.allows(wait) else None
