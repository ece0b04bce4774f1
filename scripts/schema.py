"""Reads queries/schema.json, the one declaration of both tables, for the renderers (and the tests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from keyreport import queries

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "queries" / "schema.json"
KEYS_TABLE = "AWS_Access_Key_Report_CL"
RUNS_TABLE = "AWS_Access_Key_Report_Run_CL"
USERS_TABLE = "AWS_Access_Key_Report_Users_CL"


def tables() -> dict[str, list[dict[str, Any]]]:
    """Table name -> its declared columns (name, type, field, description), TimeGenerated included."""
    declared: dict[str, dict[str, Any]] = json.loads(SCHEMA_PATH.read_text())["tables"]
    return {name: table["columns"] for name, table in declared.items()}


def external_tables() -> dict[str, list[dict[str, Any]]]:
    """Table name -> declared columns (name, type) of the tables other connectors fill (AWSCloudTrail)."""
    return dict(queries.external_tables())
