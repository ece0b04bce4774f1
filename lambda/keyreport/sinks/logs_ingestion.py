"""Logs Ingestion API (DCR-based): azure-monitor-ingestion's LogsIngestionClient with an Entra token.

The SDK gzips each request and reports a failed request through `on_error` instead of raising, so one bad
chunk does not cost the others. What keyreport adds:
- rows are renamed to the table's columns (`user` -> `user_s`, + TimeGenerated) from keyreport.columns;
- rows are streamed in chunks that encode (as the SDK encodes them) to at most `max_bytes`, under the
  service's 1 MiB per call, so the SDK sends each chunk as exactly one request and never more than one
  chunk is held in memory;
- azure-core's own retries are off (its public `retry_total=0`): the sink retries a failed chunk itself, by
  the pure decision `decide` (408/429/5xx and connection errors, Retry-After wins, no wait past the deadline).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.monitor.ingestion import LogsIngestionClient, LogsUploadError

from keyreport import __version__
from keyreport.columns import KEY_COLUMNS, RUN_COLUMNS, USER_COLUMNS, stream_record
from keyreport.deadline import MIN_CALL_SECONDS, Deadline, azure_request_hook
from keyreport.errors import DeadlineReached, first_line
from keyreport.log import logger
from keyreport.records import Row
from keyreport.sinks.base import DEADLINE_REASON, Delivery, FailedBatch, OnFailed, Table
from keyreport.sinks.batching import array_size, bounded_batches
from keyreport.sinks.retry import Answer, Backoff, GiveUp, Retry, retry_after_seconds
from keyreport.tls import trust_bundle

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from keyreport.settings import LogsIngestionSettings, Settings
    from keyreport.wiring import Wiring

MAX_REQUEST_BYTES = 1_000_000  # the service takes 1 MiB per call, compressed and uncompressed: keep a margin
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
SEPARATOR_BYTES = 2  # the SDK's json.dumps puts ", " between records

_HINTS = {
    401: "the token was rejected: is KEYREPORT_AZURE_CLOUD the cloud of the data collection endpoint?",
    403: "the app's service principal needs the Monitoring Metrics Publisher role on the data collection rule",
    404: "check KEYREPORT_DCE_ENDPOINT, KEYREPORT_DCR_ID and the stream names against the rule",
    400: "the rows do not fit the rule's stream declaration: deploy azure/logs-ingestion.json again",
}

Pair = tuple[Row, MutableMapping[str, Any]]  # a contract row and the stream record it becomes


def answer_of(error: Exception) -> Answer:
    """What a failed upload came back with, as the retry decision reads it."""
    if isinstance(error, HttpResponseError) and error.status_code is not None:
        headers = getattr(error.response, "headers", None) or {}
        return Answer(error.status_code, retry_after_seconds(headers))
    if isinstance(error, DeadlineReached):
        return Answer(failure="deadline", detail=str(error))
    if isinstance(error, ClientAuthenticationError):
        return Answer(failure="no-token")  # azure-identity got no token: no request was made
    if isinstance(error, ServiceRequestError | ServiceResponseError):
        return Answer(failure="connection")
    return Answer(failure="unknown")


def decide(answer: Answer, attempt: int, backoff: Backoff, remaining: float) -> Retry | GiveUp:
    """What to do after an upload that failed: retry transient answers in time, give up on the rest."""
    if answer.failure in ("no-token", "deadline"):
        return GiveUp(answer.failure)
    if not answer.transient:
        return GiveUp("refused")
    return backoff.after(answer, attempt, remaining)


def sdk_encoded_size(record: Mapping[str, Any]) -> int:
    """Bytes `record` takes in the SDK's request body (json.dumps with its defaults: ASCII, ', ' and ': ')."""
    return len(json.dumps(record))


def bounded_chunks(rows: Iterable[Row], columns: Mapping[str, str], max_bytes: int) -> Iterator[list[Pair]]:
    """(row, stream record) pairs whose records encode to a JSON array of at most `max_bytes`, streamed."""
    pairs = ((row, stream_record(row, columns)) for row in rows)
    return bounded_batches(pairs, lambda pair: sdk_encoded_size(pair[1]), max_bytes, SEPARATOR_BYTES)


def sdk_encoded_size_of(records: Iterable[Mapping[str, Any]]) -> int:
    return array_size((sdk_encoded_size(record) for record in records), SEPARATOR_BYTES)


class LogsIngestionSink:
    name = "logs_ingestion"

    def __init__(
        self,
        *,
        client: LogsIngestionClient,
        rule_id: str,
        streams: Mapping[Table, str],
        columns: Mapping[Table, Mapping[str, str]],
        max_bytes: int = MAX_REQUEST_BYTES,
        retry: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.rule_id = rule_id
        self.streams = streams
        self.columns = columns
        self.max_bytes = min(max_bytes, MAX_REQUEST_BYTES)
        self.retry = retry or Backoff()
        self.sleep = sleep

    def send(
        self, table: Table, rows: Iterable[Row], deadline: Deadline, on_failed: OnFailed | None = None
    ) -> Delivery:
        delivery = Delivery(on_failed=on_failed)
        stream = self.streams[table]
        auth_failure: str | None = None
        for chunk in bounded_chunks(rows, self.columns[table], self.max_bytes):
            originals = [row for row, _ in chunk]
            skip = self._not_attempted(chunk, auth_failure, deadline)
            if skip is not None:
                self._failed(delivery, FailedBatch(table, originals, skip, ["not attempted"]))
                continue
            failed, reason, decision = self._upload(stream, chunk, deadline)
            delivery.shipped += len(chunk) - len(failed)
            if failed:
                self._failed(delivery, FailedBatch(table, failed, reason, [reason]))
            if decision is not None and decision.why == "no-token":
                auth_failure = reason
        return delivery

    def _not_attempted(self, chunk: list[Pair], auth_failure: str | None, deadline: Deadline) -> str | None:
        """Why a chunk is failed without a request, or None to send it."""
        if auth_failure is not None:
            return f"not sent: the Entra token could not be had earlier in this run ({auth_failure})"
        if sdk_encoded_size_of(record for _, record in chunk) > self.max_bytes:
            return f"one row encodes to more than {self.max_bytes} bytes, the most one request may carry"
        if deadline.expired:
            return DEADLINE_REASON
        return None

    def _upload(self, stream: str, chunk: list[Pair], deadline: Deadline) -> tuple[list[Row], str, GiveUp | None]:
        """Uploads one chunk, carrying out `decide`; returns the rows not accepted, why, and the decision."""
        pending = chunk
        attempt = 0
        while True:
            attempt += 1
            failures: list[LogsUploadError] = []
            records = [record for _, record in pending]
            self.client.upload(self.rule_id, stream, records, on_error=failures.append, **_call_options(deadline))
            if not failures:
                return [], "", None
            # The SDK hands back the very record objects it was given: map them back to the contract rows.
            failed_ids = {id(record) for failure in failures for record in failure.failed_logs}
            pending = [pair for pair in pending if id(pair[1]) in failed_ids]
            error = failures[-1].error
            decision = decide(answer_of(error), attempt, self.retry, deadline.remaining())
            if isinstance(decision, GiveUp):
                return [row for row, _ in pending], describe(error, stream), decision
            logger.info("upload retried", extra={"stream": stream, "wait": decision.wait, "attempt": attempt})
            self.sleep(decision.wait)

    @staticmethod
    def _failed(delivery: Delivery, batch: FailedBatch) -> None:
        logger.error(
            "batch not delivered", extra={"table": batch.table.value, "rows": len(batch.rows), "reason": batch.reason}
        )
        delivery.fail(batch)


def _call_options(deadline: Deadline) -> dict[str, Any]:
    """Per-call azure-core transport timeouts that fit inside the time remaining."""
    remaining = deadline.remaining()
    if not math.isfinite(remaining):
        return {}
    return {
        "connection_timeout": max(MIN_CALL_SECONDS, min(CONNECT_TIMEOUT, remaining)),
        "read_timeout": max(MIN_CALL_SECONDS, min(READ_TIMEOUT, remaining)),
    }


def describe(error: Exception, stream: str) -> str:
    """One line about a failed request: the service's status and error code, a hint, never the request."""
    if isinstance(error, HttpResponseError) and error.status_code is not None:
        status = error.status_code
        code = getattr(error.error, "code", None) or error.reason or ""
        message = (getattr(error.error, "message", None) or "").strip().splitlines()[0:1]
        text = f"the Logs Ingestion API refused stream {stream}: {status} {code}".strip()
        if message:
            text += f": {message[0][:300]}"
        hint = _HINTS.get(status)
        return f"{text} ({hint})" if hint else text
    if isinstance(error, DeadlineReached):
        return f"deadline: {error}"
    if isinstance(error, ClientAuthenticationError):
        return f"no Entra token for the Logs Ingestion API: {first_line(error)}"
    return f"{type(error).__name__}: {first_line(error)}"


def ingestion_client(
    sink: LogsIngestionSettings, settings: Settings, credential: TokenCredential
) -> LogsIngestionClient:
    """A client for the endpoint, with a token for the cloud's Azure Monitor audience."""
    return LogsIngestionClient(
        sink.dce_endpoint,
        credential,
        credential_scopes=[f"{settings.azure.cloud.monitor_audience}/.default"],
        connection_verify=trust_bundle(settings.azure.ca_bundle),
        logging_enable=False,  # request logging would put the bearer token and the rows in the log
        retry_total=0,  # the sink retries, by its own decision (see the module docstring)
        raw_request_hook=azure_request_hook,  # transport timeouts cut to the run's deadline
        user_agent=f"keyreport/{__version__}",
    )


def build(sink: LogsIngestionSettings, settings: Settings, wiring: Wiring) -> LogsIngestionSink:
    """The sink for these settings, signing in with the configured credential."""
    return LogsIngestionSink(
        client=ingestion_client(sink, settings, wiring.credential()),
        rule_id=sink.dcr_id,
        streams={
            Table.KEYS: sink.keys_stream(settings.log_type),
            Table.RUNS: sink.runs_stream(settings.log_type),
            Table.USERS: sink.users_stream(settings.log_type),
        },
        columns={Table.KEYS: KEY_COLUMNS, Table.RUNS: RUN_COLUMNS, Table.USERS: USER_COLUMNS},
        max_bytes=settings.batch_max_bytes,
    )
