"""`keyreport query` output: cells, make-series expansion, CSV and JSON (pure functions)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from keyreport.queries.output import ResultTable, as_csv, as_json, as_table, expanded, text

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
# What the query API returns for `make-series ... by account_number_s`: dynamic columns as JSON text.
SERIES = ResultTable(
    "PrimaryResult",
    ("account_number_s", "KeysCreated", "CreateDate_t"),
    ("string", "dynamic", "dynamic"),
    (("111122223333", "[0,2,1]", '["2026-01-01T00:00:00Z","2026-01-02T00:00:00Z","2026-01-03T00:00:00Z"]'),),
)


def test_cells_are_plain_and_unambiguous() -> None:
    assert [text(v) for v in (None, True, 3.0, 2.5, WHEN, [1, 2], "a,b")] == [
        "", "true", "3", "2.5", "2026-01-02T03:04:05Z", "[1,2]", "a,b",
    ]  # fmt: skip


def test_a_make_series_result_is_shown_one_point_per_line() -> None:
    rows = expanded(SERIES).rows
    assert rows == (
        ("111122223333", 0, "2026-01-01T00:00:00Z"),
        ("111122223333", 2, "2026-01-02T00:00:00Z"),
        ("111122223333", 1, "2026-01-03T00:00:00Z"),
    )
    lines = as_table([SERIES]).splitlines()
    assert lines[0].split() == ["account_number_s", "KeysCreated", "CreateDate_t"] and len(lines) == 6
    assert lines[-1] == "(1 row)"  # the service's row count, not the points


def test_arrays_of_different_lengths_are_left_as_they_are() -> None:
    ragged = ResultTable("t", ("a", "b"), ("dynamic", "dynamic"), (("[1,2]", "[1]"),))
    assert expanded(ragged) == ragged


def test_csv_quotes_what_needs_quoting() -> None:
    table = ResultTable("t", ("User", "When"), ("string", "datetime"), (("svc=reporting,eu", WHEN),))
    assert list(csv.reader(io.StringIO(as_csv([table])))) == [
        ["User", "When"],
        ["svc=reporting,eu", "2026-01-02T03:04:05Z"],
    ]


def test_json_keeps_types_and_decodes_dynamic_values() -> None:
    document = json.loads(as_json([SERIES], {"status": "Success"}))
    [row] = document["tables"][0]["rows"]
    assert document["status"] == "Success" and row["KeysCreated"] == [0, 2, 1]
    assert document["tables"][0]["columns"][1] == {"name": "KeysCreated", "type": "dynamic"}
