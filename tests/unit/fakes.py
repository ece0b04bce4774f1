"""Fakes the unit tests inject: a sink that refuses chosen batches, a spill bucket on moto's S3, stubbed clients."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.stub import Stubber
from moto import mock_aws

from keyreport.deadline import Deadline
from keyreport.records import Row
from keyreport.sinks.base import Delivery, FailedBatch, OnFailed, Table
from keyreport.spill.bucket import SpillBucket

BUCKET = "keyreport-spill-test"
SPILL_KEY = bytes(range(32, 64))  # the deployment's spill MAC key


class FakeSink:
    """Cuts what it is sent into batches of `batch_size`; refuses the batches named in `refuse`.

    `refuse` holds (table, batch index within one send call); `delivered` is what a workspace would hold.
    """

    name = "fake"

    def __init__(self, batch_size: int = 2, refuse: Iterable[tuple[Table, int]] = ()) -> None:
        self.batch_size = batch_size
        self.refuse = set(refuse)
        self.delivered: dict[Table, list[Row]] = {table: [] for table in Table}
        self.calls: list[Table] = []

    def send(
        self, table: Table, rows: Iterable[Row], deadline: Deadline, on_failed: OnFailed | None = None
    ) -> Delivery:
        self.calls.append(table)
        rows = list(rows)
        delivery = Delivery(on_failed=on_failed)
        for index, start in enumerate(range(0, len(rows), self.batch_size)):
            batch = rows[start : start + self.batch_size]
            if (table, index) in self.refuse:
                reason = f"HTTP 503 on {table.value} batch {index}"
                delivery.fail(FailedBatch(table, batch, reason, attempts=[reason, reason]))
            else:
                self.delivered[table].extend(batch)
                delivery.shipped += len(batch)
        return delivery


@contextmanager
def moto_spill_bucket(create: bool = True) -> Iterator[SpillBucket]:
    """A SpillBucket on moto's in-process S3; with create=False its bucket does not exist."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        if create:
            s3.create_bucket(Bucket=BUCKET)
        yield SpillBucket(s3, BUCKET, SPILL_KEY)


@contextmanager
def stubbed_client(service: str) -> Iterator[tuple[Any, Stubber]]:
    """A real boto3 client whose calls botocore's Stubber answers; every queued answer must have been used."""
    client = boto3.client(  # type: ignore[call-overload]
        service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()
