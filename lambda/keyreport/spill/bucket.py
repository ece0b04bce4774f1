"""Undeliverable batches, parked in S3 as one object each, until `keyreport replay` delivers them.

Rows are spilled exactly as they would have been shipped (masked key ids, no secrets), with the run id,
sink and attempt history, so a replay ships the same records and the queries' latest-row-per-key logic
absorbs a replay of a batch that had in fact arrived.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from keyreport.errors import SpillError, aws_error_code
from keyreport.records import Row, format_timestamp
from keyreport.sinks.base import FailedBatch, Table

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

FORMAT = "keyreport-spill/1"
PREFIX = "keyreport/spill/"


@dataclass
class SpilledBatch:
    key: str
    table: Table
    rows: list[Row]
    run_id: str
    account_id: str
    sink: str
    reason: str
    attempts: list[str] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "run_id": self.run_id,
            "account_id": self.account_id,
            "sink": self.sink,
            "table": self.table.value,
            "reason": self.reason,
            "attempts": self.attempts,
            "spilled_at": format_timestamp(datetime.now(UTC)),
            "rows": self.rows,
        }


class SpillBucket:
    def __init__(self, s3: S3Client, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def put(self, batch: FailedBatch, *, run_id: str, account_id: str, sink: str, sequence: int) -> SpilledBatch:
        key = f"{PREFIX}{account_id}/{run_id}/{batch.table.value}-{sequence:05d}.json"
        spilled = SpilledBatch(key, batch.table, batch.rows, run_id, account_id, sink, batch.reason, batch.attempts)
        self._write(spilled)
        return spilled

    def _write(self, spilled: SpilledBatch) -> None:
        body = json.dumps(spilled.document(), ensure_ascii=False, separators=(",", ":")).encode()
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=spilled.key,
                Body=body,
                ContentType="application/json",
                ServerSideEncryption="AES256",
            )
        except (ClientError, BotoCoreError) as error:
            raise SpillError(f"cannot write s3://{self.bucket}/{spilled.key}: {aws_error_code(error)}") from None

    def object_keys(self) -> Iterator[str]:
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=PREFIX):
                for item in page.get("Contents", []):
                    yield item["Key"]
        except (ClientError, BotoCoreError) as error:
            raise SpillError(f"cannot list s3://{self.bucket}/{PREFIX}: {aws_error_code(error)}") from None

    def load(self, key: str) -> SpilledBatch:
        try:
            document = json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except (ClientError, BotoCoreError) as error:
            raise SpillError(f"cannot read s3://{self.bucket}/{key}: {aws_error_code(error)}") from None
        except ValueError:
            raise SpillError(f"s3://{self.bucket}/{key} is not JSON") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise SpillError(f"s3://{self.bucket}/{key} is not a keyreport spill object ({FORMAT})")
        return SpilledBatch(
            key=key,
            table=Table(document["table"]),
            rows=list(document["rows"]),
            run_id=document["run_id"],
            account_id=document["account_id"],
            sink=document["sink"],
            reason=document["reason"],
            attempts=list(document.get("attempts", [])),
        )

    def keep(self, spilled: SpilledBatch) -> None:
        """Write back what is still undelivered (fewer rows, longer history) under the same key."""
        self._write(spilled)

    def delete(self, key: str) -> None:
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as error:
            raise SpillError(f"cannot delete s3://{self.bucket}/{key}: {aws_error_code(error)}") from None
