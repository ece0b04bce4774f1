"""keyreport/columns.py is queries/schema.json as Python: the Lambda reads no data file, and nothing drifts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from keyreport.columns import KEY_COLUMNS, KEYS_TABLE, RUN_COLUMNS, RUNS_TABLE, USER_COLUMNS, USERS_TABLE, stream_record
from tests import schema


def from_schema(table: str) -> dict[str, str]:
    return {column["field"]: column["name"] for column in schema.tables()[table] if column["field"]}


@pytest.mark.parametrize(
    ("table", "mapping"), [(KEYS_TABLE, KEY_COLUMNS), (RUNS_TABLE, RUN_COLUMNS), (USERS_TABLE, USER_COLUMNS)]
)
def test_mapping_is_schema_json(table: str, mapping: dict[str, str]) -> None:
    expected = from_schema(table)
    assert dict(mapping) == expected, f"paste into lambda/keyreport/columns.py:\n{json.dumps(expected, indent=4)}"


def test_stream_record_renames_adds_time_generated_and_drops_nulls() -> None:
    row: dict[str, Any] = {"loggedDate": "2024-06-01T00:00:00Z", "user": "alice", "KeyAgeDays": 3, "Region": None}
    assert stream_record(row, KEY_COLUMNS) == {
        "TimeGenerated": "2024-06-01T00:00:00Z",
        "loggedDate_t": "2024-06-01T00:00:00Z",
        "user_s": "alice",
        "KeyAgeDays_d": 3,
    }


def test_a_field_the_table_does_not_declare_is_refused_not_dropped() -> None:
    with pytest.raises(KeyError, match=r"fields not declared in queries/schema.json: Surprise"):
        stream_record({"loggedDate": "2024-06-01T00:00:00Z", "Surprise": 1}, KEY_COLUMNS)
