"""queries/schema.json, the one declaration of both tables, as the tests read it."""

from __future__ import annotations

import json
from pathlib import Path

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "queries" / "schema.json"
KEYS_TABLE = "AWS_Access_Key_Report_CL"
RUNS_TABLE = "AWS_Access_Key_Report_Run_CL"


def columns(table: str) -> dict[str, str]:
    """Custom columns (TimeGenerated excluded) -> Log Analytics type."""
    declared = json.loads(SCHEMA_PATH.read_text())["tables"][table]["columns"]
    return {column["name"]: column["type"] for column in declared if column["field"]}


def fields(table: str) -> set[str]:
    declared = json.loads(SCHEMA_PATH.read_text())["tables"][table]["columns"]
    return {column["field"] for column in declared if column["field"]}
