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


# A user named `=1+2` (a valid IAM name) or a run error a spreadsheet would execute, and terminal escapes.
HOSTILE = ResultTable(
    "PrimaryResult",
    ("user_s", "ErrorDetail_s", "KeyAgeDays_d"),
    ("string", "string", "real"),
    (
        ("=1+2", "@SUM(A1)\x1b]8;;http://evil\x07click\x1b]8;;\x07", -3.0),
        ("+cmd|' /C calc'!A0", "-2+3", 7.0),
        ("\tleading-tab", "\rcarriage", 1.0),
        ("alice", "line\nbreak\x1b[31mred\x9b", 2.0),
        ("admin\u202e\u2066gnp.exe\u2069", "\u200fright\u2028left\u061c", 3.0),  # bidi: text shown reordered
    ),
)
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029"


def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_neutralised() -> None:
    rows = list(csv.reader(io.StringIO(as_csv([HOSTILE]))))
    assert rows[1][:2] == ["'=1+2", r"'@SUM(A1)\x1b]8;;http://evil\x07click\x1b]8;;\x07"]
    assert rows[2][:2] == ["'+cmd|' /C calc'!A0", "'-2+3"]
    assert rows[3][:2] == [r"'\tleading-tab", r"'\rcarriage"]
    assert [row[2] for row in rows[1:]] == ["-3", "7", "1", "2", "3"]  # numbers stay numbers
    assert rows[4][0] == "alice"


def test_csv_passes_no_control_or_bidi_character_a_terminal_or_viewer_would_obey() -> None:
    out = as_csv([HOSTILE])
    assert not any((ord(c) < 32 and c not in "\r\n") or 0x7F <= ord(c) <= 0x9F or c in BIDI for c in out)
    assert r"admin\u202e\u2066gnp.exe\u2069" in out  # shown, not obeyed
    assert out.count("\r\n") == 1 + len(HOSTILE.rows)  # one line per row


def test_the_table_shows_no_control_character_a_terminal_would_obey() -> None:
    shown = as_table([HOSTILE])
    assert not any((ord(c) < 32 and c != "\n") or 0x7F <= ord(c) <= 0x9F or c in BIDI for c in shown)
    assert "=1+2" in shown and r"line\nbreak\x1b[31mred\x9b" in shown  # shown escaped, not obeyed
    assert len(shown.splitlines()) == 2 + len(HOSTILE.rows) + 1  # one line per row: no injected line breaks
