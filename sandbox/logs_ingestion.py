"""Azure Monitor Logs Ingestion API emulator: ``POST /dataCollectionRules/{immutable id}/streams/{stream}``.

The rule is *deployed from the shipped ARM template* (``azure/logs-ingestion.json``): its stream
declarations, data flows and the tables' schemas are what this emulator enforces, so the sandbox runs the
product against exactly what a user deploys. Strict where the documentation is explicit (learn.microsoft.com,
"Logs Ingestion API in Azure Monitor", "Azure Monitor service limits"; the REST spec in
azure-rest-api-specs ``monitor/data-plane/ingestion/stable/2023-01-01``):

* ``api-version`` required (2023-01-01; 2021-11-01-preview still accepted); ``Content-Type: application/json``;
  ``Content-Encoding: gzip`` or none.
* ``Authorization: Bearer`` token from the Entra emulator for the Azure Monitor audience
  (``https://monitor.azure.com`` in the public cloud) and a known tenant; else 401.
* The caller's service principal (token ``oid``) must hold *Monitoring Metrics Publisher* on the rule
  (:meth:`assign_publisher`, what the template's role assignment does); else 403 ``OperationFailed`` with
  the service's message.
* 1 MiB per call, compressed and uncompressed: 413 ``ContentLengthLimitExceeded`` with the service's
  message ("Maximum allowed content length: 1048576 bytes (1 MB). Provided content length: ...").
* Body: a JSON array of objects. Each property must be a column of the stream declaration with a value of
  the declared type, else 400. *Stricter than Azure*, which drops undeclared properties and mistyped
  values silently: here the loss is noticed.
* The data flow's transformation maps the stream to its ``Custom-<table>`` output; values are stored in
  the table's column types (``guid`` normalised, ``datetime`` as ISO 8601 UTC, ``real`` as float; string
  values over 64 KB truncated) and represented exactly as the Data Collector emulator stores them, so one
  read-back serves both sinks.
* ``TimeGenerated`` is the record's own when it is no more than 2 days old and 1 day ahead, else the
  ingestion time (:func:`sandbox.workspace.time_generated`, shared with the Data Collector emulator); the
  record's other columns (``loggedDate``) are stored unchanged.
* An empty array is authorised like any upload (401 without a token, 403 without the role) and answers 204
  with no row and no table: what ``keyreport check`` sends, and Vector's azure_logs_ingestion healthcheck.
  (The service also answers 204 to a body that is not an array and drops it, MicrosoftDocs/azure-docs
  #106266; the emulator refuses that with 400 instead, as above.)
* Success is 204 with no body; errors are ``{"error": {"code", "message"}}`` with ``x-ms-error-code``.

``fail_next`` applies to the ingestion endpoint before any check (429 carries ``Retry-After`` when given).
``GET /_sandbox/tables[/{table}]`` reads stored rows back (loopback only), as on the Data Collector emulator.
"""

from __future__ import annotations

import gzip
import json
import re
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sandbox.data_collector import format_datetime, parse_iso_datetime
from sandbox.entra import EntraEmulator, TokenError
from sandbox.https import Fault, HttpsEmulator, Request, Response, retry_after_header
from sandbox.tls import LocalCA
from sandbox.workspace import WorkspaceTables, time_generated

API_VERSIONS = frozenset({"2023-01-01", "2021-11-01-preview"})
MAX_CALL_BYTES = 1024 * 1024  # the service's own figure in its 413 message
MAX_FIELD_BYTES = 64 * 1024
PUBLIC_AUDIENCE = "https://monitor.azure.com"
TEMPLATE_PATH = Path(__file__).resolve().parents[1] / "azure" / "logs-ingestion.json"
DCR_TYPE = "Microsoft.Insights/dataCollectionRules"
TABLE_TYPE = "Microsoft.OperationalInsights/workspaces/tables"
# Table column types as Log Analytics names them in queries (and the Data Collector emulator reports them).
KQL_TYPES = {"string": "string", "real": "real", "boolean": "bool", "datetime": "datetime", "guid": "guid"}
STANDARD_COLUMNS = frozenset({"TimeGenerated", "TenantId", "Type", "_ResourceId"})

_PATH = re.compile(r"^/dataCollectionRules/([^/]+)/streams/([^/]+)$")


@dataclass(frozen=True)
class Flow:
    """One data flow of the rule: an input stream, its declared columns, and the table it lands in."""

    stream: str
    stream_columns: dict[str, str]  # name -> stream type (string, int, long, real, boolean, datetime, dynamic)
    table: str
    table_columns: dict[str, str]  # name -> table type (string, real, boolean, datetime, guid, ...)


@dataclass
class Rule:
    immutable_id: str
    flows: dict[str, Flow]
    publishers: set[str] = field(default_factory=set)  # object ids holding Monitoring Metrics Publisher


@dataclass(frozen=True)
class Upload:
    """An accepted call, for assertions: what came over the wire and what was stored."""

    rule_id: str
    stream: str
    table: str
    headers: dict[str, str]
    body_bytes: int  # as sent (compressed when gzip)
    payload_bytes: int  # after decompression
    content_encoding: str | None
    records: int
    received: datetime


class _Rejected(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def flows_from_template(template: dict[str, Any]) -> dict[str, Flow]:
    """The data flows of the template's data collection rule, with the schemas of the tables it creates."""
    resources = template["resources"]
    tables = {
        resource["properties"]["schema"]["name"]: {
            column["name"]: column["type"].lower() for column in resource["properties"]["schema"]["columns"]
        }
        for resource in resources
        if resource["type"] == TABLE_TYPE
    }
    [rule] = [resource for resource in resources if resource["type"] == DCR_TYPE]
    declarations = rule["properties"]["streamDeclarations"]
    flows: dict[str, Flow] = {}
    for flow in rule["properties"]["dataFlows"]:
        table = flow["outputStream"].removeprefix("Custom-")
        for stream in flow["streams"]:
            columns = {column["name"]: column["type"].lower() for column in declarations[stream]["columns"]}
            flows[stream] = Flow(stream, columns, table, tables[table])
    return flows


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    template: dict[str, Any] = json.loads(path.read_text())
    return template


class LogsIngestionEmulator(HttpsEmulator, WorkspaceTables):
    """A data collection endpoint for rules registered with :meth:`add_rule`, trusting tokens from ``entra``
    for ``audience``; rows land in one emulated workspace (``workspace_id``)."""

    max_body_bytes = MAX_CALL_BYTES

    def __init__(
        self,
        ca: LocalCA,
        entra: EntraEmulator,
        workspace_id: str,
        *,
        audience: str = PUBLIC_AUDIENCE,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(ca)
        self.entra = entra
        self.workspace_id = workspace_id
        self.audience = audience
        self.clock = clock
        WorkspaceTables.__init__(self)
        self._rules: dict[str, Rule] = {}
        self._uploads: list[Upload] = []

    # -- test-facing API -----------------------------------------------------------------------------
    def add_rule(self, immutable_id: str, flows: dict[str, Flow] | None = None) -> Rule:
        """Deploy a rule (by default the shipped template's) under ``immutable_id``."""
        rule = Rule(immutable_id, flows if flows is not None else flows_from_template(load_template()))
        with self._lock:
            self._rules[immutable_id] = rule
        return rule

    def assign_publisher(self, immutable_id: str, object_id: str) -> None:
        """Grant Monitoring Metrics Publisher on the rule to a service principal (its object id)."""
        with self._lock:
            self._rules[immutable_id].publishers.add(object_id)

    def revoke_publisher(self, immutable_id: str, object_id: str) -> None:
        with self._lock:
            self._rules[immutable_id].publishers.discard(object_id)

    def columns(self, table: str) -> dict[str, str]:
        """Custom columns of ``table`` as declared, with their query types (string, bool, real, datetime, guid)."""
        with self._lock:
            declared = next(
                (
                    flow.table_columns
                    for rule in self._rules.values()
                    for flow in rule.flows.values()
                    if flow.table == table
                ),
                {},
            )
        return {name: KQL_TYPES.get(kind, kind) for name, kind in declared.items() if name not in STANDARD_COLUMNS}

    @property
    def uploads(self) -> list[Upload]:
        with self._lock:
            return list(self._uploads)

    # -- HTTP ----------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if request.method == "GET" and request.path.startswith("/_sandbox/"):
            return self._read_back(request)
        match = _PATH.fullmatch(request.path)
        if request.method != "POST" or match is None:
            return _error(
                404,
                "NotFound",
                "The sandbox endpoint serves POST /dataCollectionRules/{id}/streams/{stream}, "
                f"not {request.method} {request.path}.",
            )
        fault = self.take_fault()
        if fault is not None:
            return self.raw_fault(fault) or _fault(fault)
        try:
            self._ingest(request, *match.groups())
        except _Rejected as rejected:
            return _error(rejected.status, rejected.code, rejected.message, rejected.headers)
        return Response(204)

    def oversized(self, request: Request) -> Response:
        return _too_large(f"Provided content length: {request.content_length} bytes.")

    def _ingest(self, request: Request, rule_id: str, stream: str) -> None:
        api_version = request.param("api-version")
        if not api_version:
            raise _Rejected(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if api_version not in API_VERSIONS:
            raise _Rejected(
                400, "UnsupportedApiVersion", f"The HTTP resource does not support the API version '{api_version}'."
            )
        claims = self._authenticate(request)
        flow = self._authorize(rule_id, stream, claims)
        content_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise _Rejected(
                415,
                "UnsupportedMediaType",
                f"The content type '{request.header('Content-Type')}' is not supported; send application/json.",
            )
        encoding = (request.header("Content-Encoding") or "").strip().lower() or None
        payload = _decoded(request.body, encoding)
        records = _records(payload)
        received = self.clock()
        rows = [self._row(flow, index, record, received) for index, record in enumerate(records)]
        with self._lock:
            self._append_rows(flow.table, rows)
            self._uploads.append(
                Upload(
                    rule_id,
                    stream,
                    flow.table,
                    request.header_items(),
                    len(request.body),
                    len(payload),
                    encoding,
                    len(records),
                    received,
                )
            )

    def _authenticate(self, request: Request) -> dict[str, Any]:
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _Rejected(
                401,
                "InvalidToken",
                "The request has no bearer token (Authorization: Bearer <token>).",
                {"WWW-Authenticate": "Bearer"},
            )
        try:
            return self.entra.verify_token(token.strip(), self.audience)
        except TokenError as error:
            code = "InvalidAudience" if error.reason == "audience" else "InvalidToken"
            raise _Rejected(
                401, code, f"The bearer token is not valid: {error}", {"WWW-Authenticate": "Bearer"}
            ) from None

    def _authorize(self, rule_id: str, stream: str, claims: dict[str, Any]) -> Flow:
        with self._lock:
            rule = self._rules.get(rule_id)
            allowed = rule is not None and claims.get("oid") in rule.publishers
        if rule is None or not allowed:
            # The service does not tell a missing rule from a missing role assignment.
            raise _Rejected(
                403,
                "OperationFailed",
                "The authentication token provided does not have access to ingest data for the data collection "
                f"rule with immutable Id '{rule_id}'.",
            )
        flow = rule.flows.get(stream)
        if flow is None:
            raise _Rejected(
                404,
                "InvalidStream",
                f"Stream '{stream}' is not declared in the data collection rule with immutable Id '{rule_id}'; "
                f"it declares: {', '.join(sorted(rule.flows))}.",
            )
        return flow

    def _row(self, flow: Flow, index: int, record: dict[str, Any], received: datetime) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for name, value in record.items():
            kind = flow.stream_columns.get(name)
            if kind is None:
                raise _invalid_record(
                    index,
                    f"has property '{name}', which stream '{flow.stream}' does not declare "
                    "(Azure would drop it without an error; the sandbox refuses it so the loss is noticed).",
                )
            if value is None:
                continue
            if not _fits(value, kind):
                raise _invalid_record(
                    index,
                    f"property '{name}' is {type(value).__name__} {value!r:.60}, but stream '{flow.stream}' "
                    f"declares it {kind}.",
                )
            if name in flow.table_columns:
                stored = _stored(value, flow.table_columns[name])
                if stored is not None:
                    row[name] = stored
        supplied = row.pop("TimeGenerated", None)  # stored as ISO 8601 UTC when the record had one
        generated = time_generated(parse_iso_datetime(supplied) if supplied else None, received)
        standard = {"TenantId": self.workspace_id, "TimeGenerated": format_datetime(generated), "Type": flow.table}
        return {**standard, **row}


def _invalid_record(index: int, detail: str) -> _Rejected:
    return _Rejected(400, "InvalidStreamData", f"Record {index} {detail}")


def _fits(value: Any, kind: str) -> bool:
    """Whether a JSON value is of a stream column type."""
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in ("int", "long"):
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "real":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "datetime":
        return isinstance(value, str) and parse_iso_datetime(value) is not None
    return kind == "dynamic"


def _stored(value: Any, kind: str) -> Any:
    """The value as the table keeps it (what the transformation's output becomes in the column type)."""
    if kind == "real":
        return float(value)
    if kind == "datetime":
        moment = parse_iso_datetime(value) if isinstance(value, str) else None
        return format_datetime(moment) if moment else None
    if kind == "guid":
        try:
            return str(uuid.UUID(str(value)))
        except ValueError:
            return None  # toguid() of anything else is null: the column stays empty
    if isinstance(value, str):
        encoded = value.encode("utf-8")
        return encoded[:MAX_FIELD_BYTES].decode("utf-8", errors="ignore") if len(encoded) > MAX_FIELD_BYTES else value
    return value


def _decoded(body: bytes, encoding: str | None) -> bytes:
    if encoding is None:
        return body
    if encoding != "gzip":
        raise _Rejected(415, "UnsupportedContentEncoding", f"Content-Encoding '{encoding}' is not supported; use gzip.")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        payload = inflater.decompress(body, MAX_CALL_BYTES + 1)  # bounded: a small body may inflate enormously
    except zlib.error as error:
        raise _Rejected(400, "InvalidContentEncoding", f"The body is not valid gzip: {error}") from None
    if len(payload) > MAX_CALL_BYTES or inflater.unconsumed_tail:
        raise _too_large_rejection("Provided uncompressed content length exceeds it.")
    if not inflater.eof:
        raise _Rejected(400, "InvalidContentEncoding", "The gzip body is truncated.")
    return payload


def _records(payload: bytes) -> list[dict[str, Any]]:
    def reject_constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        records = json.loads(payload.decode("utf-8"), parse_constant=reject_constant)
    except (UnicodeDecodeError, ValueError) as error:
        raise _Rejected(400, "InvalidPayload", f"The body is not valid UTF-8 JSON: {error}") from None
    if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
        raise _Rejected(400, "InvalidPayload", "The body must be a JSON array of objects.")
    return records


def _too_large_message(detail: str) -> str:
    return f"Maximum allowed content length: {MAX_CALL_BYTES} bytes (1 MB). {detail}"


def _too_large(detail: str) -> Response:
    return _error(413, "ContentLengthLimitExceeded", _too_large_message(detail))


def _too_large_rejection(detail: str) -> _Rejected:
    return _Rejected(413, "ContentLengthLimitExceeded", _too_large_message(detail))


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response.json(
        status, {"error": {"code": code, "message": message}}, {"x-ms-error-code": code, **(headers or {})}
    )


def _fault(fault: Fault) -> Response:
    if fault.status == 429:
        code, message = (
            "TooManyRequests",
            "The request rate for this data collection rule is over its limit (sandbox fault).",
        )
    else:
        code, message = "ServiceUnavailable", "The service is temporarily unavailable (sandbox fault). Please retry."
    return _error(fault.status, code, message, retry_after_header(fault))


def gzip_json(payload: Any) -> bytes:
    """A gzip body as the SDK builds it (for tests that talk to the emulator without the SDK)."""
    return gzip.compress(json.dumps(payload).encode("utf-8"))
