"""Strict checks of a spill object's content, once its MAC held: only what keyreport itself writes gets through.

Fields and their types come from the tables' columns (queries/schema.json, as keyreport.columns): a
column's Data Collector suffix says what its field holds. Every check raises SpillRejected with a reason
that names the problem, never the offending value.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from keyreport.columns import KEY_COLUMNS, RUN_COLUMNS, USER_COLUMNS
from keyreport.errors import SpillRejected
from keyreport.records import (
    ACCOUNT_ID,
    ACCOUNT_SCOPE,
    FINGERPRINT_PREFIX,
    UNKNOWN_ROOT_KEYS,
    USER_SCOPE,
    Row,
    parse_timestamp,
)
from keyreport.sinks.base import Table

FORMAT = "keyreport-spill/2"
# Every table a batch can belong to, with its columns: a table added to schema.json is added here too
# (tests/unit/spill/test_validation.py fails for a Table without an entry).
TABLE_COLUMNS: Mapping[Table, Mapping[str, str]] = {
    Table.KEYS: KEY_COLUMNS,
    Table.RUNS: RUN_COLUMNS,
    Table.USERS: USER_COLUMNS,
}
REQUIRED_FIELDS = ("loggedDate", "account_number")
DOCUMENT_FIELDS = frozenset({"format", "run_id", "account_id", "sink", "table", "reason", "attempts"})
DOCUMENT_FIELDS |= {"spilled_at", "rows"}
MAX_TEXT = 32_766  # the Data Collector API's limit on one field value
CLOCK_SKEW = timedelta(minutes=5)
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")  # records.TIMESTAMP_FORMAT
# Fields whose shape is known beyond their type: a full key id or an unkeyed fingerprint never gets through.
SHAPES: Mapping[str, re.Pattern[str]] = {
    # records.mask_key_id of an IAM key id (IAM's pattern is [\w]+), a root slot, or the root's unknown keys.
    "AccessKeyId": re.compile(
        r"[A-Za-z0-9_]{4}\.\.\.[A-Za-z0-9_]{4}|root:[12]|" + re.escape(UNKNOWN_ROOT_KEYS) + r"|\*{1,12}"
    ),
    "KeyFingerprint": re.compile(re.escape(FINGERPRINT_PREFIX) + r"[0-9a-f]{40}"),
    "account_number": ACCOUNT_ID,
    "Scope": re.compile(f"{ACCOUNT_SCOPE}|{USER_SCOPE}"),
}


@dataclass(frozen=True)
class ObjectKey:
    """What an object's key says about it: checked against what its content says."""

    key: str
    account_id: str
    run_id: str
    table: str


@dataclass(frozen=True)
class RefusedRow:
    """A row of an authentic object that fails validation: one of the two sides has a bug. Kept, not delivered."""

    number: int
    problem: str
    row: Any


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        return None
    try:
        return parse_timestamp(value)
    except ValueError:  # the right shape, but no such day or hour
        return None


def _guid(value: Any) -> bool:
    try:
        return isinstance(value, str) and len(value) == 36 and str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# A column's suffix (Data Collector type) -> the check of its field's JSON value.
TYPES: Mapping[str, Callable[[Any], bool]] = {
    "_s": lambda value: isinstance(value, str) and len(value) <= MAX_TEXT,
    "_t": lambda value: _timestamp(value) is not None,
    "_d": _number,
    "_b": lambda value: isinstance(value, bool),
    "_g": _guid,
}


def validated(document: Any, where: ObjectKey, now: datetime) -> dict[str, Any]:
    """The fields of a SpilledBatch from a spill document, or SpillRejected naming the first problem."""
    if not isinstance(document, dict) or set(document) != DOCUMENT_FIELDS:
        raise SpillRejected("it is not a keyreport spill document (its fields are not the format's)")
    if document["format"] != FORMAT:
        raise SpillRejected(f"its format is not {FORMAT}")
    table = next((known for known in TABLE_COLUMNS if known.value == document["table"]), None)
    if table is None or table.value != where.table:
        raise SpillRejected("its table is not one keyreport ships, or not the one its key names")
    if document["account_id"] != where.account_id or document["run_id"] != where.run_id:
        raise SpillRejected("its account or run is not the one its key names")
    spilled_at = _timestamp(document["spilled_at"])
    if spilled_at is None or spilled_at > now + CLOCK_SKEW:
        raise SpillRejected("its spill time is missing or in the future")
    _check_history(document)
    rows = document["rows"]
    if not isinstance(rows, list) or not rows:
        raise SpillRejected("its rows are not a non-empty list")
    good: list[Row] = []
    refused: list[RefusedRow] = []
    for number, row in enumerate(rows, 1):
        problem = row_problem(row, TABLE_COLUMNS[table], where, spilled_at)
        if problem:
            refused.append(RefusedRow(number, f"row {number} {problem}", row))
        else:
            good.append(row)
    if not good:  # nothing in it keyreport would write: the object as a whole is refused
        raise SpillRejected(refused[0].problem)
    return {
        "key": where.key,
        "table": table,
        "rows": good,
        "refused": refused,
        "run_id": where.run_id,
        "account_id": where.account_id,
        "sink": document["sink"],
        "reason": document["reason"],
        "attempts": document["attempts"],
        "spilled_at": document["spilled_at"],
    }


def _check_history(document: dict[str, Any]) -> None:
    attempts = document["attempts"]
    texts = [document["sink"], document["reason"], *(attempts if isinstance(attempts, list) else [None])]
    if not all(isinstance(text, str) and len(text) <= MAX_TEXT for text in texts):
        raise SpillRejected("its sink, reason or attempts are not short texts")


def row_problem(row: Any, columns: Mapping[str, str], where: ObjectKey, spilled_at: datetime) -> str | None:
    """What is wrong with one row of a table with these columns, or None."""
    if not isinstance(row, dict):
        return "is not an object"
    return _field_problem(row, columns) or _origin_problem(row, where, spilled_at)


def _field_problem(row: Row, columns: Mapping[str, str]) -> str | None:
    """Fields outside the table, missing or of the wrong type or shape."""
    unknown = sorted(name for name in row if name not in columns)
    if unknown:
        return f"has fields the table does not declare ({len(unknown)}, e.g. {unknown[0][:40]!r})"
    missing = [name for name in REQUIRED_FIELDS if name not in row]
    if missing:
        return f"lacks {', '.join(missing)}"
    for name, value in row.items():
        if not TYPES[columns[name][-2:]](value) or (name in SHAPES and not SHAPES[name].fullmatch(value)):
            return f"has an invalid {name} (not a {columns[name]} value keyreport writes)"
    return None


def _origin_problem(row: Row, where: ObjectKey, spilled_at: datetime) -> str | None:
    """A row of another account or run than its object's, or dated after the batch was spilled."""
    if row["account_number"] != where.account_id:
        return "is of another account than the one its key names"
    if "RunId" in row and row["RunId"] != where.run_id:
        return "is of another run than the one its key names"
    logged = _timestamp(row["loggedDate"])
    if logged is None or logged > spilled_at:
        return "is dated after the batch was spilled"
    return None
