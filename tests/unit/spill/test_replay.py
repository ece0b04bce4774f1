"""replay: spilled batches re-shipped through a fake sink; an object goes once all of its rows arrived, a rejected
one is quarantined and replay goes on, a read-only replay changes nothing."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from botocore.response import StreamingBody

from keyreport.deadline import Deadline
from keyreport.sinks.base import FailedBatch, Table
from keyreport.spill.bucket import LEDGER_PREFIX, MAC_METADATA, PREFIX, QUARANTINE_PREFIX, SpillBucket, mac
from keyreport.spill.replay import replay
from keyreport.spill.validation import FORMAT
from tests.unit.fakes import BUCKET, SPILL_KEY, FakeSink, moto_spill_bucket, stubbed_client

RUN = "0f8fad5b-d9cb-469f-a165-70867728950e"
ACCOUNT = "123456789012"
RUN_ROW = {"loggedDate": "2026-01-02T03:04:05Z", "account_number": ACCOUNT, "RunId": RUN, "Status": "partial"}


@pytest.fixture
def spill() -> Iterator[SpillBucket]:
    with moto_spill_bucket() as bucket:
        yield bucket


def rows(count: int, first: int = 0) -> list[dict[str, object]]:
    return [
        {"loggedDate": "2026-01-02T03:04:05Z", "account_number": ACCOUNT, "user": f"user{n}",
         "AccessKeyId": f"AKIA...{n:04d}", "RunId": RUN}
        for n in range(first, first + count)
    ]  # fmt: skip


def park(spill: SpillBucket, table: Table, parked: list[dict[str, object]], sequence: int) -> str:
    batch = FailedBatch(table, parked, "HTTP 503", attempts=["HTTP 503"])
    return spill.put(batch, run_id=RUN, account_id=ACCOUNT, sink="fake", sequence=sequence).key


def body_of(spill: SpillBucket, key: str) -> bytes:
    body: bytes = spill.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return body


def test_fully_delivered_objects_are_deleted(spill: SpillBucket) -> None:
    park(spill, Table.KEYS, rows(3), 0)
    park(spill, Table.RUNS, [RUN_ROW], 1)
    sink = FakeSink()

    outcome = replay(spill, sink, Deadline(), read_only=False)

    assert (outcome.objects, outcome.delivered_objects, outcome.delivered_rows) == (2, 2, 4)
    assert outcome.succeeded and outcome.kept == outcome.errors == outcome.quarantined == []
    assert sink.delivered[Table.KEYS] == rows(3)  # to the table each batch came from
    assert sink.delivered[Table.RUNS] == [RUN_ROW]
    assert list(spill.object_keys()) == []


def test_a_partly_delivered_object_is_kept_as_it_was_and_sent_whole_next_time(spill: SpillBucket) -> None:
    key = park(spill, Table.KEYS, rows(5), 0)
    before = body_of(spill, key)
    refusing = FakeSink(refuse={(Table.KEYS, 1)})  # batches of 2: rows 2 and 3 are refused

    outcome = replay(spill, refusing, Deadline(), read_only=False)

    assert (outcome.objects, outcome.delivered_objects, outcome.delivered_rows) == (1, 0, 3)
    assert outcome.kept == [key] and outcome.errors == [] and not outcome.succeeded
    assert refusing.delivered[Table.KEYS] == rows(2) + rows(1, first=4)
    assert body_of(spill, key) == before  # untouched: only the function writes under the spill prefix

    healthy = FakeSink()
    again = replay(spill, healthy, Deadline(), read_only=False)

    assert again.succeeded and (again.delivered_objects, again.delivered_rows) == (1, 5)
    assert healthy.delivered[Table.KEYS] == rows(5)  # the latest-row-per-key queries absorb the repeats
    assert list(spill.object_keys()) == []


def test_an_object_nothing_of_which_arrived_keeps_every_row(spill: SpillBucket) -> None:
    key = park(spill, Table.RUNS, [RUN_ROW], 0)

    outcome = replay(spill, FakeSink(refuse={(Table.RUNS, 0)}), Deadline(), read_only=False)

    assert outcome.kept == [key] and outcome.delivered_rows == 0
    assert spill.load(key).rows == [RUN_ROW]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{truncated", "it is not JSON"),
        (json.dumps({"format": FORMAT, "table": "users", "rows": []}).encode(), "it is not a keyreport spill document"),
    ],
)
def test_replay_quarantines_a_rejected_object_and_goes_on(spill: SpillBucket, body: bytes, reason: str) -> None:
    park(spill, Table.KEYS, rows(1), 0)
    broken = f"{PREFIX}{ACCOUNT}/{RUN}/keys-00001.json"
    spill.s3.put_object(Bucket=BUCKET, Key=broken, Body=body, Metadata={MAC_METADATA: mac(SPILL_KEY, broken, body)})
    park(spill, Table.KEYS, rows(1, first=1), 2)
    sink = FakeSink()

    outcome = replay(spill, sink, Deadline(), read_only=False)

    moved = f"{QUARANTINE_PREFIX}{ACCOUNT}/{RUN}/keys-00001.json"
    assert (outcome.objects, outcome.delivered_objects, outcome.delivered_rows) == (3, 2, 2)
    [line] = outcome.quarantined
    assert line.startswith(f"quarantined s3://{BUCKET}/{moved}: {reason}") and not outcome.succeeded
    assert sink.delivered[Table.KEYS] == rows(2)
    assert list(spill.object_keys()) == [] and body_of(spill, moved) == body


def test_a_read_only_replay_deletes_and_moves_nothing(spill: SpillBucket) -> None:
    good = park(spill, Table.KEYS, rows(2), 0)
    forged = f"{PREFIX}{ACCOUNT}/{RUN}/keys-00001.json"
    spill.s3.put_object(Bucket=BUCKET, Key=forged, Body=b"{}")
    sink = FakeSink()

    outcome = replay(spill, sink, Deadline(), read_only=True)

    assert sink.delivered[Table.KEYS] == rows(2) and outcome.delivered_objects == 1
    assert outcome.quarantined == [
        f"would quarantine s3://{BUCKET}/{forged}: it carries no MAC: not written by keyreport"
    ]
    assert sorted(spill.object_keys()) == [good, forged]


def test_an_object_delivered_but_not_deleted_is_kept_and_reported() -> None:
    """S3 refuses the delete: the object stays for the next replay (the queries absorb a duplicate)."""
    key = f"{PREFIX}{ACCOUNT}/{RUN}/keys-00000.json"
    document = {"format": FORMAT, "run_id": RUN, "account_id": ACCOUNT, "sink": "fake", "table": "keys"}
    document |= {"reason": "HTTP 503", "attempts": [], "spilled_at": "2026-01-02T03:05:00Z", "rows": rows(1)}
    body = json.dumps(document).encode()
    with stubbed_client("s3") as (s3, stub):
        stub.add_response("list_objects_v2", {"Contents": [{"Key": key}], "IsTruncated": False})
        answer = {"Body": StreamingBody(io.BytesIO(body), len(body)), "ContentLength": len(body)}
        answer["Metadata"] = {MAC_METADATA: mac(SPILL_KEY, key, body)}
        stub.add_response("get_object", answer, {"Bucket": BUCKET, "Key": key})
        stub.add_client_error("head_object", "404", http_status_code=404)  # not in the ledger
        stub.add_response("put_object", {})  # recorded in the ledger
        stub.add_client_error("delete_object", "AccessDenied", http_status_code=403)
        sink = FakeSink()

        outcome = replay(SpillBucket(s3, BUCKET, SPILL_KEY), sink, Deadline(), read_only=False)
    assert sink.delivered[Table.KEYS] == rows(1) and outcome.delivered_rows == 1
    assert outcome.kept == [key] and outcome.delivered_objects == 0
    assert outcome.errors == [f"cannot delete s3://{BUCKET}/{key}: AccessDenied"]


def test_an_authentic_row_that_fails_validation_is_parked_alone_and_the_others_are_delivered(
    spill: SpillBucket, caplog: pytest.LogCaptureFixture
) -> None:
    """A row refused after the MAC held is a keyreport bug: said loudly, kept, and never the rest's undoing."""
    bad = rows(1, first=9)[0] | {"AccessKeyId": "AKIAIOSFODNN7EXAMPLE"}  # a full key id: never shipped
    key = park(spill, Table.KEYS, [*rows(2), bad, *rows(1, first=2)], 0)
    sink = FakeSink(batch_size=10)

    outcome = replay(spill, sink, Deadline(), read_only=False)

    moved = f"{QUARANTINE_PREFIX}{ACCOUNT}/{RUN}/keys-00000.json"
    assert sink.delivered[Table.KEYS] == rows(3) and outcome.delivered_rows == 3
    [line] = outcome.quarantined
    assert line.startswith(f"quarantined 1 row(s) of s3://{BUCKET}/{key} as s3://{BUCKET}/{moved}")
    assert "row 3 has an invalid AccessKeyId" in line and "MAC held" in line and not outcome.succeeded
    assert "AKIAIOSFODNN7EXAMPLE" not in line
    assert [r.levelname for r in caplog.records if r.message == "authentic spilled rows refused"] == ["ERROR"]
    assert list(spill.object_keys()) == []
    # The parked row keeps a MAC for the original key: copied back after a fix, it replays as written.
    stored = spill.s3.get_object(Bucket=BUCKET, Key=moved)
    body = stored["Body"].read()
    assert stored["Metadata"][MAC_METADATA] == mac(SPILL_KEY, key, body)
    assert json.loads(body)["rows"] == [bad]


def test_a_quarantined_object_keeps_its_mac_for_its_original_key(spill: SpillBucket) -> None:
    key = park(spill, Table.KEYS, rows(1), 0)
    spill.mac_key = bytes(32)  # the secret was replaced: nothing written before can be verified

    outcome = replay(spill, FakeSink(), Deadline(), read_only=False)

    moved = f"{QUARANTINE_PREFIX}{ACCOUNT}/{RUN}/keys-00000.json"
    assert outcome.quarantined and list(spill.object_keys()) == []
    stored = spill.s3.get_object(Bucket=BUCKET, Key=moved)
    assert stored["Metadata"][MAC_METADATA] == mac(SPILL_KEY, key, stored["Body"].read())


def test_a_delivered_object_restored_from_an_older_version_is_not_delivered_again(spill: SpillBucket) -> None:
    """Versioned bucket: replay deletes the very version it delivered (no delete marker to remove) and records
    its MAC in the ledger, so the same object put back (a backup restored, a version copied back) is
    recognised and deleted, never delivered twice."""
    spill.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    key = park(spill, Table.KEYS, rows(3), 0)
    stored = spill.s3.get_object(Bucket=BUCKET, Key=key)
    body, metadata = stored["Body"].read(), stored["Metadata"]
    first = FakeSink()

    assert replay(spill, first, Deadline(), read_only=False).delivered_objects == 1
    versions = spill.s3.list_object_versions(Bucket=BUCKET, Prefix=key)
    assert versions.get("Versions", []) == versions.get("DeleteMarkers", []) == []  # nothing left to restore
    ledger = spill.s3.head_object(Bucket=BUCKET, Key=f"{LEDGER_PREFIX}{ACCOUNT}/{RUN}/keys-00000.json")
    assert ledger["Metadata"][MAC_METADATA] == mac(SPILL_KEY, key, body)

    spill.s3.put_object(Bucket=BUCKET, Key=key, Body=body, Metadata=metadata)  # the old version comes back
    second = FakeSink()
    outcome = replay(spill, second, Deadline(), read_only=False)

    assert second.delivered[Table.KEYS] == [] and outcome.already_delivered == 1 and outcome.delivered_rows == 0
    assert "1 already delivered" in outcome.summary()
    assert list(spill.object_keys()) == []
    # A different batch under the same key (a later bug, a new object) is not taken for the delivered one.
    park(spill, Table.KEYS, rows(2, first=7), 0)
    third = FakeSink()
    assert replay(spill, third, Deadline(), read_only=False).delivered_rows == 2


def test_replay_stops_taking_objects_at_the_deadline_and_counts_what_is_left(spill: SpillBucket) -> None:
    for sequence in range(5):
        park(spill, Table.KEYS, rows(1, first=sequence), sequence)
    clock = iter([10.0, 10.0, 0.0])  # the deadline passes after two objects

    outcome = replay(spill, FakeSink(), Deadline(lambda: int(next(clock, 0.0) * 1000)), read_only=False)

    assert (outcome.delivered_objects, outcome.left, outcome.left_unlisted) == (2, 3, False)
    assert outcome.stopped and not outcome.succeeded
    assert outcome.summary() == "2 delivered (2 rows), 0 kept, 0 quarantined, 0 already delivered, 3 left"
    assert len(list(spill.object_keys())) == 3
