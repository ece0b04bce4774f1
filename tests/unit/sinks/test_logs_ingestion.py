"""The Logs Ingestion sink's chunking: bounded as the SDK encodes it, streamed, an oversized row alone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from keyreport.columns import KEY_COLUMNS, stream_record
from keyreport.sinks.logs_ingestion import bounded_chunks, sdk_encoded_size_of


def row(user: str) -> dict[str, Any]:
    return {"loggedDate": "2024-06-01T00:00:00Z", "user": user, "KeyAgeDays": 3}


def test_chunks_encode_to_at_most_the_limit_exactly_as_the_sdk_sends_them() -> None:
    rows = [row(f"user-{i:04d}-" + "é" * (i % 17)) for i in range(500)]
    chunks = list(bounded_chunks(iter(rows), KEY_COLUMNS, 4096))
    assert len(chunks) > 5 and sum(len(chunk) for chunk in chunks) == 500
    for chunk in chunks:
        records = [record for _, record in chunk]
        assert len(json.dumps(records)) == sdk_encoded_size_of(records) <= 4096  # the SDK's own encoding
    assert [original for chunk in chunks for original, _ in chunk] == rows  # order kept, originals kept


def test_a_chunk_is_filled_up_to_the_limit_and_not_beyond() -> None:
    one = len(json.dumps(stream_record(row("a"), KEY_COLUMNS)))
    limit = 2 + 3 * one + 2 * 2  # brackets, three records, two ", " separators
    chunks = list(bounded_chunks([row("a"), row("b"), row("c"), row("d")], KEY_COLUMNS, limit))
    assert [len(chunk) for chunk in chunks] == [3, 1]


def test_rows_are_consumed_lazily() -> None:
    consumed = 0

    def rows() -> Iterator[dict[str, Any]]:
        nonlocal consumed
        for i in range(10_000):
            consumed += 1
            yield row(f"user-{i}")

    first = next(bounded_chunks(rows(), KEY_COLUMNS, 2048))
    assert consumed == len(first) + 1  # one row past the chunk, never the whole estate


def test_an_oversized_row_comes_alone() -> None:
    chunks = list(bounded_chunks([row("a"), row("x" * 5000), row("b")], KEY_COLUMNS, 1024))
    assert [[original["user"][:1] for original, _ in chunk] for chunk in chunks] == [["a"], ["x"], ["b"]]
