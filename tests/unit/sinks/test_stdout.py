"""The dry-run sink: every row of every table on its stream, one JSON line each, tagged with its table."""

from __future__ import annotations

import io
import json

from keyreport.deadline import Deadline
from keyreport.settings import Settings
from keyreport.sinks.base import Table
from keyreport.sinks.stdout import StdoutSink, build


def test_every_table_is_printed_tagged_with_its_log_analytics_table() -> None:
    out = io.StringIO()
    sink = StdoutSink(out)
    for table, rows in ((Table.KEYS, [{"user": "a"}, {"user": "b"}]), (Table.USERS, [{"user": "a"}]),
                        (Table.RUNS, [{"Status": "ok"}])):  # fmt: skip
        assert sink.send(table, rows, Deadline()).shipped == len(rows)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines == [
        {"table": "AWS_Access_Key_Report_CL", "record": {"user": "a"}},
        {"table": "AWS_Access_Key_Report_CL", "record": {"user": "b"}},
        {"table": "AWS_Access_Key_Report_Users_CL", "record": {"user": "a"}},
        {"table": "AWS_Access_Key_Report_Run_CL", "record": {"Status": "ok"}},
    ]


def test_the_tables_follow_the_configured_log_type() -> None:
    settings = Settings.from_env({"KEYREPORT_SINK": "stdout", "KEYREPORT_LOG_TYPE": "Keys"})
    sink = build(settings.sink, settings, None)  # type: ignore[arg-type]
    assert sink.tables == {Table.KEYS: "Keys_CL", Table.RUNS: "Keys_Run_CL", Table.USERS: "Keys_Users_CL"}
