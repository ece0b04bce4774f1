"""replay: spilled batches re-shipped through a fake sink; an object goes only once all of its rows arrived."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from botocore.response import StreamingBody

from keyreport.deadline import Deadline
from keyreport.sinks.base import FailedBatch, Table
from keyreport.spill.bucket import FORMAT, PREFIX, SpillBucket
from keyreport.spill.replay import replay
from tests.unit.fakes import BUCKET, FakeSink, moto_spill_bucket, stubbed_client

RUN = "0f8fad5b-d9cb-469f-a165-70867728950e"
ACCOUNT_SINK_REASON = {"account_id": "123456789012", "sink": "fake", "reason": "HTTP 503"}


@pytest.fixture
def spill() -> Iterator[SpillBucket]:
    with moto_spill_bucket() as bucket:
        yield bucket


def rows(count: int, first: int = 0) -> list[dict[str, object]]:
    return [{"user": f"user{n}", "AccessKeyId": f"AKIA...{n:04d}", "RunId": RUN} for n in range(first, first + count)]


def park(spill: SpillBucket, table: Table, parked: list[dict[str, object]], sequence: int) -> str:
    batch = FailedBatch(table, parked, "HTTP 503", attempts=["HTTP 503"])
    return spill.put(batch, run_id=RUN, account_id="123456789012", sink="fake", sequence=sequence).key


def test_fully_delivered_objects_are_deleted(spill: SpillBucket) -> None:
    park(spill, Table.KEYS, rows(3), 0)
    park(spill, Table.RUNS, [{"RunId": RUN, "Status": "partial"}], 1)
    sink = FakeSink()

    outcome = replay(spill, sink, Deadline())

    assert (outcome.objects, outcome.delivered_objects, outcome.delivered_rows) == (2, 2, 4)
    assert outcome.succeeded and outcome.kept == [] and outcome.errors == []
    assert sink.delivered[Table.KEYS] == rows(3)  # to the table each batch came from
    assert sink.delivered[Table.RUNS] == [{"RunId": RUN, "Status": "partial"}]
    assert list(spill.object_keys()) == []


def test_a_partly_delivered_object_is_kept_with_only_the_rest_and_a_longer_history(spill: SpillBucket) -> None:
    key = park(spill, Table.KEYS, rows(5), 0)
    refusing = FakeSink(refuse={(Table.KEYS, 1)})  # batches of 2: rows 2 and 3 are refused

    outcome = replay(spill, refusing, Deadline())

    assert (outcome.objects, outcome.delivered_objects, outcome.delivered_rows) == (1, 0, 3)
    assert outcome.kept == [key] and outcome.errors == [] and not outcome.succeeded
    assert refusing.delivered[Table.KEYS] == rows(2) + rows(1, first=4)
    kept = spill.load(key)
    assert kept.rows == rows(2, first=2)
    assert kept.attempts == ["HTTP 503", "replay: HTTP 503 on keys batch 1"]
    assert (kept.run_id, kept.table, kept.reason) == (RUN, Table.KEYS, "HTTP 503")

    healthy = FakeSink()
    again = replay(spill, healthy, Deadline())

    assert again.succeeded and (again.delivered_objects, again.delivered_rows) == (1, 2)
    assert healthy.delivered[Table.KEYS] == rows(2, first=2)  # rows already delivered are not sent twice
    assert list(spill.object_keys()) == []


def test_an_object_nothing_of_which_arrived_keeps_every_row(spill: SpillBucket) -> None:
    key = park(spill, Table.RUNS, rows(1), 0)

    outcome = replay(spill, FakeSink(refuse={(Table.RUNS, 0)}), Deadline())

    assert outcome.kept == [key] and outcome.delivered_rows == 0
    assert spill.load(key).rows == rows(1) and len(spill.load(key).attempts) == 2


def test_replay_goes_on_after_an_unreadable_object_and_leaves_it_in_place(spill: SpillBucket) -> None:
    park(spill, Table.KEYS, rows(1), 0)
    broken = f"{PREFIX}123456789012/{RUN}/keys-00001.json"
    spill.s3.put_object(Bucket=BUCKET, Key=broken, Body=b"{truncated")
    park(spill, Table.KEYS, rows(1, first=1), 2)
    sink = FakeSink()

    outcome = replay(spill, sink, Deadline())

    assert (outcome.objects, outcome.delivered_objects, outcome.delivered_rows) == (3, 2, 2)
    assert outcome.errors == [f"s3://{BUCKET}/{broken} is not JSON"] and not outcome.succeeded
    assert sink.delivered[Table.KEYS] == rows(2)
    assert list(spill.object_keys()) == [broken]


@pytest.mark.xfail(
    strict=True,
    reason="SpillBucket.load raises ValueError (not SpillError) for a spill object naming an unknown table, "
    "so replay stops there and the objects after it are never re-shipped",
)
def test_replay_goes_on_after_a_spill_object_with_an_unknown_table(spill: SpillBucket) -> None:
    odd = {"format": FORMAT, "table": "users", "rows": [], "run_id": RUN, "account_id": "1", "sink": "s", "reason": ""}
    spill.s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}123456789012/{RUN}/keys-00000.json", Body=json.dumps(odd))
    park(spill, Table.KEYS, rows(1), 1)
    sink = FakeSink()

    outcome = replay(spill, sink, Deadline())

    assert sink.delivered[Table.KEYS] == rows(1) and len(outcome.errors) == 1


def test_an_object_delivered_but_not_deleted_is_kept_and_reported() -> None:
    """S3 refuses the delete: the object stays for the next replay (the queries absorb a duplicate)."""
    key = f"{PREFIX}123456789012/{RUN}/keys-00000.json"
    document = json.dumps({"format": FORMAT, "table": "keys", "rows": rows(1), "run_id": RUN} | ACCOUNT_SINK_REASON)
    with stubbed_client("s3") as (s3, stub):
        stub.add_response("list_objects_v2", {"Contents": [{"Key": key}], "IsTruncated": False})
        body = StreamingBody(io.BytesIO(document.encode()), len(document.encode()))
        stub.add_response("get_object", {"Body": body}, {"Bucket": BUCKET, "Key": key})
        stub.add_client_error("delete_object", "AccessDenied", http_status_code=403)
        sink = FakeSink()

        outcome = replay(SpillBucket(s3, BUCKET), sink, Deadline())
    assert sink.delivered[Table.KEYS] == rows(1) and outcome.delivered_rows == 1
    assert outcome.kept == [key] and outcome.delivered_objects == 0
    assert outcome.errors == [f"cannot delete s3://{BUCKET}/{key}: AccessDenied"]
