"""Dry run: one JSON key record per line on stdout (run summaries go to the log), nothing sent anywhere."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, TextIO

from keyreport.deadline import Deadline
from keyreport.log import logger
from keyreport.records import Row
from keyreport.sinks.base import Delivery, OnFailed, Table, encode_row

if TYPE_CHECKING:
    from keyreport.settings import Settings, StdoutSettings
    from keyreport.wiring import Wiring


class StdoutSink:
    name = "stdout"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def send(
        self, table: Table, rows: Iterable[Row], deadline: Deadline, on_failed: OnFailed | None = None
    ) -> Delivery:
        stream = self.stream or sys.stdout
        delivery = Delivery(on_failed=on_failed)
        for row in rows:
            if table is Table.KEYS:
                stream.write(encode_row(row).decode("utf-8") + "\n")
            else:
                logger.info("run summary", extra={"summary": row})
            delivery.shipped += 1
        stream.flush()
        return delivery


def build(sink: StdoutSettings, settings: Settings, wiring: Wiring) -> StdoutSink:
    return StdoutSink()
