"""HTTP Data Collector API: SharedKey-signed POSTs of JSON arrays, batched, capped and retried."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import requests

from keyreport.deadline import Deadline
from keyreport.errors import first_line
from keyreport.log import logger
from keyreport.records import Row
from keyreport.secrets import SecretUnavailable, WorkspaceKey
from keyreport.sinks.base import (
    RETRYABLE_STATUSES,
    Delivery,
    FailedBatch,
    RetryPolicy,
    Table,
    json_array,
    json_array_batches,
    retry_after_seconds,
)

API_VERSION = "2016-04-01"
FIELD_MAX_BYTES = 32 * 1024
TIME_GENERATED_FIELD = "loggedDate"
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0


def rfc1123_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def signature(workspace_id: str, key: bytes, date: str, content_length: int) -> str:
    """The Authorization header value: HMAC-SHA256 over the documented string to sign."""
    string_to_sign = f"POST\n{content_length}\napplication/json\nx-ms-date:{date}\n/api/logs"
    digest = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).digest()
    return f"SharedKey {workspace_id}:{base64.b64encode(digest).decode()}"


def cap_field(value: Any) -> Any:
    """Strings over the service's 32 KB field limit are cut (on a character boundary) instead of rejected."""
    if isinstance(value, str) and len(value) > FIELD_MAX_BYTES // 4:
        encoded = value.encode("utf-8")
        if len(encoded) > FIELD_MAX_BYTES:
            return encoded[:FIELD_MAX_BYTES].decode("utf-8", errors="ignore")
    return value


# The documentation: 404 "Either the URL provided is incorrect, or the request is too large".
TOO_LARGE_STATUSES = frozenset({404, 413})


@dataclass
class _PostFailure:
    reason: str
    attempts: list[str]
    too_large: bool = False


class DataCollectorSink:
    name = "data_collector"

    def __init__(
        self,
        *,
        workspace_id: str,
        endpoint: str,
        key: WorkspaceKey,
        log_types: dict[Table, str],
        session: requests.Session,
        max_bytes: int,
        azure_resource_id: str | None = None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.workspace_id = workspace_id
        self.url = f"{endpoint.rstrip('/')}/api/logs?api-version={API_VERSION}"
        self.key = key
        self.log_types = log_types
        self.session = session
        self.max_bytes = max_bytes
        self.azure_resource_id = azure_resource_id
        self.retry = retry or RetryPolicy()
        self.clock = clock
        self.sleep = sleep

    def send(self, table: Table, rows: Iterable[Row], deadline: Deadline) -> Delivery:
        delivery = Delivery()
        capped = ({name: cap_field(value) for name, value in row.items()} for row in rows)
        for batch, body in json_array_batches(capped, self.max_bytes):
            self._deliver(table, batch, body, deadline, delivery)
        return delivery

    def _deliver(self, table: Table, batch: list[Row], body: bytes, deadline: Deadline, delivery: Delivery) -> None:
        failure: _PostFailure | None
        if len(body) > self.max_bytes:
            failure = _PostFailure(f"a {len(body)}-byte record exceeds the {self.max_bytes}-byte request limit", [])
        else:
            failure = self._post(self.log_types[table], body, deadline)
        if failure is None:
            delivery.shipped += len(batch)
        elif failure.too_large and len(batch) > 1:
            # The service says 404 (or 413) for a request it finds too large: halve and try again.
            half = len(batch) // 2
            for part in (batch[:half], batch[half:]):
                self._deliver(table, part, json_array(part), deadline, delivery)
        else:
            logger.error(
                "batch not delivered", extra={"table": table.value, "rows": len(batch), "reason": failure.reason}
            )
            delivery.failed_batches.append(FailedBatch(table, batch, failure.reason, failure.attempts))

    def _headers(self, log_type: str, body: bytes, key: bytes) -> dict[str, str]:
        date = rfc1123_date(self.clock())
        headers = {
            "Content-Type": "application/json",
            "Log-Type": log_type,
            "x-ms-date": date,
            "time-generated-field": TIME_GENERATED_FIELD,
            "Authorization": signature(self.workspace_id, key, date, len(body)),
        }
        if self.azure_resource_id:
            headers["x-ms-AzureResourceId"] = self.azure_resource_id
        return headers

    def _post(self, log_type: str, body: bytes, deadline: Deadline) -> _PostFailure | None:
        """Delivers one body; returns None on success, else why not and the attempt history."""
        attempts: list[str] = []
        refresh_key = key_refreshed = False
        attempt = 0
        while True:
            attempt += 1
            try:
                key = self.key.get(refresh=refresh_key)
                refresh_key = False
            except SecretUnavailable as error:
                attempts.append(f"key: {error}")
                return _PostFailure(str(error), attempts)
            retry_after: float | None = None
            try:
                timeout = (CONNECT_TIMEOUT, max(1.0, min(READ_TIMEOUT, deadline.remaining())))
                # verify= per request: requests lets REQUESTS_CA_BUNDLE override a session's own setting.
                response = self.session.post(
                    self.url,
                    data=body,
                    headers=self._headers(log_type, body, key),
                    timeout=timeout,
                    verify=self.session.verify,
                )
            except requests.exceptions.SSLError as error:
                attempts.append("TLS verification failed")
                return _PostFailure(
                    f"TLS verification of {self.url.split('/api/')[0]} failed ({first_line(error, 200)}): "
                    "behind a TLS-inspecting proxy, set KEYREPORT_CA_BUNDLE to its CA",
                    attempts,
                )
            except requests.RequestException as error:
                attempts.append(f"{type(error).__name__}")
            else:
                if 200 <= response.status_code < 300:
                    return None
                attempts.append(f"{response.status_code} {_service_error(response)}".strip())
                if response.status_code == 403 and not key_refreshed:
                    # The usual cause is a rotated workspace key: read it again once before giving up.
                    refresh_key = key_refreshed = True
                    continue
                if response.status_code == 403:
                    return _PostFailure(
                        "the Data Collector API rejected the signature (403) even with a freshly read "
                        "workspace key: check that the Key Vault secret holds this workspace's key",
                        attempts,
                    )
                if response.status_code not in RETRYABLE_STATUSES:
                    return _PostFailure(
                        f"the Data Collector API refused the batch: {attempts[-1]}",
                        attempts,
                        too_large=response.status_code in TOO_LARGE_STATUSES,
                    )
                retry_after = retry_after_seconds(response.headers)
            wait = self.retry.next_delay(attempt, retry_after, deadline)
            if wait is None:
                return _PostFailure(f"gave up after {attempt} attempts: {attempts[-1]}", attempts)
            self.sleep(wait)


def _service_error(response: requests.Response) -> str:
    """The service's own error code and message (its JSON body), short and without echoing the request."""
    try:
        body = response.json()
    except ValueError:
        return response.reason or ""
    if isinstance(body, dict):
        return f"{body.get('Error', '')}: {body.get('Message', '')}"[:300]
    return ""
