"""sandbox/watchlist.py: Sentinel's watchlists as a log of item changes, and _GetWatchlist over it, on duckdb-kql."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sandbox.local_kql import LocalWorkspace
from sandbox.watchlist import WatchlistError, WatchlistStore

AT = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
CSV = 'Name,Title\r\nalice,CEO\r\nbob,"CFO, acting"\r\n'


def store() -> WatchlistStore:
    return WatchlistStore(clock=lambda: AT)


def test_a_watchlist_is_created_from_csv_text_one_item_per_row() -> None:
    watchlists = store()
    alice, bob = watchlists.create("VIP", CSV, "Name")
    assert watchlists.items("VIP") == {
        alice: {"Name": "alice", "Title": "CEO"},
        bob: {"Name": "bob", "Title": "CFO, acting"},
    }
    skipped = watchlists.create("Skipped", "exported 2026-12-01\r\n" + CSV + "\r\n", "Title", lines_to_skip=1)
    assert len(skipped) == 2  # the line before the header skipped, the blank line at the end ignored


def test_the_log_records_every_change_as_sentinels_watchlist_table() -> None:
    watchlists = store()
    [alice] = watchlists.create("VIP", "Name,Title\r\nalice,CEO\r\n", "Name")
    watchlists.update("VIP", alice, {"Title": "Chair"}, at=AT + timedelta(hours=1))
    watchlists.delete("VIP", alice, at=AT + timedelta(hours=2))
    rows = LocalWorkspace([watchlists.table()], functions=[]).run(
        "Watchlist | project _DTItemStatus, _DTItemType, SearchKey, Title, LastUpdatedTimeUTC, CreatedTimeUTC, Type"
    )
    assert [tuple(row.values()) for row in rows.records()] == [
        ("Create", "watchlist-item", "alice", "CEO", AT, AT, "Watchlist"),
        ("Update", "watchlist-item", "alice", "Chair", AT + timedelta(hours=1), AT, "Watchlist"),
        ("Delete", "watchlist-item", "alice", "Chair", AT + timedelta(hours=2), AT, "Watchlist"),
    ]
    assert watchlists.items("VIP") == {}


def test_get_watchlist_returns_the_latest_state_of_each_item_not_deleted() -> None:
    watchlists = store()
    alice, bob = watchlists.create("VIP", CSV, "Name")
    watchlists.update("VIP", bob, {"Name": "robert"})  # same instant: moved on by a microsecond
    watchlists.delete("VIP", alice)
    workspace = LocalWorkspace([], functions=[watchlists.function_definition()])
    result = workspace.run('_GetWatchlist("VIP")')
    assert result.column_names == ["_DTItemId", "LastUpdatedTimeUTC", "SearchKey", "Name", "Title"]
    assert result.records() == [
        {
            "_DTItemId": bob,
            "LastUpdatedTimeUTC": AT + timedelta(microseconds=1),
            "SearchKey": "robert",
            "Name": "robert",
            "Title": "CFO, acting",
        }
    ]
    assert workspace.run('_GetWatchlist("Other")').rows == ()


def test_values_are_kept_as_written() -> None:
    watchlists = store()
    odd = 'back\\slash "quoted"\nnew line'
    item = watchlists.create("W", "K,V\r\n0042,x\r\n", "K")[0]
    watchlists.update("W", item, {"V": odd})
    [row] = LocalWorkspace([], functions=[watchlists.function_definition()]).run('_GetWatchlist("W")').records()
    assert (row["K"], row["V"]) == ("0042", odd)  # text: no leading zero lost


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda w: w.create("VIP", CSV, "Name"), "watchlist 'VIP' exists"),
        (lambda w: w.create("New", CSV, "Email"), "search key 'Email' is not a column"),
        (lambda w: w.create("New", "", "Name"), "the CSV has no header"),
        (lambda w: w.create("New", "Name,Title\r\nalice\r\n", "Name"), "CSV line 2: 1 values for 2 columns"),
        (lambda w: w.add("VIP", {"Email": "a@example.com"}), "'VIP' has no column Email"),
        (lambda w: w.add("Nope", {"Name": "x"}), "no watchlist 'Nope'"),
        (lambda w: w.update("VIP", "0000", {"Title": "x"}), "no item 0000 in 'VIP'"),
        (lambda w: w.delete("VIP", "0000"), "no item 0000 in 'VIP'"),
    ],
)
def test_changes_sentinel_would_refuse_are_refused(change: object, message: str) -> None:
    watchlists = store()
    watchlists.create("VIP", CSV, "Name")
    with pytest.raises(WatchlistError, match=message):
        change(watchlists)  # type: ignore[operator]
