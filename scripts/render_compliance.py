"""Renders what the compliance map (queries/compliance.json) feeds: the KeyReport_Controls workspace function and the
table of controls in docs/queries.md (between its `compliance-table` markers).

`make render` writes both; tests/queries/test_compliance.py fails when a checked-in file differs from this.
"""

from __future__ import annotations

from pathlib import Path

from keyreport.queries import compliance
from scripts import arm

CONTROLS_FUNCTION_PATH = arm.ROOT / "queries" / "functions" / "KeyReport_Controls.kql"
DOCS_PATH = arm.ROOT / "docs" / "queries.md"
TABLE_START = "<!-- compliance-table: rendered from queries/compliance.json by `make render` -->"
TABLE_END = "<!-- /compliance-table -->"
# One column per benchmark in KeyReport_Controls, named without spaces or dots.
BENCHMARK_COLUMNS = {
    "CIS AWS Foundations v5.0": "CisV5",
    "CIS AWS Foundations v6.0": "CisV6",
    "AWS Security Hub": "SecurityHub",
}


def _kql_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def controls_function(the_map: compliance.ComplianceMap) -> str:
    """KeyReport_Controls: the map as a datatable, which KeyReport_FindingSnapshots looks its ids up in."""
    columns = ["ControlId", "Control", "Severity", "Title", "Resource", *BENCHMARK_COLUMNS.values()]
    rows = []
    for control in the_map.controls.values():
        values = [control.id, control.text, control.severity, control.title, control.resource]
        values += [control.benchmarks.get(name, "") for name in BENCHMARK_COLUMNS]
        rows.append("    " + ", ".join(_kql_string(value) for value in values) + ",")
    declaration = ", ".join(f"{column}:string" for column in columns)
    return (
        "// id: KeyReport_Controls\n"
        "// title: The checks of the compliance map, with their benchmark ids and severity\n"
        "// description: Generated from queries/compliance.json by scripts/render_compliance.py (`make render`): do\n"
        "//   not edit. One row per check: ControlId (its id in the map), Control (its benchmark ids as text),\n"
        "//   Severity, Title, Resource (what one finding is about) and one column per benchmark with its id there.\n"
        "// local: duckdb-kql\n"
        f"datatable({declaration})\n[\n" + "\n".join(rows) + "\n]\n"
    )


def controls_table(the_map: compliance.ComplianceMap) -> str:
    """The docs' table: one row per check, its id in each benchmark, severity and title."""
    names = [benchmark.name for benchmark in the_map.benchmarks]
    labels = [benchmark.label for benchmark in the_map.benchmarks]
    lines = [
        "| check (`ControlId`) | " + " | ".join(labels) + " | severity | passes when |",
        "|---|" + "---|" * len(labels) + "---|---|",
    ]
    for control in the_map.controls.values():
        ids = [control.benchmarks.get(name, "") for name in names]
        lines.append(f"| `{control.id}` | " + " | ".join(ids) + f" | {control.severity} | {control.title} |")
    return "\n".join(lines)


def docs_text(current: str, the_map: compliance.ComplianceMap) -> str:
    """docs/queries.md with the table between the markers replaced."""
    before, found, rest = current.partition(TABLE_START)
    _, found_end, after = rest.partition(TABLE_END)
    if not found or not found_end:
        raise ValueError(f"{DOCS_PATH.name}: the markers {TABLE_START!r} and {TABLE_END!r} are missing")
    return f"{before}{TABLE_START}\n{controls_table(the_map)}\n{TABLE_END}{after}"


def rendered() -> dict[Path, str]:
    """The files this module generates, and their content."""
    the_map = compliance.load()
    return {
        CONTROLS_FUNCTION_PATH: controls_function(the_map),
        DOCS_PATH: docs_text(DOCS_PATH.read_text(encoding="utf-8"), the_map),
    }
