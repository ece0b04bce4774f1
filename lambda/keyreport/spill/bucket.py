"""Undeliverable batches, parked in S3 as one authenticated object each, until `keyreport replay` delivers them.

Rows are spilled exactly as they would have been shipped (masked key ids, no secrets), with the run id,
sink and attempt history, so a replay ships the same records and the queries' latest-row-per-key logic
absorbs a replay of a batch that had in fact arrived.

Each object carries an HMAC-SHA256 (metadata `keyreport-mac`) over its key and its bytes, under the
deployment's spill key: replay checks it before it parses anything, then validates the content strictly
(keyreport.spill.validation). An object that fails either is moved under QUARANTINE_PREFIX with the reason.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, EndpointConnectionError

from keyreport.errors import SecretUnavailable, SpillError, SpillRejected, aws_error_code
from keyreport.records import Row, format_timestamp
from keyreport.sinks.base import FailedBatch, Table
from keyreport.spill.validation import FORMAT, ObjectKey, RefusedRow, validated

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PREFIX = "keyreport/spill/"
QUARANTINE_PREFIX = "keyreport/quarantine/"
LEDGER_PREFIX = "keyreport/delivered/"  # one empty object per delivered batch, carrying the batch's MAC
MAC_METADATA = "keyreport-mac"
QUARANTINE_METADATA = "keyreport-quarantine-reason"
MAX_OBJECT_BYTES = 32 * 1024 * 1024  # a batch is at most 30 MB (KEYREPORT_BATCH_MAX_BYTES), plus its history
# Errors after which the request surely never reached S3; after any other, S3 may have stored the object.
NOT_SENT = (EndpointConnectionError, ConnectTimeoutError)
_KEY = re.compile(PREFIX + r"(?P<account>[0-9]{12})/(?P<run>[0-9a-f-]{36})/(?P<table>[a-z_]{1,32})-[0-9]{5}\.json")


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
    spilled_at: str = field(default_factory=lambda: format_timestamp(datetime.now(UTC)))
    refused: list[RefusedRow] = field(default_factory=list)  # rows of an authentic object that failed validation
    mac: str = ""  # as read: what the ledger records once it is delivered
    version: str | None = None  # the object version read: the one deleted once delivered

    def document(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "run_id": self.run_id,
            "account_id": self.account_id,
            "sink": self.sink,
            "table": self.table.value,
            "reason": self.reason,
            "attempts": self.attempts,
            "spilled_at": self.spilled_at,
            "rows": self.rows,
        }


def mac(key: bytes, object_key: str, body: bytes) -> str:
    """The MAC of an object: its key is included, so a valid object cannot be passed off under another key."""
    digest = hmac.new(key, object_key.encode("utf-8") + b"\n" + body, hashlib.sha256).hexdigest()
    return f"hmac-sha256={digest}"


def object_key(key: str) -> ObjectKey | None:
    """The account, run and table an object's key names, or None when keyreport never writes such a key."""
    match = _KEY.fullmatch(key)
    return ObjectKey(key, match["account"], match["run"], match["table"]) if match else None


class SpillBucket:
    """`mac_key` may be given as a function that reads it: then it is read on first use, under the deadline
    of the call that needs it; a key that cannot be read makes that call a SpillError."""

    def __init__(
        self,
        s3: S3Client,
        bucket: str,
        mac_key: bytes | Callable[[], bytes],
        *,
        max_bytes: int = MAX_OBJECT_BYTES,
        previous_mac_key: Callable[[], bytes | None] | None = None,
    ) -> None:
        """`previous_mac_key` reads the key of the secret's previous version (AWSPREVIOUS), or None: objects
        spilled before a rotation still verify under it."""
        self.s3 = s3
        self.bucket = bucket
        self._mac_key = mac_key
        self.max_bytes = max_bytes
        self.previous_mac_key = previous_mac_key
        self._previous: list[bytes | None] = []  # read once, when an object first needs it

    @property
    def mac_key(self) -> bytes:
        if callable(self._mac_key):
            try:
                self._mac_key = self._mac_key()
            except SecretUnavailable as error:
                raise SpillError(f"cannot authenticate spill objects: {error}") from None
        return self._mac_key

    @mac_key.setter
    def mac_key(self, key: bytes) -> None:
        self._mac_key = key

    def mac_key_source(self) -> bytes | Callable[[], bytes]:
        """The key, or the function that reads it (a wrapper of this bucket reads it no sooner)."""
        return self._mac_key

    def put(self, batch: FailedBatch, *, run_id: str, account_id: str, sink: str, sequence: int) -> SpilledBatch:
        key = f"{PREFIX}{account_id}/{run_id}/{batch.table.value}-{sequence:05d}.json"
        spilled = SpilledBatch(key, batch.table, batch.rows, run_id, account_id, sink, batch.reason, batch.attempts)
        body = json.dumps(spilled.document(), ensure_ascii=False, separators=(",", ":")).encode()
        if len(body) > self.max_bytes:  # replay would refuse it: say so now, while the rows can still be logged
            raise SpillError(f"a batch of {len(batch.rows)} rows is {len(body)} bytes, over the spill object limit")
        try:
            self._put_json(key, body, {MAC_METADATA: mac(self.mac_key, key, body)})
        except (ClientError, BotoCoreError) as error:
            unknown = isinstance(error, BotoCoreError) and not isinstance(error, NOT_SENT)
            text = f"cannot write s3://{self.bucket}/{key}: {aws_error_code(error)}"
            raise SpillError(text, maybe_written=key if unknown else None) from None
        return spilled

    def object_keys(self) -> Iterator[str]:
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=PREFIX):
                for item in page.get("Contents", []):
                    yield item["Key"]
        except (ClientError, BotoCoreError) as error:
            raise SpillError(f"cannot list s3://{self.bucket}/{PREFIX}: {aws_error_code(error)}") from None

    def load(self, key: str, now: datetime | None = None) -> SpilledBatch:
        """The batch in object `key`, authenticated and validated; SpillRejected says why it is not one."""
        where = object_key(key)
        if where is None:
            raise SpillRejected("its key is not one keyreport writes (<account>/<run id>/<table>-<n>.json)")
        body, metadata, version = self._read(key)
        expected = mac(self.mac_key, key, body)
        if not hmac.compare_digest(metadata.get(MAC_METADATA, ""), expected):
            expected = self._previous_mac(key, body) or expected
        if not hmac.compare_digest(metadata.get(MAC_METADATA, ""), expected):
            raise SpillRejected(
                "its MAC does not match: not written by this deployment's function, or changed since"
                if MAC_METADATA in metadata
                else "it carries no MAC: not written by keyreport"
            )
        try:
            document = json.loads(body)
        except ValueError:
            raise SpillRejected("it is not JSON") from None
        return SpilledBatch(**validated(document, where, now or datetime.now(UTC)), mac=expected, version=version)

    def _previous_mac(self, key: str, body: bytes) -> str | None:
        """The object's MAC under the previous version of the secret, when there is one (after a rotation)."""
        if self.previous_mac_key is None:
            return None
        if not self._previous:
            self._previous.append(self.previous_mac_key())
        previous = self._previous[0]
        return mac(previous, key, body) if previous is not None else None

    def _read(self, key: str) -> tuple[bytes, dict[str, str], str | None]:
        """The object's bytes (refused unread above the size limit) and its metadata."""
        try:
            answer = self.s3.get_object(Bucket=self.bucket, Key=key)
            size = answer["ContentLength"]
            if size > self.max_bytes:
                answer["Body"].close()
                raise SpillRejected(f"it is {size} bytes, over the {self.max_bytes}-byte limit of a spill object")
            version = answer.get("VersionId")
            return answer["Body"].read(self.max_bytes + 1), answer.get("Metadata", {}), version
        except (ClientError, BotoCoreError) as error:
            raise SpillError(f"cannot read s3://{self.bucket}/{key}: {aws_error_code(error)}") from None

    def quarantine(self, key: str, reason: str) -> str:
        """Moves an object out of replay's way, under QUARANTINE_PREFIX, with the reason; returns the new key.

        The copy keeps the object's MAC (over its original key): copied back there after a fix (a rotated
        fingerprint secret restored, a validation bug fixed), it replays as it was written.
        """
        moved = QUARANTINE_PREFIX + key.removeprefix(PREFIX)
        try:
            kept = self.s3.head_object(Bucket=self.bucket, Key=key).get("Metadata", {}).get(MAC_METADATA)
            self.s3.copy_object(
                Bucket=self.bucket,
                Key=moved,
                CopySource={"Bucket": self.bucket, "Key": key},
                MetadataDirective="REPLACE",
                Metadata=_quarantine_metadata(reason, kept),
                ServerSideEncryption="AES256",
            )
        except (ClientError, BotoCoreError) as error:
            raise SpillError(f"cannot quarantine s3://{self.bucket}/{key}: {aws_error_code(error)}") from None
        self.delete(key)
        return moved

    def quarantine_refused(self, batch: SpilledBatch, reason: str) -> str:
        """Parks the refused rows of an authentic batch under QUARANTINE_PREFIX, as a batch of their own whose
        MAC holds for the original key (so they replay from there once the bug is fixed); returns its key."""
        rows = [refused.row for refused in batch.refused]
        kept = SpilledBatch(batch.key, batch.table, rows, batch.run_id, batch.account_id, batch.sink, reason)
        kept.attempts, kept.spilled_at = batch.attempts, batch.spilled_at
        body = json.dumps(kept.document(), ensure_ascii=False, separators=(",", ":")).encode()
        moved = QUARANTINE_PREFIX + batch.key.removeprefix(PREFIX)
        try:
            self._put_json(moved, body, _quarantine_metadata(reason, mac(self.mac_key, batch.key, body)))
        except (ClientError, BotoCoreError) as error:
            raise SpillError(f"cannot write s3://{self.bucket}/{moved}: {aws_error_code(error)}") from None
        return moved

    def _put_json(self, key: str, body: bytes, metadata: dict[str, str]) -> None:
        self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
            ServerSideEncryption="AES256",
            Metadata=metadata,
        )

    def delivered(self, batch: SpilledBatch) -> bool:
        """Whether the ledger says this very object (key and bytes: its MAC) was delivered before."""
        try:
            answer = self.s3.head_object(Bucket=self.bucket, Key=_ledger_key(batch.key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise SpillError(f"cannot read the ledger of s3://{self.bucket}: {aws_error_code(error)}") from None
        except BotoCoreError as error:
            raise SpillError(f"cannot read the ledger of s3://{self.bucket}: {aws_error_code(error)}") from None
        recorded = answer.get("Metadata", {}).get(MAC_METADATA, "")
        return bool(batch.mac) and hmac.compare_digest(recorded, batch.mac)

    def record_delivered(self, batch: SpilledBatch) -> None:
        """The ledger entry of a delivered object: its MAC, under the ledger prefix (only the function's role
        and the break-glass role may write there)."""
        key = _ledger_key(batch.key)
        try:
            self.s3.put_object(
                Bucket=self.bucket, Key=key, Body=b"", ServerSideEncryption="AES256", Metadata={MAC_METADATA: batch.mac}
            )
        except (ClientError, BotoCoreError) as error:
            raise SpillError(f"cannot write s3://{self.bucket}/{key}: {aws_error_code(error)}") from None

    def delete(self, key: str, version: str | None = None) -> None:
        """Deletes the object, or exactly one version of it: no delete marker is left for anyone to remove."""
        try:
            if version:  # "null" too: the version of an object written before versioning was enabled
                self.s3.delete_object(Bucket=self.bucket, Key=key, VersionId=version)
            else:
                self.s3.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as error:
            raise SpillError(f"cannot delete s3://{self.bucket}/{key}: {aws_error_code(error)}") from None


def _ledger_key(key: str) -> str:
    return LEDGER_PREFIX + key.removeprefix(PREFIX)


def _quarantine_metadata(reason: str, object_mac: str | None) -> dict[str, str]:
    metadata = {QUARANTINE_METADATA: reason.encode("ascii", "replace").decode()[:1000]}
    return metadata | ({MAC_METADATA: object_mac} if object_mac else {})
