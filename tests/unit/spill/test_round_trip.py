"""Whatever the pipeline writes, replay reads back: any batch of key rows (root slots and `root:unknown`
included), users rows or run rows, with any unicode and extreme values, survives spill -> authentication ->
validation -> replay, and is delivered unchanged to its table."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyreport.deadline import Deadline
from keyreport.pipeline import unknown_root_keys
from keyreport.records import ROOT_USER, KeyRecord, Row, RunSummary, UserRecord, key_row, summary_row, user_row
from keyreport.sinks.base import FailedBatch, Table
from keyreport.spill.bucket import SpillBucket
from keyreport.spill.replay import replay
from tests.unit.fakes import FakeSink, moto_spill_bucket

FINGERPRINT_KEY = bytes(range(64))
SEQUENCES = itertools.count()
# Any moment botocore or the credential report can hand over, and a run time from now to far ahead.
MOMENTS = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC))
RUN_TIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime.now(), timezones=st.just(UTC))
ACCOUNTS = st.from_regex(r"[0-9]{12}", fullmatch=True)
TEXT = st.text(max_size=200)  # any unicode a name, path, service or error can carry
IAM_KEY_IDS = st.from_regex(r"[A-Za-z0-9_]{16,128}", fullmatch=True)  # IAM's documented pattern: [\w]+
MAYBE_BOOL = st.none() | st.booleans()
COUNTS = st.integers(min_value=0, max_value=2**53)


@pytest.fixture(scope="module")
def spill() -> Iterator[SpillBucket]:
    with moto_spill_bucket() as bucket:
        yield bucket


@st.composite
def key_rows(draw: st.DrawFn, account: str, run_id: str, run_time: datetime) -> Row:
    user = draw(st.sampled_from([ROOT_USER]) | TEXT.filter(bool))
    arn = f"arn:aws:iam::{account}:" + ("root" if user == ROOT_USER else f"user/{user}")
    if user == ROOT_USER and draw(st.booleans()):
        record = unknown_root_keys(arn)
    else:
        key_id = draw(st.sampled_from(["root:1", "root:2"])) if user == ROOT_USER else draw(IAM_KEY_IDS)
        used = draw(st.none() | MOMENTS)
        record = KeyRecord(
            user_name=user,
            user_arn=arn,
            access_key_id=key_id,
            status=draw(st.sampled_from(["Active", "Inactive"]) | TEXT),
            create_date=draw(st.none() | MOMENTS),
            last_used_date=used,
            last_used_service=draw(st.none() | TEXT),
            last_used_region=draw(st.none() | TEXT),
            password_enabled=draw(MAYBE_BOOL),
            mfa_active=draw(MAYBE_BOOL),
            last_use_known=used is not None or draw(st.booleans()),
        )
    return key_row(record, run_time=run_time, run_id=run_id, fingerprint_key=FINGERPRINT_KEY)


@st.composite
def users_rows(draw: st.DrawFn, account: str, run_id: str, run_time: datetime) -> Row:
    user = draw(st.sampled_from([ROOT_USER]) | TEXT.filter(bool))
    record = UserRecord(
        user_name=user,
        user_arn=f"arn:aws:iam::{account}:user/{user}",
        path=draw(TEXT),
        create_date=draw(st.none() | MOMENTS),
        password_enabled=draw(MAYBE_BOOL),
        password_last_used=draw(st.none() | MOMENTS),
        password_last_changed=draw(st.none() | MOMENTS),
        mfa_active=draw(MAYBE_BOOL),
        active_keys=draw(COUNTS),
        keys=draw(COUNTS),
        last_activity=draw(st.none() | MOMENTS),
    )
    return user_row(record, run_time=run_time, run_id=run_id)


@st.composite
def run_rows(draw: st.DrawFn, account: str, run_id: str, run_time: datetime) -> Row:
    summary = RunSummary(
        run_id=run_id,
        account_id=account,
        started=run_time,
        collector_version=draw(TEXT),
        sink=draw(st.sampled_from(["data_collector", "logs_ingestion", "stdout"])),
        users=draw(COUNTS),
        keys=draw(COUNTS),
        users_skipped=draw(COUNTS),
        users_not_read=draw(COUNTS),
        shipped=draw(COUNTS),
        failed=draw(COUNTS),
        spilled=draw(COUNTS),
        duration_seconds=draw(st.floats(min_value=0, max_value=1e12)),
        inventory_complete=draw(st.booleans()),
        errors=draw(st.lists(st.text(max_size=5000), max_size=3)),
    )
    return summary_row(summary)


ROWS = {Table.KEYS: key_rows, Table.USERS: users_rows, Table.RUNS: run_rows}


@st.composite
def batches(draw: st.DrawFn) -> tuple[str, str, Table, list[Row]]:
    account = draw(ACCOUNTS | st.just("000000000000"))  # an account STS would not name still gets its run row
    run_id = str(draw(st.uuids(version=4)))
    run_time = draw(RUN_TIMES)
    table = draw(st.sampled_from(Table))
    rows = draw(st.lists(ROWS[table](account, run_id, run_time), min_size=1, max_size=8))
    return account, run_id, table, rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=batches(), reason=TEXT)
def test_any_batch_the_pipeline_writes_is_read_back_and_delivered_by_replay(
    spill: SpillBucket, batch: tuple[str, str, Table, list[Row]], reason: str
) -> None:
    account, run_id, table, rows = batch
    parked = FailedBatch(table, [dict(row) for row in rows], reason, attempts=[reason])
    sequence = next(SEQUENCES)  # Hypothesis replays examples: a new object each time, never one in the ledger
    key = spill.put(parked, run_id=run_id, account_id=account, sink="data_collector", sequence=sequence).key

    loaded = spill.load(key)
    assert (loaded.rows, loaded.refused) == (rows, [])
    sink = FakeSink(batch_size=len(rows))
    outcome = replay(spill, sink, Deadline(), read_only=False)

    assert outcome.succeeded, outcome
    assert sink.delivered[table] == rows
    assert list(spill.object_keys()) == []
