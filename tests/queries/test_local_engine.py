"""The local engine's DuckDB settings (sandbox/local_kql.py ENGINE_SETTINGS) buy speed and never change a result:
every local library query and every workspace function, run over the same rows with the settings and with DuckDB's
defaults, returns the same columns and types and the same rows (as a multiset: KQL promises no order without a
sort, and DuckDB's plans order unsorted rows differently; nor the elements of make_set and make_list).

The rows, one workspace: the crafted compliance estate of test_findings (five accounts, every check's edges) and
a history in the manner of the state model's named cases (a snapshot still arriving with a key row missing and
one delivered twice, an account whose last run failed and that stopped). With DuckDB's
defaults a query over KeyReport_Findings spends tens of seconds planning: `make test` compares every other function
and query; `make soak` compares KeyReport_Findings() and the queries built on it too (the tests of the findings,
tests/queries/test_findings.py and test_exceptions.py, hold its rows under the settings to what they must be).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from keyreport import queries
from sandbox.local_kql import ENGINE_SETTINGS, LocalWorkspace, ResultTable, StoredTable, TimeRange
from tests import schema
from tests.queries import test_findings, test_state_model
from tests.queries.test_state_model import NOW, estate_of, on_time

LIBRARY = {q.id: q for q in queries.library().values() if q.runs_locally}
FUNCTIONS = sorted(queries.functions())
# With DuckDB's defaults, planning a query over KeyReport_Findings takes tens of seconds (that is the point).
OVER_FINDINGS = {q for q, query in LIBRARY.items() if re.search(r"\bKeyReport_Findings\(", query.text)}


def findings_estate() -> list[StoredTable]:
    rows: dict[str, list[dict[str, Any]]] = {table: [] for table in schema.tables()}
    for account in test_findings.estate():
        for table, row in account.rows():
            rows[table].append(row)
    return [StoredTable(name, schema.columns(name), rows[name]) for name in schema.tables()]


def state_history() -> list[StoredTable]:
    a, b = "666666666666", "777777777777"  # beside the five accounts of the compliance estate
    before = estate_of(("u0", "AKIA0000000000000001", "Active", 95), ("u1", "AKIA0000000000000003", "Inactive", 30))
    after = estate_of(("u0", "AKIA0000000000000002", "Active", 0), ("u1", "AKIA0000000000000003", "Inactive", 30))
    previous = on_time("A#1", a, NOW - timedelta(hours=20), before)
    arriving = on_time("A#2", a, NOW - timedelta(minutes=30), after)
    arriving.key_deliveries = [[], [arriving.true_time + timedelta(minutes=1)] * 2]  # one missing, one twice
    stopped = on_time("B#1", b, NOW - timedelta(days=3), estate_of(("u0", "AKIA0000000000000004", "Active", 120)))
    failed = on_time("B#2", b, NOW - timedelta(days=2), estate_of(("u0", "AKIA0000000000000004", "Active", 121)))
    failed.kind = "failed"
    history = test_state_model.History([previous, arriving, stopped, failed], {a: timedelta(0), b: timedelta(0)})
    workspace = history.workspace()
    try:
        return list(workspace.tables.values())
    finally:
        workspace.close()


Pair = tuple[LocalWorkspace, LocalWorkspace]


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    """One workspace of both, twice: with the engine's settings, and with DuckDB's defaults."""
    estate = {table.name: table.rows for table in findings_estate()}
    tables = [
        StoredTable(table.name, table.columns, [*table.rows, *estate.get(table.name, [])]) for table in state_history()
    ]
    tuned, default = LocalWorkspace(tables), LocalWorkspace(tables)
    default._connection.execute("RESET disabled_optimizers")
    default._connection.execute("RESET threads")
    try:
        yield tuned, default
    finally:
        tuned.close()
        default.close()


def canonical(value: Any) -> Any:
    """A value with the elements of an array (make_set, make_list: KQL promises no order) as a multiset."""
    if isinstance(value, str) and value.startswith("["):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if isinstance(value, list):
        return ("array", tuple(sorted(repr(canonical(element)) for element in value)))
    return value


def rows(result: ResultTable) -> Counter[str]:
    return Counter(repr(tuple(canonical(value) for value in row)) for row in result.rows)


def assert_same(pair: Pair, text: str, span: timedelta) -> None:
    """The same columns and types, and the same rows as a multiset (KQL promises no order without a sort, nor within
    make_set and make_list)."""
    window = TimeRange.last(span, NOW)
    tuned, default = (ws.run(text, time_range=window, now=NOW) for ws in pair)
    assert tuned.columns == default.columns
    assert rows(tuned) == rows(default)


def test_the_settings_are_in_effect() -> None:
    workspace = LocalWorkspace([])
    try:
        [[disabled]] = workspace._connection.sql("SELECT current_setting('disabled_optimizers')").fetchall()
        assert "projection_pullup" in disabled
        [[threads]] = workspace._connection.sql("SELECT current_setting('threads')").fetchall()
        assert threads == 1
        assert ENGINE_SETTINGS
    finally:
        workspace.close()


FUNCTION_CASES = [
    pytest.param(function, marks=[pytest.mark.soak] if function == "KeyReport_Findings" else [], id=function)
    for function in FUNCTIONS
]


@pytest.mark.parametrize("function", FUNCTION_CASES)
def test_each_function_returns_the_same_with_and_without_the_settings(pair: Pair, function: str) -> None:
    assert_same(pair, f"{function}()", timedelta(days=30))


LIBRARY_CASES = [
    pytest.param(query_id, marks=[pytest.mark.soak] if query_id in OVER_FINDINGS else [], id=query_id)
    for query_id in sorted(LIBRARY)
]


@pytest.mark.parametrize("query_id", LIBRARY_CASES)
def test_each_library_query_returns_the_same_with_and_without_the_settings(pair: Pair, query_id: str) -> None:
    query = LIBRARY[query_id]
    assert_same(pair, query.text, query.timespan)
