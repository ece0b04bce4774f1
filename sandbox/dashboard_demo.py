"""`make demo`, second half: the shipped KQL library run over what the emulated workspace stored.

Each query the local engine can run (duckdb-kql; header `local: duckdb-kql`) is executed over the stored
rows and shown as a table; the others are listed with the reason. Then `keyreport query root-keys` runs
for real: LogsQueryClient, an Entra token, the query API emulator over HTTPS. The counts of the main
grids are checked against the seeded estate.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from typing import Any

from keyreport import cli, queries
from keyreport.queries import compliance
from keyreport.queries.output import ResultTable as OutputTable
from keyreport.queries.output import as_table
from sandbox.estate import Estate
from sandbox.expected import Expected
from sandbox.local_kql import LocalWorkspace, ResultTable, TimeRange
from sandbox.stack import WORKSPACE_ID, Stack

SHOWN_ROWS = 6


def show(stack: Stack, estate: Estate, at: datetime, run_time: datetime) -> list[str]:
    """Print the dashboards; return how their counts disagree with the estate (empty when they agree)."""
    print("\n== The KQL library over the stored rows (duckdb-kql; Kusto itself is not local)")
    workspace = LocalWorkspace.from_stores(stack.collector, stack.ingestion)
    results: dict[str, ResultTable] = {}
    try:
        for query in queries.library().values():
            if not query.runs_locally or _absent_tables(query.text, workspace):
                continue
            results[query.id] = result = workspace.run(query.text, time_range=TimeRange.last(query.timespan, at))
            count = f"{len(result.rows)} row{'' if len(result.rows) == 1 else 's'}"
            print(
                f"\n{query.id}: {query.title} ({count}, default time range {queries.format_duration(query.timespan)})"
            )
            print(_preview(result), end="")
    finally:
        workspace.close()
    skipped = [f"{q.id} ({q.not_local_reason})" for q in queries.library().values() if not q.runs_locally]
    skipped += [
        f"{q.id} (reads {', '.join(absent)}, which another connector fills)"
        for q in queries.library().values()
        if (absent := _absent_tables(q.text, workspace)) and q.runs_locally
    ]
    print("\nNot run locally, checked by the Kusto analyser in `make test`: " + "; ".join(skipped))
    truth = Expected(estate, run_time)
    return _problems(results, truth) + _compliance(results["compliance-summary"], truth) + _query_for_real()


def _absent_tables(text: str, workspace: LocalWorkspace) -> list[str]:
    """The tables of other connectors (AWSCloudTrail) the query reads and the sandbox workspace does not hold."""
    return [name for name in queries.external_tables() if name in text and name not in workspace.tables]


def _compliance(summary: ResultTable, truth: Expected) -> list[str]:
    """The compliance summary, check by check, and how it differs from what the estate implies."""
    print("\n== Compliance summary (each account's current state; ids from queries/compliance.json)")
    rows = {row["ControlId"]: row for row in summary.records()}
    width = max((len(str(row["Control"])) for row in rows.values()), default=7)
    print(f"  {'Control':<{width}}  {'Passing':>7}  Failing / excepted / checked  check")
    for control in compliance.load().controls.values():
        row = rows.get(control.id)
        if row is None:
            print(f"  {control.text or control.id:<{width}}  {'-':>7}  nothing to check              {control.id}")
            continue
        score = f"{row['Failing']} / {row['Excepted']} / {row['Checked']}"
        print(f"  {row['Control'] or control.id:<{width}}  {row['PassPct']:>6}%  {score:<28}  {control.id}")
    shown = {control: (row["Failing"], row["Excepted"], row["Checked"]) for control, row in rows.items()}
    expected = truth.compliance()
    return [
        f"compliance {control}: {shown.get(control)} (failing, excepted, checked), the seeded estate has "
        f"{expected.get(control)}"
        for control in sorted(set(shown) | set(expected))
        if shown.get(control) != expected.get(control)
    ]


def _query_for_real() -> list[str]:
    """`keyreport query` needs the workspace id, which a Logs Ingestion configuration does not carry."""
    print(f"\n$ KEYREPORT_WORKSPACE_ID={WORKSPACE_ID} keyreport query root-keys   # LogsQueryClient -> Entra -> API")
    before = os.environ.get("KEYREPORT_WORKSPACE_ID")
    os.environ["KEYREPORT_WORKSPACE_ID"] = WORKSPACE_ID
    try:
        code = cli.main(["query", "root-keys"])
    finally:
        if before is None:
            del os.environ["KEYREPORT_WORKSPACE_ID"]
    return [] if code == 0 else [f"keyreport query root-keys exited {code}"]


def _preview(result: ResultTable) -> str:
    table = OutputTable(
        result.name,
        tuple(result.column_names),
        tuple(c.type for c in result.columns),
        result.rows[:SHOWN_ROWS],
    )
    text = as_table([table]).rsplit("(", 1)[0]  # the full count is in the heading
    more = len(result.rows) - SHOWN_ROWS
    return "  " + text.rstrip("\n").replace("\n", "\n  ") + (f"\n  ... and {more} more\n" if more > 0 else "\n")


# What each grid should list, as the estate implies it.
CHECKED: dict[str, Callable[[Expected], tuple[Any, ...]]] = {
    "rotation-due": Expected.rotation_due,
    "never-used": Expected.never_used,
    "stale-keys": Expected.stale,
    "inactive-keys": Expected.inactive,
    "root-keys": Expected.root_keys,
    "two-active-keys": Expected.users_with_two_active_keys,
    "unused-45-days": Expected.unused_45,
    "unused-90-days": Expected.unused_90,
    "console-without-mfa": Expected.console_without_mfa,
    "inactive-users": Expected.inactive_users,
}


def _problems(results: dict[str, ResultTable], truth: Expected) -> list[str]:
    expected = {query_id: len(check(truth)) for query_id, check in CHECKED.items()}
    return [
        f"{query_id}: {len(results[query_id].rows)} rows, the seeded estate has {count}"
        for query_id, count in expected.items()
        if len(results[query_id].rows) != count
    ]
