"""Writes every rendered file (`make render`): the workbook, the alert rules, the workspace functions, the
Logs Ingestion template, the exceptions watchlist template and the Microsoft Sentinel solution (azure/sentinel/).

    python -m scripts.render

Sources: queries/compliance.json (scripts/render_compliance.py: KeyReport_Controls and the docs' table),
KeyReport_FindingSnapshots and KeyReport_SetupKeys (scripts/render_current_checks.py: their current-state twins),
queries/*.kql (scripts/render_workbook.py, scripts/render_alerts.py), queries/functions/*.kql
(scripts/render_functions.py), queries/schema.json (scripts/render_logs_ingestion.py), queries/sentinel/*.kql
(scripts/render_watchlist.py: azure/exceptions-watchlist.json), and all of them for the Sentinel solution
(scripts/render_sentinel.py). Run after changing any; the tests fail while a checked-in file
differs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from keyreport import queries
from scripts import (
    arm,
    render_alerts,
    render_compliance,
    render_current_checks,
    render_functions,
    render_logs_ingestion,
    render_sentinel,
    render_watchlist,
    render_workbook,
)

COMMAND = "make render"  # what the tests tell you to run when a file is stale


def rendered() -> dict[Path, str]:
    """Every generated file and its content."""
    return {
        **render_compliance.rendered(),
        **render_current_checks.rendered(),
        **render_workbook.rendered(),
        **render_alerts.rendered(),
        **render_logs_ingestion.rendered(),
        **render_functions.rendered(),
        **render_watchlist.rendered(),
        **render_sentinel.rendered(),
    }


def main() -> None:
    # The map's function and the current-state twins first: the functions template and the rules read the
    # functions as written.
    for render_first in (render_compliance, render_current_checks):
        for path, text in render_first.rendered().items():
            path.write_text(text, encoding="utf-8")
        queries.functions.cache_clear()
    for path, text in rendered().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        sys.stdout.write(f"wrote {path.relative_to(arm.ROOT)}\n")
    for path in render_sentinel.stale():
        path.unlink()
        sys.stdout.write(f"removed {path.relative_to(arm.ROOT)}\n")


if __name__ == "__main__":
    main()
