from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from keyreport.sinks.base import encode_row, json_array
from keyreport.sinks.batching import array_size, bounded_batches
from keyreport.sinks.data_collector import FIELD_MAX_BYTES, cap_field

rows_strategy = st.lists(
    st.dictionaries(
        st.sampled_from(["user", "Status", "n", "ok"]),
        st.text(max_size=300) | st.integers() | st.booleans(),
        min_size=1,
    ),
    max_size=60,
)


def compact_batches(rows: list[dict[str, object]], max_bytes: int) -> list[tuple[list[object], bytes]]:
    """The Data Collector's use of the batcher: compact JSON, one comma between rows."""
    pairs = [(row, encode_row(row)) for row in rows]
    batches = bounded_batches(pairs, lambda pair: len(pair[1]), max_bytes, separator_bytes=1)
    return [([row for row, _ in batch], json_array(part for _, part in batch)) for batch in batches]


@given(rows=rows_strategy, max_bytes=st.integers(min_value=1300, max_value=5000), separator=st.sampled_from([1, 2]))
def test_batches_keep_every_item_in_order_and_never_exceed_the_limit(
    rows: list[dict[str, object]], max_bytes: int, separator: int
) -> None:
    sizes = [len(json.dumps(row)) for row in rows]
    seen: list[int] = []
    for batch in bounded_batches(range(len(rows)), sizes.__getitem__, max_bytes, separator):
        assert array_size((sizes[i] for i in batch), separator) <= max_bytes
        seen.extend(batch)
    assert seen == list(range(len(rows)))


@given(rows=rows_strategy, max_bytes=st.integers(min_value=1300, max_value=5000))
def test_compact_bodies_are_the_rows_and_fit(rows: list[dict[str, object]], max_bytes: int) -> None:
    seen: list[object] = []
    for batch, body in compact_batches(rows, max_bytes):
        assert len(body) <= max_bytes
        assert json.loads(body) == batch
        seen.extend(batch)
    assert seen == rows


def test_an_item_larger_than_a_request_comes_alone_for_the_sink_to_fail() -> None:
    rows: list[dict[str, object]] = [{"x": 1}, {"x": "y" * 2000}, {"x": 2}]
    batches = compact_batches(rows, 1024)
    assert [batch for batch, _ in batches] == [[rows[0]], [rows[1]], [rows[2]]]
    assert len(batches[1][1]) > 1024 >= max(len(batches[0][1]), len(batches[2][1]))


def test_fields_over_32_kb_are_cut_on_a_character_boundary() -> None:
    value = "é" * FIELD_MAX_BYTES  # two bytes each
    capped = cap_field(value)
    assert len(capped.encode()) <= FIELD_MAX_BYTES and set(capped) == {"é"}
    assert cap_field("short") == "short" and cap_field(5) == 5
