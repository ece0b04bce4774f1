"""KeyReport_WatchlistExceptions: the base function (no rows: a workspace without Sentinel) and its Sentinel variant
(queries/sentinel/: the watchlist KeyReportExceptions through _GetWatchlist), both with the contract's columns, on
duckdb-kql (the variant over sandbox/watchlist.py's stand-in) and through Microsoft's analyser."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from keyreport import queries
from sandbox.local_kql import LocalWorkspace, TimeRange
from sandbox.watchlist import WatchlistStore, sentinel_functions
from scripts import render_watchlist
from scripts.sentinel import variants
from tests.queries import kusto, sentinel

NAME = "KeyReport_WatchlistExceptions"
CALL = f"{NAME}()"
ALIAS = render_watchlist.ALIAS
# The contract (the lead's KQL consumes it): one row per watchlist item, these columns, these types.
CONTRACT = [
    ("Account", "string"),
    ("User", "string"),
    ("Control", "string"),
    ("Key", "string"),
    ("Until", "string"),
    ("ApprovedBy", "string"),
    ("Reason", "string"),
    ("ItemId", "string"),
    ("Updated", "datetime"),
]
HEADER = "Account,User,Control,Key,Until,ApprovedBy,Reason\r\n"
ROWS = (
    '012345678901,alice,key-rotation-90-days,AKIA...WXYZ,2027-01-31,ciso@example.com,"Vendor tool, replaced in Q1"\r\n'
    "111122223333,<root_account>,all,,2026-12-31,cto@example.com,Break-glass account\r\n"
)
CREATED = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
BASE = queries.functions()[NAME]
VARIANT = variants.variants()[NAME]


def workspace(store: WatchlistStore) -> LocalWorkspace:
    return LocalWorkspace([store.table()], functions=sentinel_functions(store))


def run(store: WatchlistStore, query: str = CALL) -> list[dict[str, object]]:
    return workspace(store).run(query, now=NOW).records()


def columns(query: str, store: WatchlistStore) -> list[tuple[str, str]]:
    return [(column.name, column.type) for column in workspace(store).run(query, now=NOW).columns]


# -- the two definitions and the contract --------------------------------------------------------------------


def test_the_base_function_returns_no_rows_with_the_contracts_columns() -> None:
    result = LocalWorkspace([]).run(CALL)
    assert result.rows == ()
    assert [(column.name, column.type) for column in result.columns] == CONTRACT
    assert BASE.text.startswith("datatable(") and BASE.text.rstrip().endswith(")[]")
    assert "_GetWatchlist" not in BASE.text  # it must run where Sentinel is not on


def test_the_variant_replaces_the_base_and_reads_the_watchlist_by_its_alias() -> None:
    assert set(variants.variants()) == {NAME}
    assert VARIANT.source == BASE.source == f"{NAME}.kql" and VARIANT.local == BASE.local == queries.LOCAL_ENGINE
    assert f'_GetWatchlist("{ALIAS}")' in VARIANT.text
    # The empty typed leg names the watchlist's CSV columns, as the template creates them.
    [typed] = re.findall(r"datatable\(([^)]*)\)\[\]", VARIANT.text)
    assert [part.split(":") for part in typed.split(", ")] == [[name, "string"] for name in render_watchlist.COLUMNS]
    assert [name for name, _ in CONTRACT][: len(render_watchlist.COLUMNS)] == list(render_watchlist.COLUMNS)


def test_sentinel_functions_swap_only_the_variant_and_add_get_watchlist() -> None:
    shipped = {function.id: function.definition() for function in queries.functions().values()}
    swapped = sentinel_functions()
    assert len(swapped) == len(shipped) + 1 and swapped[-1].startswith("function _GetWatchlist(watchlistAlias:string)")
    assert swapped[:-1] == [VARIANT.definition() if name == NAME else text for name, text in shipped.items()]


# -- the variant over the stand-in ---------------------------------------------------------------------------


def test_the_variant_has_the_contracts_columns_whatever_the_watchlist_holds() -> None:
    store = WatchlistStore(clock=lambda: CREATED)
    assert columns(CALL, store) == CONTRACT and run(store) == []  # no watchlist at all
    store.create(ALIAS, HEADER, "User")
    assert columns(CALL, store) == CONTRACT and run(store) == []  # as the template creates it: no item
    # No item, no item column: what the variant's typed empty leg is there for.
    assert columns(f'_GetWatchlist("{ALIAS}")', store) == [
        ("_DTItemId", "string"),
        ("LastUpdatedTimeUTC", "datetime"),
        ("SearchKey", "string"),
    ]


def test_the_variant_returns_one_row_per_item_as_written() -> None:
    store = WatchlistStore(clock=lambda: CREATED)
    alice, root = store.create(ALIAS, HEADER + ROWS, "User")
    rows = sorted(run(store), key=lambda row: str(row["User"]))
    assert [(row["Account"], row["User"], row["Control"], row["Key"], row["Until"]) for row in rows] == [
        ("111122223333", "<root_account>", "all", "", "2026-12-31"),
        ("012345678901", "alice", "key-rotation-90-days", "AKIA...WXYZ", "2027-01-31"),
    ]
    assert rows[1]["Reason"] == "Vendor tool, replaced in Q1" and rows[1]["ApprovedBy"] == "ciso@example.com"
    assert {row["ItemId"]: row["Updated"] for row in rows} == {alice: CREATED, root: CREATED}
    assert columns(CALL, store) == CONTRACT


def test_an_update_changes_the_items_values_and_its_updated_time() -> None:
    store = WatchlistStore(clock=lambda: CREATED)
    alice, root = store.create(ALIAS, HEADER + ROWS, "User")
    later = CREATED + timedelta(days=3)
    store.update(ALIAS, alice, {"Until": "2027-03-31", "Reason": "Extended by the CISO"}, at=later)
    by_id = {row["ItemId"]: row for row in run(store)}
    assert len(by_id) == 2
    assert (by_id[alice]["Until"], by_id[alice]["Reason"], by_id[alice]["Updated"]) == (
        "2027-03-31",
        "Extended by the CISO",
        later,
    )
    assert by_id[alice]["Key"] == "AKIA...WXYZ" and by_id[root]["Updated"] == CREATED


def test_a_deleted_item_is_gone_and_the_last_deletion_leaves_the_columns() -> None:
    store = WatchlistStore(clock=lambda: CREATED)
    alice, root = store.create(ALIAS, HEADER + ROWS, "User")
    store.delete(ALIAS, alice, at=CREATED + timedelta(days=1))
    assert [row["ItemId"] for row in run(store)] == [root]
    store.delete(ALIAS, root, at=CREATED + timedelta(days=2))
    assert run(store) == [] and columns(CALL, store) == CONTRACT
    readded = store.add(ALIAS, {"Account": "012345678901", "User": "bob", "Control": "IAM.3"})
    assert [(row["ItemId"], row["User"], row["Until"]) for row in run(store)] == [(readded, "bob", "")]


def test_other_watchlists_are_not_read() -> None:
    store = WatchlistStore(clock=lambda: CREATED)
    store.create("VIPUsers", "User,Title\r\nalice,CEO\r\n", "User")
    assert run(store) == [] and columns(CALL, store) == CONTRACT
    store.create(ALIAS, HEADER + ROWS, "User")
    assert sorted(str(row["User"]) for row in run(store)) == ["<root_account>", "alice"]


def test_the_query_time_range_does_not_hide_the_watchlist() -> None:
    # Sentinel ignores a query's time range for watchlists; the items here were created a month before it.
    store = WatchlistStore(clock=lambda: CREATED)
    store.create(ALIAS, HEADER + ROWS, "User")
    window = TimeRange.last(timedelta(days=2), NOW)
    assert len(workspace(store).run(CALL, time_range=window, now=NOW).rows) == 2


# -- Microsoft's analyser ------------------------------------------------------------------------------------


def test_both_definitions_pass_the_analyser_with_the_contracts_columns(analysis: dict[str, kusto.Analysis]) -> None:
    for where in (f"function:{NAME}", f"sentinel-function:{NAME}"):
        result = analysis[where]
        assert not result.errors, "\n" + result.error_report()
        assert list(result.columns) == CONTRACT, where


def test_every_variant_passes_the_analyser(analysis: dict[str, kusto.Analysis]) -> None:
    for name in variants.variants():
        result = analysis[f"sentinel-function:{name}"]
        assert not result.errors, "\n" + result.error_report()
        assert list(result.columns) == list(analysis[f"function:{name}"].columns)  # what callers rely on


def test_the_variant_holds_for_a_watchlist_whose_items_carry_the_columns() -> None:
    # The item columns of _GetWatchlist and the typed leg's merge into one column each (same name, same type).
    populated = {**kusto.declared_functions(), **sentinel.functions(render_watchlist.COLUMNS)}
    result = kusto.analyse({"variant": VARIANT.text}, functions=populated, tables=sentinel.tables())["variant"]
    assert not result.errors, "\n" + result.error_report()
    assert list(result.columns) == CONTRACT


def test_the_analyser_refuses_a_column_a_watchlist_without_items_lacks() -> None:
    bare = f'_GetWatchlist("{ALIAS}") | project Account = tostring(Account)'
    empty = kusto.analyse({"bare": bare}, functions=sentinel.functions(), tables=sentinel.tables())["bare"]
    assert empty.errors and "Account" in empty.error_report()
    populated = sentinel.functions(["Account"])
    assert not kusto.analyse({"bare": bare}, functions=populated, tables=sentinel.tables())["bare"].errors


@pytest.mark.parametrize("where", [f"function:{NAME}", f"sentinel-function:{NAME}"])
def test_the_local_engine_types_the_columns_as_kusto_does(where: str, analysis: dict[str, kusto.Analysis]) -> None:
    store = WatchlistStore(clock=lambda: CREATED)
    store.create(ALIAS, HEADER + ROWS, "User")
    text = BASE.text if where.startswith("function:") else VARIANT.text
    assert columns(text, store) == list(analysis[where].columns)
