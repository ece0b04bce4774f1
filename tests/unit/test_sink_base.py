from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from hypothesis import given
from hypothesis import strategies as st

from keyreport.deadline import Deadline
from keyreport.sinks.base import RetryPolicy, json_array_batches, retry_after_seconds
from keyreport.sinks.data_collector import FIELD_MAX_BYTES, cap_field

rows_strategy = st.lists(
    st.dictionaries(
        st.sampled_from(["user", "Status", "n", "ok"]),
        st.text(max_size=300) | st.integers() | st.booleans(),
        min_size=1,
    ),
    max_size=60,
)


@given(rows=rows_strategy, max_bytes=st.integers(min_value=1300, max_value=5000))
def test_batches_keep_every_row_in_order_and_never_exceed_the_limit(
    rows: list[dict[str, object]], max_bytes: int
) -> None:
    seen: list[object] = []
    for batch, body in json_array_batches(rows, max_bytes):
        assert len(body) <= max_bytes
        assert json.loads(body) == batch
        seen.extend(batch)
    assert seen == rows


def test_a_row_larger_than_a_request_comes_alone_for_the_sink_to_fail() -> None:
    rows = [{"x": 1}, {"x": "y" * 2000}, {"x": 2}]
    batches = list(json_array_batches(rows, 1024))
    assert [batch for batch, _ in batches] == [[rows[0]], [rows[1]], [rows[2]]]
    assert len(batches[1][1]) > 1024 >= max(len(batches[0][1]), len(batches[2][1]))


def test_fields_over_32_kb_are_cut_on_a_character_boundary() -> None:
    value = "é" * FIELD_MAX_BYTES  # two bytes each
    capped = cap_field(value)
    assert len(capped.encode()) <= FIELD_MAX_BYTES and set(capped) == {"é"}
    assert cap_field("short") == "short" and cap_field(5) == 5


def test_retry_after_in_seconds_or_http_date() -> None:
    assert retry_after_seconds({"Retry-After": "7"}) == 7
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < (retry_after_seconds({"retry-after": later}) or 0) <= 30
    assert retry_after_seconds({}) is None and retry_after_seconds({"Retry-After": "soon"}) is None


def test_backoff_is_jittered_capped_and_stops_at_the_deadline() -> None:
    policy = RetryPolicy(max_attempts=5, base_seconds=1, cap_seconds=8, rng=lambda: 1.0)
    assert [policy.delay(n, None) for n in range(1, 6)] == [1, 2, 4, 8, 8]
    assert policy.delay(1, 12.5) == 12.5  # the server's word wins
    assert policy.next_delay(5, None, Deadline()) is None  # attempts used up
    assert policy.next_delay(1, 30, Deadline(lambda: 10_000)) is None  # would pass the deadline
    assert policy.next_delay(1, None, Deadline(lambda: 10_000)) == 1


def test_deadline_subtracts_the_margin() -> None:
    assert Deadline(lambda: 30_000, margin_seconds=20).remaining() == 10
    assert Deadline(lambda: 5_000, margin_seconds=20).remaining() == 0
