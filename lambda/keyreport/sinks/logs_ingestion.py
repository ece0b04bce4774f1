"""Logs Ingestion API (DCR-based): azure-monitor-ingestion's LogsIngestionClient with an Entra token.

The SDK gzips each request and reports a failed request through `on_error` instead of raising, so one bad
chunk does not cost the others. What keyreport adds:
- rows are renamed to the table's columns (`user` -> `user_s`, + TimeGenerated) from keyreport.columns;
- rows are streamed in chunks that encode (as the SDK encodes them) to at most `max_bytes`, under the
  service's 1 MiB per call, so the SDK sends each chunk as exactly one request and never more than one
  chunk is held in memory;
- azure-core's retry loop runs with keyreport's decisions (DeadlineRetryPolicy): POST is retried on
  408/429/5xx and connection errors, Retry-After wins, and no wait may end past the Lambda's deadline.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.core.pipeline import PipelineResponse
from azure.core.pipeline.policies import RetryPolicy as AzureRetryPolicy
from azure.core.pipeline.transport import HttpTransport
from azure.monitor.ingestion import LogsIngestionClient, LogsUploadError

from keyreport import __version__
from keyreport.columns import KEY_COLUMNS, RUN_COLUMNS, stream_record
from keyreport.deadline import Deadline
from keyreport.errors import first_line
from keyreport.log import logger
from keyreport.records import Row
from keyreport.settings import Settings
from keyreport.sinks.base import Delivery, FailedBatch, RetryPolicy, Table
from keyreport.tls import trust_bundle

MAX_REQUEST_BYTES = 1_000_000  # the service takes 1 MiB per call, compressed and uncompressed: keep a margin
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
DEADLINE_OPTION = "keyreport_deadline"  # per-call option, read (and removed) by DeadlineRetryPolicy
RETRYABLE_METHODS = frozenset({"POST", "GET", "HEAD", "PUT", "DELETE", "OPTIONS"})

_HINTS = {
    401: "the token was rejected: is KEYREPORT_AZURE_CLOUD the cloud of the data collection endpoint?",
    403: "the app's service principal needs the Monitoring Metrics Publisher role on the data collection rule",
    404: "check KEYREPORT_DCE_ENDPOINT, KEYREPORT_DCR_ID and the stream names against the rule",
    400: "the rows do not fit the rule's stream declaration: deploy azure/logs-ingestion.json again",
}


class DeadlineRetryPolicy(AzureRetryPolicy[Any, Any]):
    """azure-core's retry loop, with the decisions of keyreport's RetryPolicy.

    azure-core retries a POST only on 500/503/504 or when a Retry-After comes with the answer; this also
    retries it on 408, 429 and 502 and on connection errors (a duplicate row is better than a lost one),
    uses capped full-jitter backoff, and gives up instead of waiting when the wait would end past the
    deadline given per call (azure-core would sleep a long Retry-After through the Lambda's timeout).
    """

    def __init__(self, policy: RetryPolicy) -> None:
        retries = policy.max_attempts - 1
        super().__init__(retry_total=retries, retry_connect=retries, retry_read=retries, retry_status=retries)
        self._policy = policy
        self._method_whitelist = RETRYABLE_METHODS

    def configure_retries(self, options: dict[str, Any]) -> dict[str, Any]:
        settings = super().configure_retries(options)
        settings["deadline"] = options.pop(DEADLINE_OPTION, None) or Deadline()
        return settings

    def increment(self, settings: dict[str, Any], response: Any = None, error: Exception | None = None) -> bool:
        if not super().increment(settings, response=response, error=error):
            return False
        retry_after = self.get_retry_after(response) if isinstance(response, PipelineResponse) else None
        wait = self._policy.delay(len(settings["history"]), retry_after)
        deadline: Deadline = settings["deadline"]
        if not deadline.allows(wait):
            return False  # the last answer (or error) stands: better reported than cut off by Lambda
        settings["wait"] = wait
        return True

    def sleep(self, settings: dict[str, Any], transport: HttpTransport[Any, Any], response: Any = None) -> None:
        wait = settings.pop("wait", 0.0)
        if wait > 0:
            transport.sleep(wait)


def sdk_encoded_size(record: Mapping[str, Any]) -> int:
    """Bytes `record` takes in the SDK's request body (json.dumps with its defaults: ASCII, ', ' and ': ')."""
    return len(json.dumps(record))


def bounded_chunks(rows: Iterable[Row], columns: Mapping[str, str], max_bytes: int) -> Iterator[list[tuple[Row, Row]]]:
    """(row, stream record) pairs whose records encode to a JSON array of at most `max_bytes`, streamed.

    A record too big for any request comes alone: sending it would only earn a 413, so the sink fails it
    and the rows around it still go.
    """
    chunk: list[tuple[Row, Row]] = []
    size = 2  # the brackets
    for row in rows:
        record = stream_record(row, columns)
        encoded = sdk_encoded_size(record)
        if chunk and size + 2 + encoded > max_bytes:
            yield chunk
            chunk, size = [], 2
        size += encoded + (2 if chunk else 0)
        chunk.append((row, record))
    if chunk:
        yield chunk


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
    ) -> None:
        self.client = client
        self.rule_id = rule_id
        self.streams = streams
        self.columns = columns
        self.max_bytes = min(max_bytes, MAX_REQUEST_BYTES)

    def send(self, table: Table, rows: Iterable[Row], deadline: Deadline) -> Delivery:
        delivery = Delivery()
        stream = self.streams[table]
        auth_failure: str | None = None
        for chunk in bounded_chunks(rows, self.columns[table], self.max_bytes):
            originals = [row for row, _ in chunk]
            records: list[MutableMapping[str, Any]] = [record for _, record in chunk]
            if auth_failure is not None:
                reason = f"not sent: the Entra token could not be had earlier in this run ({auth_failure})"
                self._failed(delivery, FailedBatch(table, originals, reason, ["not attempted"]))
                continue
            if sdk_encoded_size_of(records) > self.max_bytes:
                reason = f"one row encodes to more than {self.max_bytes} bytes, the most one request may carry"
                self._failed(delivery, FailedBatch(table, originals, reason, ["not attempted"]))
                continue
            if deadline.remaining() <= 0:
                reason = "not sent: no time left before the Lambda deadline"
                self._failed(delivery, FailedBatch(table, originals, reason, ["not attempted"]))
                continue
            failures: list[LogsUploadError] = []
            self.client.upload(self.rule_id, stream, records, on_error=failures.append, **_call_options(deadline))
            # The SDK hands back the very record objects it was given: map them back to the contract rows,
            # which is what a spilled batch keeps for replay.
            row_of = {id(record): row for row, record in chunk}
            failed_ids: set[int] = set()
            for failure in failures:
                failed_ids.update(id(record) for record in failure.failed_logs)
                failed_rows = [row_of[id(record)] for record in failure.failed_logs if id(record) in row_of]
                reason = describe(failure.error, stream)
                self._failed(delivery, FailedBatch(table, failed_rows, reason, [reason]))
                if _no_token(failure.error):
                    auth_failure = reason
            delivery.shipped += sum(1 for record in records if id(record) not in failed_ids)
        return delivery

    @staticmethod
    def _failed(delivery: Delivery, batch: FailedBatch) -> None:
        logger.error(
            "batch not delivered", extra={"table": batch.table.value, "rows": len(batch.rows), "reason": batch.reason}
        )
        delivery.failed_batches.append(batch)


def _no_token(error: Exception) -> bool:
    """azure-identity could not get a token (no HTTP answer from the ingestion endpoint was involved)."""
    return isinstance(error, ClientAuthenticationError) and getattr(error, "response", None) is None


def sdk_encoded_size_of(records: Sequence[Mapping[str, Any]]) -> int:
    return 2 + sum(sdk_encoded_size(record) for record in records) + 2 * max(0, len(records) - 1)


def _call_options(deadline: Deadline) -> dict[str, Any]:
    """Per-call azure-core options: the deadline for the retry policy, and timeouts that fit inside it."""
    remaining = deadline.remaining()
    options: dict[str, Any] = {DEADLINE_OPTION: deadline}
    if math.isfinite(remaining):
        options["timeout"] = remaining  # azure-core's absolute bound on the call, retries included
        options["connection_timeout"] = max(1.0, min(CONNECT_TIMEOUT, remaining))
        options["read_timeout"] = max(1.0, min(READ_TIMEOUT, remaining))
    return options


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
    if isinstance(error, ClientAuthenticationError):
        return f"no Entra token for the Logs Ingestion API: {first_line(error)}"
    return f"{type(error).__name__}: {first_line(error)}"


def logs_ingestion_sink(settings: Settings, credential: TokenCredential) -> LogsIngestionSink:
    """The sink for these settings: a client for the endpoint, a token for the cloud's Azure Monitor audience."""
    assert settings.dce_endpoint and settings.dcr_id  # guaranteed by validation for this sink
    client = LogsIngestionClient(
        settings.dce_endpoint,
        credential,
        credential_scopes=[f"{settings.azure_cloud.monitor_audience}/.default"],
        connection_verify=trust_bundle(settings.ca_bundle),
        logging_enable=False,  # request logging would put the bearer token and the rows in the log
        retry_policy=DeadlineRetryPolicy(RetryPolicy()),
        user_agent=f"keyreport/{__version__}",
    )
    return LogsIngestionSink(
        client=client,
        rule_id=settings.dcr_id,
        streams={Table.KEYS: settings.keys_stream, Table.RUNS: settings.runs_stream},
        columns={Table.KEYS: KEY_COLUMNS, Table.RUNS: RUN_COLUMNS},
        max_bytes=settings.batch_max_bytes,
    )
