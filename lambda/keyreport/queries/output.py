"""Query results as a person or a program wants them: an aligned text table, CSV or JSON.

A result is a list of tables (the query API's shape). Values arrive as azure-monitor-query gives them:
datetimes as `datetime`, guids and timespans as text, `dynamic` values as JSON text or decoded JSON.
A make-series result (one row of equally long arrays) is shown one point per line in the table and CSV
formats, as `mv-expand` would; JSON keeps the arrays.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

FORMATS = ("table", "csv", "json")
# A text cell starting with one of these is a formula to a spreadsheet (OWASP's CSV injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# C0, DEL, C1 (escapes a terminal would obey), the bidirectional controls (which reorder what a reader sees:
# "Trojan Source", CVE-2021-42574) and the line and paragraph separators.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


@dataclass(frozen=True)
class ResultTable:
    name: str
    columns: tuple[str, ...]
    types: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


def text(value: Any) -> str:
    """One cell: ISO 8601 UTC datetimes, whole numbers without `.0`, true/false, JSON for dynamic values."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value
        return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{moment.microsecond:06d}" if moment.microsecond else "") + "Z"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def visible(cell: str) -> str:
    """A cell for a terminal or a spreadsheet: control and bidi characters shown escaped (\\n, \\x1b,
    \\u202e), never obeyed."""
    return CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), cell)


def csv_cell(value: Any) -> str:
    """A CSV cell no spreadsheet runs and no terminal obeys: control and bidi characters escaped as in the
    table, and text that would start a formula gets a leading apostrophe."""
    cell = text(value)
    shown = visible(cell)
    return "'" + shown if isinstance(value, str) and cell.startswith(FORMULA_STARTS) else shown


def json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return text(value)
    return value


def dynamic(value: Any) -> Any:
    """A `dynamic` cell decoded (the query API sends it as JSON text)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def expanded(table: ResultTable) -> ResultTable:
    """A make-series table (dynamic arrays of one length per row) as one row per series point."""
    series = [i for i, kind in enumerate(table.types) if kind == "dynamic"]
    if not series or not table.rows:
        return table
    rows: list[tuple[Any, ...]] = []
    for row in table.rows:
        arrays = [dynamic(row[i]) for i in series]
        if not all(isinstance(a, list) for a in arrays) or len({len(a) for a in arrays}) != 1:
            return table
        for point in range(len(arrays[0])):
            cells = list(row)
            for i, array in zip(series, arrays, strict=True):
                cells[i] = array[point]
            rows.append(tuple(cells))
    return ResultTable(table.name, table.columns, table.types, tuple(rows))


def as_table(tables: Sequence[ResultTable]) -> str:
    out: list[str] = []
    for table in tables:
        shown = expanded(table)
        if len(tables) > 1:
            out.append(f"{shown.name}:")
        cells = [[visible(text(value)) for value in row] for row in shown.rows]
        widths = [max([len(name), *(len(line[i]) for line in cells)]) for i, name in enumerate(shown.columns)]
        out.append("  ".join(name.ljust(width) for name, width in zip(shown.columns, widths, strict=True)).rstrip())
        out.append("  ".join("-" * width for width in widths))
        out.extend("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in cells)
        out.append(f"({len(table.rows)} row{'' if len(table.rows) == 1 else 's'})")
    return "\n".join(out) + "\n"


def as_csv(tables: Sequence[ResultTable]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180; and a cell holding \r is quoted too
    for index, table in enumerate(tables):
        shown = expanded(table)
        if index:
            buffer.write("\r\n")
        writer.writerow(shown.columns)
        writer.writerows([csv_cell(value) for value in row] for row in shown.rows)
    return buffer.getvalue()


def as_json(tables: Sequence[ResultTable], header: dict[str, Any]) -> str:
    document = {
        **header,
        "tables": [
            {
                "name": table.name,
                "columns": [{"name": n, "type": t} for n, t in zip(table.columns, table.types, strict=True)],
                "rows": [
                    {
                        name: dynamic(value) if kind == "dynamic" else json_value(value)
                        for name, kind, value in zip(table.columns, table.types, row, strict=True)
                    }
                    for row in table.rows
                ],
            }
            for table in tables
        ],
    }
    return json.dumps(document, indent=2) + "\n"
