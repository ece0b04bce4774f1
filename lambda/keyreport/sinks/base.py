"""What every sink shares: the tables, the outcome of a delivery, and how a row is encoded."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from keyreport.deadline import Deadline
from keyreport.records import Row


class Table(Enum):
    KEYS = "keys"
    RUNS = "runs"
    USERS = "users"


@dataclass
class FailedBatch:
    """Rows that could not be delivered, kept so they can be spilled and replayed."""

    table: Table
    rows: list[Row]
    reason: str
    attempts: list[str] = field(default_factory=list)


#: The reason of a batch failed without an attempt because the run's time was up (replay sends it later).
DEADLINE_REASON = "deadline: not sent, the run's time was up"

OnFailed = Callable[[FailedBatch], None]


@dataclass
class Delivery:
    shipped: int = 0
    failed_batches: list[FailedBatch] = field(default_factory=list)
    on_failed: OnFailed | None = None  # told of each failed batch at once, so it can be spilled at once

    def fail(self, batch: FailedBatch) -> None:
        self.failed_batches.append(batch)
        if self.on_failed is not None:
            self.on_failed(batch)

    @property
    def failed(self) -> int:
        return sum(len(batch.rows) for batch in self.failed_batches)


class Sink(Protocol):
    name: str

    def send(
        self, table: Table, rows: Iterable[Row], deadline: Deadline, on_failed: OnFailed | None = None
    ) -> Delivery: ...


def encode_row(row: Row) -> bytes:
    return json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_array(parts: Iterable[bytes]) -> bytes:
    return b"[" + b",".join(parts) + b"]"
