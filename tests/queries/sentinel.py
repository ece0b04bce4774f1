"""What Microsoft Sentinel defines in a workspace, declared for Microsoft's analyser (tests/queries/kusto.py): the
Watchlist table and `_GetWatchlist(watchlistAlias)`.

The table's columns are Microsoft's reference of the Watchlist table (Azure Monitor Logs reference, "Watchlist").
`_GetWatchlist` returns each current item's `_DTItemId`, `LastUpdatedTimeUTC`, `SearchKey`, `WatchlistItem` and
the item's values unpacked into columns (`evaluate bag_unpack(WatchlistItem)`; FalconForceTeam/KQLAnalyzer,
src/KustoAnalyzer.cs, declares the same result). The analyser takes bag_unpack's result as an open table, in
which any column name resolves: that would let a query read `Account` from a watchlist whose items have no such
value, or no items at all, where Kusto fails ("Failed to resolve scalar expression"). So the declarations here are
closed: `get_watchlist()` is a watchlist without items (the fixed columns only, what the watchlist returns as
created by azure/exceptions-watchlist.json), `get_watchlist(columns)` one whose items carry those values as text.
"""

from __future__ import annotations

from collections.abc import Sequence

from tests.queries.kusto import Declaration

TABLE = "Watchlist"
FUNCTION = "_GetWatchlist"
WATCHLIST_COLUMNS: list[tuple[str, str]] = [
    ("AzureTenantId", "string"),
    ("CorrelationId", "string"),
    ("CreatedBy", "dynamic"),
    ("CreatedTimeUTC", "datetime"),
    ("DefaultDuration", "string"),
    ("_DTItemId", "string"),
    ("_DTItemStatus", "string"),
    ("_DTItemType", "string"),
    ("_DTTimestamp", "datetime"),
    ("EntityMapping", "dynamic"),
    ("LastUpdatedTimeUTC", "datetime"),
    ("Notes", "string"),
    ("Provider", "string"),
    ("SearchKey", "string"),
    ("Source", "string"),
    ("SourceSystem", "string"),
    ("Tags", "string"),
    ("TenantId", "string"),
    ("TimeGenerated", "datetime"),
    ("TimeToLive", "datetime"),
    ("Type", "string"),
    ("UpdatedBy", "dynamic"),
    ("WatchlistAlias", "string"),
    ("WatchlistCategory", "string"),
    ("WatchlistId", "string"),
    ("WatchlistItem", "dynamic"),
    ("WatchlistItemId", "string"),
    ("WatchlistName", "string"),
]


def tables() -> dict[str, list[tuple[str, str]]]:
    return {TABLE: WATCHLIST_COLUMNS}


def get_watchlist(item_columns: Sequence[str] = ()) -> dict[str, str]:
    """`_GetWatchlist` as the analyser's closed stand-in: every current item of the alias, with the item columns
    given (text values), or none (a watchlist without items)."""
    unpacked = "".join(f", {name} = tostring(WatchlistItem['{name}'])" for name in item_columns)
    body = (
        f"{TABLE}\n"
        "| where _DTItemType == 'watchlist-item' and WatchlistAlias == watchlistAlias\n"
        "| summarize arg_max(_DTTimestamp, _DTItemStatus, LastUpdatedTimeUTC, SearchKey, WatchlistItem) by _DTItemId\n"
        "| where _DTItemStatus != 'Delete'\n"
        f"| project _DTItemId, LastUpdatedTimeUTC, SearchKey, WatchlistItem{unpacked}"
    )
    return {"parameters": "(watchlistAlias:string)", "body": body}


def functions(item_columns: Sequence[str] = ()) -> dict[str, Declaration]:
    """Sentinel's functions a keyreport query may call: _GetWatchlist."""
    return {FUNCTION: get_watchlist(item_columns)}
