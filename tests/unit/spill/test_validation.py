"""Spill documents are checked against the tables' declared columns; anything else is refused, never crashes."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyreport.errors import SpillRejected
from keyreport.sinks.base import Table
from keyreport.spill.bucket import object_key
from keyreport.spill.validation import FORMAT, SHAPES, TABLE_COLUMNS, TYPES, validated
from tests import schema

ACCOUNT = "123456789012"
RUN = "0b6f2e5c-4a7d-4e1b-9c3f-2d8a6e1f7b40"
KEY = f"keyreport/spill/{ACCOUNT}/{RUN}/keys-00000.json"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ROW = {
    "loggedDate": "2026-11-23T11:00:00Z",
    "account_number": ACCOUNT,
    "user": "alice",
    "UserArn": f"arn:aws:iam::{ACCOUNT}:user/alice",
    "AccessKeyId": "AKIA...MPLE",
    "KeyFingerprint": "kf2-" + "ab" * 20,
    "Status": "Active",
    "CreateDate": "2026-01-01T00:00:00Z",
    "KeyAgeDays": 326,
    "NeverUsed": True,
    "RunId": RUN,
}
DOCUMENT = {
    "format": FORMAT,
    "run_id": RUN,
    "account_id": ACCOUNT,
    "sink": "data_collector",
    "table": "keys",
    "reason": "refused",
    "attempts": ["400 InvalidDataFormat"],
    "spilled_at": "2026-11-23T11:05:00Z",
    "rows": [ROW],
}


def check(document: Any) -> dict[str, Any]:
    where = object_key(KEY)
    assert where is not None
    return validated(document, where, NOW)


def changed(**row_changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(DOCUMENT)
    document["rows"][0].update(row_changes)
    return document


def test_every_table_a_batch_can_belong_to_is_validated_against_its_declared_columns() -> None:
    assert set(TABLE_COLUMNS) == set(Table), "add the new table's columns to keyreport.spill.validation"
    suffixes = {column[-2:] for columns in TABLE_COLUMNS.values() for column in columns.values()}
    assert suffixes <= set(TYPES)
    declared = {
        table: {c["field"]: c["name"] for c in columns if c["field"]} for table, columns in schema.tables().items()
    }
    assert all(dict(columns) in declared.values() for columns in TABLE_COLUMNS.values())
    assert set(SHAPES) <= {field for columns in TABLE_COLUMNS.values() for field in columns}


def test_a_document_keyreport_writes_is_accepted() -> None:
    batch = check(copy.deepcopy(DOCUMENT))
    assert (batch["table"], batch["rows"], batch["account_id"]) == (Table.KEYS, [ROW], ACCOUNT)


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"NeverUsed": "true"}, "invalid NeverUsed"),
        ({"KeyAgeDays": True}, "invalid KeyAgeDays"),
        ({"KeyAgeDays": float("nan")}, "invalid KeyAgeDays"),
        ({"CreateDate": "2026-02-30T00:00:00Z"}, "invalid CreateDate"),
        ({"CreateDate": "2026-01-01 00:00:00"}, "invalid CreateDate"),
        ({"RunId": "not-a-guid"}, "invalid RunId"),
        ({"user": "x" * 40_000}, "invalid user"),
        ({"account_number": "12345678901\u0662"}, "invalid account_number"),
        ({"AccessKeyId": "AKIAIOSFODNN7EXAMPLE"}, "invalid AccessKeyId"),
        ({"KeyFingerprint": "kf1-" + "ab" * 20}, "invalid KeyFingerprint"),
        ({"Surprise": 1}, "fields the table does not declare"),
        ({"loggedDate": "2026-11-23T11:06:00Z"}, "dated after the batch was spilled"),
    ],
)
def test_a_row_that_keyreport_would_not_write_is_refused(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(SpillRejected, match=f"row 1 .*{says}"):
        check(changed(**changes))


def test_a_value_is_never_quoted_in_the_reason() -> None:
    with pytest.raises(SpillRejected) as refused:
        check(changed(AccessKeyId="AKIAIOSFODNN7EXAMPLE", user="=HYPERLINK(1)"))
    assert "AKIAIOSFODNN7EXAMPLE" not in str(refused.value)


@settings(max_examples=300, deadline=None)
@given(
    document=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    )
)
def test_any_json_is_refused_with_a_reason_never_a_crash(document: Any) -> None:
    with pytest.raises(SpillRejected):
        check(document)


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(sorted(DOCUMENT)), value=st.none() | st.integers() | st.text() | st.lists(st.text()))
def test_any_document_field_changed_to_anything_is_refused_or_still_valid(field: str, value: Any) -> None:
    document = copy.deepcopy(DOCUMENT) | {field: value}
    try:
        batch = check(document)
    except SpillRejected:
        return
    assert batch["rows"] and all(isinstance(row, dict) for row in batch["rows"])


def run_document(**row_changes: Any) -> dict[str, Any]:
    """A spilled run row (what the pipeline writes when the run row itself could not be shipped)."""
    row = {
        "loggedDate": "2026-11-23T11:00:00Z",
        "account_number": ACCOUNT,
        "RunId": RUN,
        "Status": "ok",
        "Scope": "user",
        "ScopeUser": "alice",
        "UserDeleted": False,
        "InventoryComplete": True,
        "KeyRows": 2,
        "UserRows": 1,
    } | row_changes
    return copy.deepcopy(DOCUMENT) | {"table": "runs", "rows": [row]}


def check_run(document: dict[str, Any]) -> dict[str, Any]:
    where = object_key(f"keyreport/spill/{ACCOUNT}/{RUN}/runs-00000.json")
    assert where is not None
    return validated(document, where, NOW)


def test_a_run_row_with_its_scope_and_counts_is_accepted() -> None:
    assert check_run(run_document())["rows"][0]["KeyRows"] == 2


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"Scope": "organization"}, "invalid Scope"),
        ({"KeyRows": "2"}, "invalid KeyRows"),
        ({"UserDeleted": "yes"}, "invalid UserDeleted"),
        ({"InventoryComplete": 1}, "invalid InventoryComplete"),
    ],
)
def test_a_run_row_keyreport_would_not_write_is_refused(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(SpillRejected, match=f"row 1 .*{says}"):
        check_run(run_document(**changes))
