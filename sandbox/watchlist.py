"""Microsoft Sentinel's watchlists, standing in on duckdb-kql: the Watchlist table and `_GetWatchlist(alias)`.

Sentinel keeps a watchlist as a log, the `Watchlist` table: one row per change of an item (`_DTItemStatus`
Create, Update or Delete; `_DTItemType` watchlist-item), each with the item's id (`_DTItemId`), its
`SearchKey`, `LastUpdatedTimeUTC` and its values as a property bag (`WatchlistItem`). `_GetWatchlist(alias)`
returns the latest row of each item not deleted, as `_DTItemId`, `LastUpdatedTimeUTC`, `SearchKey` and the
item's values, unpacked into one column each (`evaluate bag_unpack`): the item columns come from the items, so a
watchlist without items has none of them (Microsoft's reference of the Watchlist table; FalconForceTeam/
KQLAnalyzer, src/KustoAnalyzer.cs, models _GetWatchlist's result the same way).

The stand-in keeps that log in a `WatchlistStore` and differs where duckdb-kql has no equivalent: the values are
one string column each instead of the `WatchlistItem` bag (duckdb-kql has neither dynamic columns to store nor
`bag_unpack`), so `_GetWatchlist` has no `WatchlistItem` column, and it reads the log from a datatable in its own
definition rather than from the table: Sentinel ignores a query's time range for watchlists, while
LocalWorkspace filters every table by it. `_GetWatchlist` returns the item columns of the items it returns only,
as bag_unpack would (none once every item is deleted).

    store = WatchlistStore(clock=lambda: NOW)
    [item] = store.create("KeyReportExceptions", "Account,User,...\\r\\n111122223333,alice,...\\r\\n", "User")
    workspace = LocalWorkspace([*tables, store.table()], functions=sentinel_functions(store))
    workspace.run("KeyReport_WatchlistExceptions()")     # the Sentinel variant, reading the store
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.local_kql import StoredTable
from scripts.sentinel import variants

TABLE = "Watchlist"
FUNCTION = "_GetWatchlist"
ITEM_TYPE = "watchlist-item"
CREATED, UPDATED, DELETED = "Create", "Update", "Delete"
# The columns of Sentinel's Watchlist table the stand-in keeps, besides the item's values (TimeGenerated is one of
# every table's standard columns).
LOG_COLUMNS: dict[str, str] = {
    "_DTItemId": "string",
    "_DTItemType": "string",
    "_DTItemStatus": "string",
    "_DTTimestamp": "datetime",
    "WatchlistAlias": "string",
    "SearchKey": "string",
    "CreatedTimeUTC": "datetime",
    "LastUpdatedTimeUTC": "datetime",
}
# What _GetWatchlist returns before the item's values.
RESULT_COLUMNS = ("_DTItemId", "LastUpdatedTimeUTC", "SearchKey")
_TICK = timedelta(microseconds=1)


class WatchlistError(ValueError):
    """A change Sentinel would refuse: an unknown watchlist or item, a column the header lacks, a bad CSV."""


@dataclass
class _Watchlist:
    alias: str
    columns: tuple[str, ...]
    search_key: str
    items: dict[str, dict[str, str]] = field(default_factory=dict)  # current items: id -> values
    created: dict[str, datetime] = field(default_factory=dict)  # item id -> when it was created


class WatchlistStore:
    """Watchlists as Sentinel keeps them: created from CSV text (header, then rows), items added, updated and
    deleted one at a time; every change a row of the log. `clock` dates the changes (each later than the one before
    it: a change of an item at the same instant as its previous change is moved on by a microsecond)."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self._watchlists: dict[str, _Watchlist] = {}
        self._log: list[dict[str, Any]] = []
        self._last: dict[str, datetime] = {}  # item id -> when it last changed

    # -- changes ------------------------------------------------------------------------------------------

    def create(
        self, alias: str, csv_text: str, search_key: str, *, lines_to_skip: int = 0, at: datetime | None = None
    ) -> list[str]:
        """A new watchlist from CSV text as the API's rawContent takes it (`lines_to_skip` lines before the header,
        then the header, then one item per row); the new items' ids, in row order."""
        if alias in self._watchlists:
            raise WatchlistError(f"watchlist {alias!r} exists")
        rows = list(csv.reader(io.StringIO(csv_text)))[lines_to_skip:]
        if not rows or not any(rows[0]):
            raise WatchlistError("the CSV has no header")
        columns = tuple(name.strip() for name in rows[0])
        if search_key not in columns:
            raise WatchlistError(f"search key {search_key!r} is not a column of {columns}")
        self._watchlists[alias] = _Watchlist(alias, columns, search_key)
        ids = []
        for number, row in enumerate(rows[1:], start=lines_to_skip + 2):
            if not any(value.strip() for value in row):
                continue  # a blank line
            if len(row) != len(columns):
                raise WatchlistError(f"CSV line {number}: {len(row)} values for {len(columns)} columns")
            ids.append(self.add(alias, dict(zip(columns, row, strict=True)), at=at))
        return ids

    def add(
        self, alias: str, values: Mapping[str, str], *, item_id: str | None = None, at: datetime | None = None
    ) -> str:
        """One new item (columns not given are empty); its id."""
        watchlist = self._watchlist(alias)
        item = {column: "" for column in watchlist.columns} | self._checked(watchlist, values)
        new_id = item_id or str(uuid.uuid4())
        if new_id in watchlist.items:
            raise WatchlistError(f"item {new_id} exists in {alias!r}")
        moment = self._moment(new_id, at)
        watchlist.items[new_id] = item
        watchlist.created[new_id] = moment
        self._record(watchlist, new_id, CREATED, moment)
        return new_id

    def update(self, alias: str, item_id: str, changes: Mapping[str, str], *, at: datetime | None = None) -> None:
        """New values for some columns of an item (the others keep theirs)."""
        watchlist = self._watchlist(alias)
        self._item(watchlist, item_id).update(self._checked(watchlist, changes))
        self._record(watchlist, item_id, UPDATED, self._moment(item_id, at))

    def delete(self, alias: str, item_id: str, *, at: datetime | None = None) -> None:
        watchlist = self._watchlist(alias)
        self._item(watchlist, item_id)
        self._record(watchlist, item_id, DELETED, self._moment(item_id, at))
        del watchlist.items[item_id]

    # -- reading ------------------------------------------------------------------------------------------

    def items(self, alias: str) -> dict[str, dict[str, str]]:
        """The current items of a watchlist by id (what _GetWatchlist returns), as Python values."""
        return {item_id: dict(values) for item_id, values in self._watchlist(alias).items.items()}

    def table(self) -> StoredTable:
        """The log as Sentinel's Watchlist table (each item's values one string column) for LocalWorkspace."""
        columns = {**LOG_COLUMNS, **dict.fromkeys(self._item_columns(), "string")}
        rows = [{name: _stored(value) for name, value in row.items()} for row in self._log]
        return StoredTable(TABLE, columns, rows)

    def function_definition(self) -> str:
        """`_GetWatchlist(watchlistAlias)` for duckdb-kql: the current items of the watchlist with that alias."""
        columns = {**LOG_COLUMNS, **dict.fromkeys(self._item_columns(), "string")}
        schema = ", ".join(f"{name}:{kind}" for name, kind in columns.items())
        rows = ",\n".join(
            "    " + ", ".join(_literal(row.get(name), kind) for name, kind in columns.items()) for row in self._log
        )
        current = list(
            dict.fromkeys(
                column for watchlist in self._watchlists.values() if watchlist.items for column in watchlist.columns
            )
        )
        result = ", ".join([*RESULT_COLUMNS, *current])
        return (
            f"function {FUNCTION}(watchlistAlias:string) {{\n"
            f"datatable({schema})[\n{rows}\n]\n"
            f'| where _DTItemType == "{ITEM_TYPE}" and WatchlistAlias == watchlistAlias\n'
            "| summarize arg_max(_DTTimestamp, *) by _DTItemId\n"
            f'| where _DTItemStatus != "{DELETED}"\n'
            f"| project {result}\n"
            "}"
        )

    # -- inside -------------------------------------------------------------------------------------------

    def _watchlist(self, alias: str) -> _Watchlist:
        try:
            return self._watchlists[alias]
        except KeyError:
            raise WatchlistError(f"no watchlist {alias!r}") from None

    @staticmethod
    def _item(watchlist: _Watchlist, item_id: str) -> dict[str, str]:
        try:
            return watchlist.items[item_id]
        except KeyError:
            raise WatchlistError(f"no item {item_id} in {watchlist.alias!r}") from None

    @staticmethod
    def _checked(watchlist: _Watchlist, values: Mapping[str, str]) -> dict[str, str]:
        unknown = [name for name in values if name not in watchlist.columns]
        if unknown:
            raise WatchlistError(
                f"{watchlist.alias!r} has no column {', '.join(unknown)} (its columns: {watchlist.columns})"
            )
        if not all(isinstance(value, str) for value in values.values()):
            raise WatchlistError("watchlist values are text")
        return dict(values)

    def _moment(self, item_id: str, at: datetime | None) -> datetime:
        moment = (at or self._clock()).astimezone(UTC)
        last = self._last.get(item_id)
        if last is not None and moment <= last:
            moment = last + _TICK
        self._last[item_id] = moment
        return moment

    def _record(self, watchlist: _Watchlist, item_id: str, status: str, moment: datetime) -> None:
        values = watchlist.items[item_id]
        self._log.append(
            {
                "TimeGenerated": moment,
                "Type": TABLE,
                "_DTItemId": item_id,
                "_DTItemType": ITEM_TYPE,
                "_DTItemStatus": status,
                "_DTTimestamp": moment,
                "WatchlistAlias": watchlist.alias,
                "SearchKey": values[watchlist.search_key],
                "CreatedTimeUTC": watchlist.created[item_id],
                "LastUpdatedTimeUTC": moment,
                **values,
            }
        )

    def _item_columns(self) -> list[str]:
        """Every item column of every watchlist, in order of first appearance."""
        return list(dict.fromkeys(column for watchlist in self._watchlists.values() for column in watchlist.columns))


def sentinel_functions(store: WatchlistStore | None = None) -> list[str]:
    """The workspace functions as a workspace with Microsoft Sentinel has them, as duckdb-kql definitions: the
    shipped ones with each Sentinel variant (queries/sentinel/, KeyReport_WatchlistExceptions) in place of its base
    function, and the store's `_GetWatchlist` (an empty store: no watchlist at all)."""
    shipped = [function.definition() for function in variants.sentinel_functions().values()]
    return [*shipped, (store or WatchlistStore()).function_definition()]


def _stored(value: Any) -> Any:
    """As LocalWorkspace's rows hold values: datetimes as ISO 8601 text."""
    return value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value


def _literal(value: Any, kind: str) -> str:
    if kind == "datetime":
        return f"datetime({value.strftime('%Y-%m-%dT%H:%M:%S.%fZ')})" if value is not None else "datetime(null)"
    text = "" if value is None else str(value)
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'
