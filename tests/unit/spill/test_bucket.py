"""SpillBucket against moto's in-process S3: what is parked comes back unchanged and authenticated, anything
else is refused with a reason (SpillRejected), and S3 trouble is a SpillError."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from keyreport.errors import SpillError, SpillRejected
from keyreport.records import Row, parse_timestamp
from keyreport.sinks.base import FailedBatch, Table
from keyreport.spill.bucket import MAC_METADATA, PREFIX, QUARANTINE_METADATA, QUARANTINE_PREFIX, SpillBucket, mac
from keyreport.spill.validation import FORMAT
from tests.unit.fakes import BUCKET, SPILL_KEY, moto_spill_bucket

RUN = "7cb4f91a-d6e0-45b4-9698-8b733d8643bb"
ACCOUNT = "123456789012"
ROWS: list[Row] = [
    {"loggedDate": "2026-01-02T03:04:05Z", "account_number": ACCOUNT, "user": "zoë", "AccessKeyId": "AKIA...0001",
     "KeyAgeDays": 304, "NeverUsed": False, "RunId": RUN},
    {"loggedDate": "2026-01-02T03:04:05Z", "account_number": ACCOUNT, "user": "李", "AccessKeyId": "AKIA...0002",
     "RunId": RUN},
]  # fmt: skip
KEY = f"{PREFIX}{ACCOUNT}/{RUN}/keys-00000.json"


@pytest.fixture
def spill() -> Iterator[SpillBucket]:
    with moto_spill_bucket() as bucket:
        yield bucket


def park(spill: SpillBucket, sequence: int = 3, table: Table = Table.KEYS) -> str:
    batch = FailedBatch(table, [dict(row) for row in ROWS], "HTTP 503", attempts=["HTTP 503", "timeout"])
    return spill.put(batch, run_id=RUN, account_id=ACCOUNT, sink="data_collector", sequence=sequence).key


def put_raw(spill: SpillBucket, key: str, body: bytes, *, signed: bool = True) -> None:
    metadata = {MAC_METADATA: mac(SPILL_KEY, key, body)} if signed else {}
    spill.s3.put_object(Bucket=BUCKET, Key=key, Body=body, Metadata=metadata)


def spill_error(action: Any) -> str:
    with pytest.raises(SpillError) as caught:
        action()
    assert caught.value.__cause__ is None  # the S3 traceback stays out of the run row
    return str(caught.value)


def rejected(spill: SpillBucket, key: str = KEY) -> str:
    with pytest.raises(SpillRejected) as caught:
        spill.load(key)
    return str(caught.value)


def test_a_parked_batch_comes_back_as_it_was(spill: SpillBucket) -> None:
    key = park(spill)

    assert key == f"{PREFIX}{ACCOUNT}/{RUN}/keys-00003.json"
    loaded = spill.load(key)
    assert (loaded.key, loaded.table, loaded.rows) == (key, Table.KEYS, ROWS)
    assert (loaded.run_id, loaded.account_id, loaded.sink) == (RUN, ACCOUNT, "data_collector")
    assert (loaded.reason, loaded.attempts) == ("HTTP 503", ["HTTP 503", "timeout"])


def test_the_object_is_encrypted_json_that_says_what_it_is_and_carries_its_mac(spill: SpillBucket) -> None:
    key = park(spill, table=Table.RUNS)

    stored = spill.s3.get_object(Bucket=BUCKET, Key=key)
    assert (stored["ContentType"], stored["ServerSideEncryption"]) == ("application/json", "AES256")
    body = stored["Body"].read()
    assert stored["Metadata"] == {MAC_METADATA: mac(SPILL_KEY, key, body)}
    assert "zoë".encode() in body  # written as UTF-8, not \u escapes
    document = json.loads(body)
    assert (document["format"], document["table"], document["rows"]) == (FORMAT, "runs", ROWS)
    assert parse_timestamp(document["spilled_at"]).year >= 2026
    assert key.endswith("/runs-00003.json")


def test_only_spill_objects_are_listed(spill: SpillBucket) -> None:
    first, second = park(spill, 0), park(spill, 1)
    put_raw(spill, "elsewhere/keys-00000.json", b"{}")
    put_raw(spill, f"{QUARANTINE_PREFIX}{ACCOUNT}/{RUN}/keys-00009.json", b"{}")

    assert sorted(spill.object_keys()) == [first, second]


def test_quarantine_moves_the_object_aside_with_its_reason_and_delete_removes_it(spill: SpillBucket) -> None:
    key, other = park(spill, 0), park(spill, 1)
    body = spill.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    moved = spill.quarantine(key, "its MAC does not match: ünïcode in a reason")

    assert moved == f"{QUARANTINE_PREFIX}{ACCOUNT}/{RUN}/keys-00000.json"
    stored = spill.s3.get_object(Bucket=BUCKET, Key=moved)
    assert stored["Body"].read() == body and "its MAC does not match" in stored["Metadata"][QUARANTINE_METADATA]
    assert list(spill.object_keys()) == [other]
    spill.delete(other)
    assert list(spill.object_keys()) == []
    assert spill_error(lambda: spill.load(other)) == f"cannot read s3://{BUCKET}/{other}: NoSuchKey"


def test_an_object_keyreport_did_not_write_is_refused_before_it_is_parsed(spill: SpillBucket) -> None:
    document = json.dumps({"format": FORMAT, "rows": ROWS}).encode()
    put_raw(spill, KEY, document, signed=False)
    assert rejected(spill) == "it carries no MAC: not written by keyreport"

    spill.s3.put_object(Bucket=BUCKET, Key=KEY, Body=document, Metadata={MAC_METADATA: mac(b"other", KEY, document)})
    assert rejected(spill).startswith("its MAC does not match")

    genuine = park(spill, 5)
    stored = spill.s3.get_object(Bucket=BUCKET, Key=genuine)
    copied = f"{PREFIX}{ACCOUNT}/{RUN}/keys-00006.json"  # a valid object under another name
    spill.s3.put_object(Bucket=BUCKET, Key=copied, Body=stored["Body"].read(), Metadata=stored["Metadata"])
    assert rejected(spill, copied).startswith("its MAC does not match")

    put_raw(spill, f"{PREFIX}{ACCOUNT}/not-a-run/keys-00000.json", document)
    assert rejected(spill, f"{PREFIX}{ACCOUNT}/not-a-run/keys-00000.json").startswith("its key is not one keyreport")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"format": "keyreport-spill/2", "rows": [', "it is not JSON"),
        (b"\xff\xfe not text", "it is not JSON"),
        (b"[1, 2]", "it is not a keyreport spill document"),
        (json.dumps({"format": "keyreport-spill/1", "rows": []}).encode(), "it is not a keyreport spill document"),
        (json.dumps({"format": FORMAT}).encode(), "it is not a keyreport spill document"),
    ],
)
def test_a_signed_object_that_is_not_a_spill_document_is_refused_with_the_reason(
    spill: SpillBucket, body: bytes, problem: str
) -> None:
    put_raw(spill, KEY, body)
    assert rejected(spill).startswith(problem)


def test_objects_over_the_size_limit_are_neither_written_nor_read(spill: SpillBucket) -> None:
    tight = SpillBucket(spill.s3, BUCKET, SPILL_KEY, max_bytes=200)
    assert "over the spill object limit" in spill_error(lambda: park(tight))
    put_raw(tight, KEY, b" " * 201)
    assert rejected(tight) == "it is 201 bytes, over the 200-byte limit of a spill object"


def test_a_missing_bucket_is_a_spill_error_for_every_operation() -> None:
    with moto_spill_bucket(create=False) as missing:
        key = f"{PREFIX}{ACCOUNT}/{RUN}/keys-00003.json"
        assert spill_error(lambda: park(missing)) == f"cannot write s3://{BUCKET}/{key}: NoSuchBucket"
        assert spill_error(lambda: list(missing.object_keys())) == f"cannot list s3://{BUCKET}/{PREFIX}: NoSuchBucket"
        assert spill_error(lambda: missing.load(key)) == f"cannot read s3://{BUCKET}/{key}: NoSuchBucket"
        assert spill_error(lambda: missing.delete(key)) == f"cannot delete s3://{BUCKET}/{key}: NoSuchBucket"
        assert (
            spill_error(lambda: missing.quarantine(key, "x")) == f"cannot quarantine s3://{BUCKET}/{key}: NoSuchBucket"
        )
