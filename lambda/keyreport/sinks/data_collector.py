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
from typing import TYPE_CHECKING, Any

import requests

from keyreport.deadline import Deadline
from keyreport.errors import DeadlineReached, SecretUnavailable, first_line
from keyreport.identity.key_vault import WorkspaceKey, workspace_key
from keyreport.log import logger
from keyreport.records import Row
from keyreport.sinks.base import DEADLINE_REASON, Delivery, FailedBatch, OnFailed, Table, encode_row, json_array
from keyreport.sinks.batching import bounded_batches
from keyreport.sinks.retry import Answer, Backoff, Decision, GiveUp, Halve, RefreshKey, Retry, retry_after_seconds

if TYPE_CHECKING:
    from keyreport.settings import DataCollectorSettings, Settings
    from keyreport.wiring import Wiring

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


def signed_headers(
    workspace_id: str, key: bytes, log_type: str, content_length: int, date: str, *, resource_id: str | None = None
) -> dict[str, str]:
    """Every header of a POST of `content_length` bytes to `log_type`, signed with the workspace key."""
    headers = {
        "Content-Type": "application/json",
        "Log-Type": log_type,
        "x-ms-date": date,
        "time-generated-field": TIME_GENERATED_FIELD,
        "Authorization": signature(workspace_id, key, date, content_length),
    }
    if resource_id:
        headers["x-ms-AzureResourceId"] = resource_id
    return headers


# The documentation: 404 "Either the URL provided is incorrect, or the request is too large".
TOO_LARGE_STATUSES = frozenset({404, 413})

#: Microsoft ended support for the Data Collector API on this day, and first said it would stop functioning then.
SUPPORT_ENDED = "2026-09-14"
SWITCH = (
    "switch to the Logs Ingestion API: deploy azure/logs-ingestion.json, then set KEYREPORT_SINK=logs_ingestion "
    "with KEYREPORT_DCE_ENDPOINT and KEYREPORT_DCR_ID (docs/migration.md)"
)


def retired(status: int | None, detail: str) -> bool:
    """An answer that refuses the API itself rather than the request: how a retired endpoint would answer.

    Microsoft documents no such answer. A wrong key gets the documented 403 `InvalidAuthorization`; a 403
    without that code, 410 Gone, and a closed workspace (400 `InactiveCustomer`) are not about the key.
    """
    if status == 403:
        return not detail.startswith("InvalidAuthorization")
    return status == 410 or (status == 400 and detail.startswith("InactiveCustomer"))


def retired_reason(answer: object) -> str:
    return (
        f"the Data Collector API refused the request itself, not its signature ({answer}): support for the API "
        f"ended {SUPPORT_ENDED}, and it may no longer take rows for this workspace; {SWITCH}"
    )


def decide(answer: Answer, attempt: int, key_refreshed: bool, backoff: Backoff, remaining: float) -> Decision:
    """What to do after a POST that did not succeed: the Data Collector's rules, in one place."""
    if answer.failure in ("tls", "deadline"):
        return GiveUp(answer.failure)  # a proxy or a wrong CA, or no time left: retrying cannot help
    if answer.status == 403 and not key_refreshed:
        return RefreshKey()  # the usual cause is a rotated workspace key: read it again once before giving up
    if answer.status == 403 or retired(answer.status, answer.detail):
        # A fresh key did not help: the documented signature refusal, or the endpoint refusing the API itself.
        return GiveUp("retired" if retired(answer.status, answer.detail) else "signature")
    if answer.status in TOO_LARGE_STATUSES:
        return Halve()
    if not answer.transient:
        return GiveUp("refused")
    return backoff.after(answer, attempt, remaining)


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
        retry: Backoff | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.workspace_id = workspace_id
        self.host = endpoint.rstrip("/")
        self.url = f"{self.host}/api/logs?api-version={API_VERSION}"
        self.key = key
        self.log_types = log_types
        self.session = session
        self.max_bytes = max_bytes
        self.azure_resource_id = azure_resource_id
        self.retry = retry or Backoff()
        self.clock = clock
        self.sleep = sleep

    def send(
        self, table: Table, rows: Iterable[Row], deadline: Deadline, on_failed: OnFailed | None = None
    ) -> Delivery:
        delivery = Delivery(on_failed=on_failed)
        encoded = ((row, encode_row(row)) for row in ({k: cap_field(v) for k, v in row.items()} for row in rows))
        for batch in bounded_batches(encoded, lambda pair: len(pair[1]), self.max_bytes, separator_bytes=1):
            body = json_array(part for _, part in batch)
            self._deliver(table, [row for row, _ in batch], body, deadline, delivery)
        return delivery

    def _deliver(self, table: Table, batch: list[Row], body: bytes, deadline: Deadline, delivery: Delivery) -> None:
        failure: _PostFailure | None
        if deadline.expired:
            failure = _PostFailure(DEADLINE_REASON, ["not attempted"])
        elif len(body) > self.max_bytes:
            failure = _PostFailure(f"a {len(body)}-byte record exceeds the {self.max_bytes}-byte request limit", [])
        else:
            failure = self._post(self.log_types[table], body, deadline)
        if failure is None:
            delivery.shipped += len(batch)
        elif failure.too_large and len(batch) > 1:
            half = len(batch) // 2
            for part in (batch[:half], batch[half:]):
                self._deliver(table, part, json_array(map(encode_row, part)), deadline, delivery)
        else:
            logger.error(
                "batch not delivered", extra={"table": table.value, "rows": len(batch), "reason": failure.reason}
            )
            delivery.fail(FailedBatch(table, batch, failure.reason, failure.attempts))

    def _headers(self, log_type: str, body: bytes, key: bytes) -> dict[str, str]:
        date = rfc1123_date(self.clock())
        return signed_headers(self.workspace_id, key, log_type, len(body), date, resource_id=self.azure_resource_id)

    def _post(self, log_type: str, body: bytes, deadline: Deadline) -> _PostFailure | None:
        """Delivers one body, carrying out `decide`; returns None on success, else why not and the attempts."""
        attempts: list[str] = []
        refresh = refreshed = False
        attempt = 0
        while True:
            attempt += 1
            try:
                key = self.key.get(refresh=refresh)
            except SecretUnavailable as error:
                attempts.append(f"key: {error}")
                return _PostFailure(str(error), attempts)
            answer = self._attempt(log_type, body, key, deadline)
            if answer.ok:
                return None
            attempts.append(str(answer))
            decision = decide(answer, attempt, refreshed, self.retry, deadline.remaining())
            refresh = isinstance(decision, RefreshKey)
            refreshed = refreshed or refresh
            if isinstance(decision, Retry):
                self.sleep(decision.wait)
            elif isinstance(decision, Halve | GiveUp):
                return self._failure(decision, answer, attempt, attempts)

    def _attempt(self, log_type: str, body: bytes, key: bytes, deadline: Deadline) -> Answer:
        headers = self._headers(log_type, body, key)
        try:
            timeout = deadline.timeouts(CONNECT_TIMEOUT, READ_TIMEOUT, "Data Collector POST")
            # verify= per request: requests lets REQUESTS_CA_BUNDLE override a session's own setting.
            response = self.session.post(
                self.url, data=body, headers=headers, timeout=timeout, verify=self.session.verify
            )
        except DeadlineReached as error:
            return Answer(failure="deadline", detail=str(error))
        except requests.exceptions.SSLError as error:
            return Answer(failure="tls", detail=first_line(error, 200))
        except requests.RequestException as error:
            return Answer(failure="connection", detail=type(error).__name__)
        return Answer(response.status_code, retry_after_seconds(response.headers), detail=_service_error(response))

    def _failure(self, decision: Halve | GiveUp, answer: Answer, attempt: int, attempts: list[str]) -> _PostFailure:
        if isinstance(decision, Halve):
            return _PostFailure(f"the Data Collector API refused the batch: {answer}", attempts, too_large=True)
        if decision.why == "deadline":
            reason = f"deadline: {answer.detail}"
        elif decision.why == "tls":
            reason = (
                f"TLS verification of {self.host} failed ({answer.detail}): "
                "behind a TLS-inspecting proxy, set KEYREPORT_CA_BUNDLE to its CA"
            )
        elif decision.why == "signature":
            reason = (
                "the Data Collector API rejected the signature (403) even with a freshly read "
                "workspace key: check that the Key Vault secret holds this workspace's key"
            )
        elif decision.why == "retired":
            reason = retired_reason(answer)
        elif decision.why == "refused":
            reason = f"the Data Collector API refused the batch: {answer}"
        else:
            reason = f"gave up after {attempt} attempts: {answer}"
        return _PostFailure(reason, attempts)


def _service_error(response: requests.Response) -> str:
    """The service's own error code and message (its JSON body), short and without echoing the request."""
    try:
        body = response.json()
    except ValueError:
        return response.reason or ""
    if isinstance(body, dict):
        return f"{body.get('Error', '')}: {body.get('Message', '')}"[:300]
    return ""


def build(sink: DataCollectorSettings, settings: Settings, wiring: Wiring) -> DataCollectorSink:
    """The sink for these settings: the workspace key from Key Vault, read with the configured credential."""
    return DataCollectorSink(
        workspace_id=sink.workspace_id,
        endpoint=sink.endpoint(settings.azure.cloud),
        key=workspace_key(sink, settings.azure, wiring.credential()),
        log_types={
            Table.KEYS: settings.log_type,
            Table.RUNS: settings.run_log_type,
            Table.USERS: settings.users_log_type,
        },
        session=wiring.http(),
        max_bytes=settings.batch_max_bytes,
        azure_resource_id=sink.resource_id,
    )
