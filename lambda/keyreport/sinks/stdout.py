"""Dry run: every row of every table on stdout, one JSON line each, tagged with its Log Analytics table
(`{"table": "AWS_Access_Key_Report_CL", "record": {...}}`); nothing is sent anywhere and logs stay on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, TextIO

from keyreport.deadline import Deadline
from keyreport.records import Row
from keyreport.sinks.base import Delivery, OnFailed, Table

if TYPE_CHECKING:
    from keyreport.settings import Settings, StdoutSettings
    from keyreport.wiring import Wiring

# The tables of the default log type, for a sink built without settings (tests, `keyreport check`).
DEFAULT_TABLES: Mapping[Table, str] = {
    Table.KEYS: "AWS_Access_Key_Report_CL",
    Table.RUNS: "AWS_Access_Key_Report_Run_CL",
    Table.USERS: "AWS_Access_Key_Report_Users_CL",
}


class StdoutSink:
    name = "stdout"

    def __init__(self, stream: TextIO | None = None, tables: Mapping[Table, str] = DEFAULT_TABLES) -> None:
        self.stream = stream
        self.tables = tables

    def send(
        self, table: Table, rows: Iterable[Row], deadline: Deadline, on_failed: OnFailed | None = None
    ) -> Delivery:
        stream = self.stream or sys.stdout
        delivery = Delivery(on_failed=on_failed)
        name = self.tables[table]
        for row in rows:
            line = {"table": name, "record": row}
            stream.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
            delivery.shipped += 1
        stream.flush()
        return delivery


def build(sink: StdoutSettings, settings: Settings, wiring: Wiring) -> StdoutSink:
    tables = {
        Table.KEYS: f"{settings.log_type}_CL",
        Table.RUNS: f"{settings.run_log_type}_CL",
        Table.USERS: f"{settings.users_log_type}_CL",
    }
    return StdoutSink(tables=tables)
