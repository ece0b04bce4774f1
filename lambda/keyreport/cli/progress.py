"""Live progress of long commands on a terminal (tqdm on stderr); nothing when stderr is not a terminal or --json.

Progress observes without changing what it watches: boto3's own events count the IAM calls (users listed,
users read), and thin subclasses count what passes through the sink and the spill bucket.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from keyreport.records import Row
from keyreport.sinks.base import Delivery, Sink, Table
from keyreport.spill.bucket import SpillBucket, SpilledBatch

if TYPE_CHECKING:
    import boto3

    from keyreport.deadline import Deadline
    from keyreport.sinks.base import FailedBatch, OnFailed


def wanted(args: argparse.Namespace) -> bool:
    """Progress only for a person watching: stderr is a terminal and the output is not for a machine."""
    return sys.stderr.isatty() and not getattr(args, "json", False)


class Progress:
    """One tqdm line: a bar over `unit`s (the total may grow as it is learnt) and named counts after it."""

    def __init__(self, enabled: bool, desc: str, unit: str, total: int | None = None) -> None:
        self._bar = tqdm(
            total=total, desc=desc, unit=unit, disable=not enabled, file=sys.stderr, leave=False, dynamic_ncols=True
        )
        self._lock = threading.Lock()  # boto3 events arrive on the inventory's worker threads
        self._counts: dict[str, int] = {}

    def add_total(self, more: int) -> None:
        with self._lock:
            self._bar.total = (self._bar.total or 0) + more
            self._bar.refresh()

    def advance(self, steps: int = 1) -> None:
        with self._lock:
            self._bar.update(steps)

    def count(self, name: str, more: int = 1) -> None:
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + more
            self._bar.set_postfix(self._counts, refresh=True)

    def describe(self, text: str) -> None:
        with self._lock:
            self._bar.set_description_str(text)

    def close(self) -> None:
        with self._lock:
            self._bar.close()

    def watch_inventory(self, session: boto3.Session) -> None:
        """Users listed (the total) and users read (the bar), from the IAM calls the inventory makes."""
        session.events.register("after-call.iam.ListUsers", self._users_listed)
        session.events.register("after-call.iam.ListAccessKeys", self._user_read)

    def _users_listed(self, parsed: dict[str, Any], **_: Any) -> None:
        self.add_total(len(parsed.get("Users", [])))

    def _user_read(self, **_: Any) -> None:
        self.advance()


class CountingSink:
    """The sink, with the records it is given and those it ships counted."""

    def __init__(self, sink: Sink, progress: Progress) -> None:
        self.sink = sink
        self.name = sink.name
        self.progress = progress

    def send(
        self, table: Table, rows: Iterable[Row], deadline: Deadline, on_failed: OnFailed | None = None
    ) -> Delivery:
        delivery = self.sink.send(table, self._counted(table, rows), deadline, on_failed)
        self.progress.count("shipped", delivery.shipped)
        return delivery

    def _counted(self, table: Table, rows: Iterable[Row]) -> Iterator[Row]:
        for row in rows:
            if table is Table.KEYS:
                self.progress.count("keys")
            yield row


class CountingSpill(SpillBucket):
    """The spill bucket, with batches spilled counted, and for a replay, the objects (the bar) of the total."""

    def __init__(self, spill: SpillBucket, progress: Progress) -> None:
        super().__init__(
            spill.s3,
            spill.bucket,
            spill.mac_key_source(),
            max_bytes=spill.max_bytes,
            previous_mac_key=spill.previous_mac_key,
        )
        self.progress = progress

    def put(self, batch: FailedBatch, *, run_id: str, account_id: str, sink: str, sequence: int) -> SpilledBatch:
        spilled = super().put(batch, run_id=run_id, account_id=account_id, sink=sink, sequence=sequence)
        self.progress.count("spilled batches")
        return spilled

    def object_keys(self) -> Iterator[str]:
        for key in super().object_keys():  # streamed: the total grows as the listing goes
            self.progress.add_total(1)
            yield key

    def load(self, key: str, now: datetime | None = None) -> SpilledBatch:
        self.progress.advance()
        return super().load(key, now)


def counting_spill(spill: SpillBucket | None, progress: Progress) -> SpillBucket | None:
    return None if spill is None else CountingSpill(spill, progress)
