"""The tests' views of queries/schema.json, on top of scripts.schema (the one reader, shared with the renderers)."""

from __future__ import annotations

from scripts.schema import KEYS_TABLE, RUNS_TABLE, SCHEMA_PATH, USERS_TABLE, external_tables, tables

__all__ = ["KEYS_TABLE", "RUNS_TABLE", "SCHEMA_PATH", "USERS_TABLE", "columns", "external_tables", "fields", "tables"]


def columns(table: str) -> dict[str, str]:
    """Custom columns (TimeGenerated excluded) -> Log Analytics type."""
    return {column["name"]: column["type"] for column in tables()[table] if column["field"]}


def fields(table: str) -> set[str]:
    return {column["field"] for column in tables()[table] if column["field"]}
