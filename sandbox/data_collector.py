"""Azure Monitor HTTP Data Collector API emulator (``POST /api/logs?api-version=2016-04-01``).

Strict where the documentation is explicit (learn.microsoft.com, "Send log data to Azure Monitor by
using the HTTP Data Collector API"):

* ``Authorization: SharedKey {workspace}:{base64 HMAC-SHA256}`` over
  ``POST\\n{Content-Length}\\n{Content-Type}\\nx-ms-date:{x-ms-date}\\n/api/logs`` with the base64-decoded
  workspace key. The Content-Type *as sent* is signed, so ``application/json; charset=utf-8`` signed as
  ``application/json`` fails with 403, as Azure does.
* ``x-ms-date`` in RFC 1123 form, within :data:`CLOCK_SKEW` of the emulator's clock (the docs give no
  figure; 15 minutes is Azure's usual SharedKey tolerance).
* Log-Type: letters, digits and underscore, at most 100 characters; table = ``{Log-Type}_CL``.
* Body: a JSON object or an array of objects, at most :data:`MAX_POST_BYTES` ("30 MB", read as the
  stricter decimal value); bigger posts get 404 ("the request is too large"). An empty array, signed like
  any other post, answers 200 and creates no row and no table: the healthcheck other shippers send
  (Vector's azure_monitor_logs sink posts ``[]`` and expects success), and what ``keyreport check`` sends.
* Property names: letters, digits and underscore; ``tenant``, ``TimeGenerated`` and ``RawData`` are
  reserved (error); column names at most 45 characters (suffix included); at most 500 columns;
  string values over 32 KB are truncated.
* Column types by suffix: bool ``_b``, number ``_d``, GUID-looking string (dashes or not) ``_g``,
  ISO 8601 date-time string ``_t``, other string or nested JSON ``_s``; nulls dropped. A value that
  does not fit a property's existing column (only strings convert) makes a new suffixed column.
* ``time-generated-field``: TimeGenerated = that field when it is an ISO 8601 date-time no more than 2
  days old and 1 day ahead; otherwise the ingestion time (:func:`sandbox.workspace.time_generated`, the rule
  both ingestion emulators share). The field itself is stored unchanged.

Error bodies are ``{"Error": code, "Message": text}`` with the documented codes; success is 200, empty.
``GET /_sandbox/tables[/{table}]`` reads the stored rows back (no auth; the server is loopback-only).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.https import Fault, HttpsEmulator, Request, Response, retry_after_header
from sandbox.tls import LocalCA
from sandbox.workspace import WorkspaceTables, time_generated

API_VERSION = "2016-04-01"
MAX_POST_BYTES = 30_000_000
MAX_FIELD_BYTES = 32 * 1024
MAX_COLUMNS = 500
MAX_COLUMN_NAME = 45
MAX_LOG_TYPE = 100
CLOCK_SKEW = timedelta(minutes=15)
RESERVED = frozenset({"tenant", "timegenerated", "rawdata"})
TYPE_NAMES = {"s": "string", "b": "bool", "d": "real", "t": "datetime", "g": "guid"}

_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_SHARED_KEY = re.compile(r"^SharedKey ([^:\s]+):(\S+)$")
_RFC1123 = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{1,2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"(\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$"
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_GUID = re.compile(r"^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$", re.IGNORECASE)
_DATETIME = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)(\.\d{1,7})?(Z|[+-]\d{2}:?\d{2})?$", re.IGNORECASE)
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$")


class _Rejected(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Post:
    """An accepted post, for assertions: what arrived and what was made of it."""

    log_type: str
    table: str
    headers: dict[str, str]
    body_bytes: int
    records: int
    truncated_fields: int  # string values cut to 32 KB
    time_generated_fallbacks: int  # records whose time-generated-field was unusable
    received: datetime


def signature(shared_key_b64: str, date: str, content_length: int, content_type: str = "application/json") -> str:
    """The documented SharedKey signature (what the emulator expects for these inputs)."""
    string_to_sign = f"POST\n{content_length}\n{content_type}\nx-ms-date:{date}\n/api/logs"
    digest = hmac.new(base64.b64decode(shared_key_b64), string_to_sign.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def parse_rfc1123(value: str) -> datetime | None:
    match = _RFC1123.fullmatch(value)
    if not match:
        return None
    weekday, day, month, year, hour, minute, second = match.groups()
    try:
        moment = datetime(
            int(year), _MONTHS.index(month) + 1, int(day), int(hour), int(minute), int(second), tzinfo=UTC
        )
    except ValueError:
        return None
    return moment if _DAYS[moment.weekday()] == weekday else None  # .NET rejects a wrong weekday too


def parse_iso_datetime(value: str) -> datetime | None:
    match = _DATETIME.fullmatch(value)
    if not match:
        return None
    base, fraction, zone = match.groups()
    text = base + (fraction or "")  # fromisoformat truncates digits beyond microseconds
    if zone:
        text += "+00:00" if zone.upper() == "Z" else zone
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_datetime(moment: datetime) -> str:
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def _truncate(text: str) -> tuple[str, bool]:
    encoded = text.encode("utf-8")
    if len(encoded) <= MAX_FIELD_BYTES:
        return text, False
    return encoded[:MAX_FIELD_BYTES].decode("utf-8", errors="ignore"), True


def infer(value: Any) -> tuple[str, Any]:
    """The suffix Azure gives a new column for ``value``, and the value as stored (before truncation)."""
    if isinstance(value, bool):
        return "b", value
    if isinstance(value, int | float):
        return "d", float(value)
    if isinstance(value, str):
        if _GUID.fullmatch(value):
            return "g", str(uuid.UUID(value))
        moment = parse_iso_datetime(value)
        if moment is not None:
            return "t", format_datetime(moment)
        return "s", value
    return "s", json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def convert(value: Any, suffix: str) -> tuple[bool, Any]:
    """Whether ``value`` fits an existing column of type ``suffix``; only strings convert, as documented."""
    inferred, stored = infer(value)
    if inferred == suffix:
        return True, stored
    if not isinstance(value, str):
        return False, None
    if suffix == "s":
        return True, value
    if suffix == "d" and _NUMBER.fullmatch(value):
        return True, float(value)
    if suffix == "b" and value.lower() in ("true", "false"):
        return True, value.lower() == "true"
    return False, None  # g and t were tried by infer()


#: What a retired endpoint answers, in the shapes a switched-off service takes. Microsoft documents none (its
#: notices say the API "will no longer be functional" after 2026-09-14, later that ingestion continues for
#: TLS 1.2 clients): each is distinct from the documented answer to a wrong key, 403 ``InvalidAuthorization``.
RETIRED_ANSWERS: dict[str, Response] = {
    "gone": Response(410, b"The HTTP Data Collector API has been retired.", {"Content-Type": "text/plain"}),
    "forbidden": Response(403, b"<html><body>403 Forbidden</body></html>", {"Content-Type": "text/html"}),
    "not-found": Response(404),
}


class DataCollectorEmulator(HttpsEmulator, WorkspaceTables):
    """One workspace; ``fail_next`` applies to ``POST /api/logs`` before any check (429 has an empty body,
    as documented; 500 ``UnspecifiedError``, 503 ``ServiceUnavailable``). ``clock`` is the service's clock."""

    max_body_bytes = MAX_POST_BYTES

    def __init__(
        self,
        ca: LocalCA,
        workspace_id: str,
        shared_key_b64: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(ca)
        self.workspace_id = workspace_id
        self._key = _decode_key(shared_key_b64)
        self.shared_key = shared_key_b64
        self.clock = clock
        WorkspaceTables.__init__(self)
        self._schemas: dict[str, dict[str, str]] = {}  # table -> column -> suffix, in creation order
        self._posts: list[Post] = []
        self._retired: Response | None = None

    # -- test-facing API -----------------------------------------------------------------------------
    def set_key(self, shared_key_b64: str) -> None:
        """Rotate the workspace key: requests signed with the old one now get 403."""
        key = _decode_key(shared_key_b64)
        with self._lock:
            self._key, self.shared_key = key, shared_key_b64

    def retire(self, answer: str | None = "gone") -> None:
        """Answer every POST as a retired endpoint might (RETIRED_ANSWERS), or as a working one again (None)."""
        with self._lock:
            self._retired = None if answer is None else RETIRED_ANSWERS[answer]

    def columns(self, table: str) -> dict[str, str]:
        """Custom columns of ``table`` and their types (string, bool, real, datetime, guid)."""
        with self._lock:
            return {name: TYPE_NAMES[suffix] for name, suffix in self._schemas.get(table, {}).items()}

    @property
    def posts(self) -> list[Post]:
        with self._lock:
            return list(self._posts)

    # -- HTTP ----------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if request.method == "GET" and request.path.startswith("/_sandbox/"):
            return self._read_back(request)
        if request.method != "POST" or request.path != "/api/logs":
            return Response(404)  # documented: "the provided URL is incorrect"
        fault = self.take_fault()
        if fault is not None:
            return self.raw_fault(fault) or _fault(fault)
        with self._lock:
            retired = self._retired
        if retired is not None:
            return retired
        try:
            self._ingest(request)
        except _Rejected as rejected:
            return Response.json(rejected.status, {"Error": rejected.code, "Message": rejected.message})
        return Response(200)

    def oversized(self, request: Request) -> Response:
        return Response(404)  # documented: 404 when "the request is too large"

    def _ingest(self, request: Request) -> None:
        api_version = request.param("api-version")
        if not api_version:
            raise _Rejected(400, "MissingApiVersion", "The API version was not specified.")
        if api_version != API_VERSION:
            raise _Rejected(400, "InvalidApiVersion", f"The API version '{api_version}' is not recognized.")
        content_type = request.header("Content-Type")
        if not content_type:
            raise _Rejected(400, "MissingContentType", "The content type was not specified.")
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise _Rejected(400, "UnsupportedContentType", f"The content type '{content_type}' is not supported.")
        log_type = request.header("Log-Type")
        if not log_type:
            raise _Rejected(400, "MissingLogType", "The required value log type was not specified.")
        if len(log_type) > MAX_LOG_TYPE or not _NAME.fullmatch(log_type):
            raise _Rejected(
                400, "InvalidLogType", "Log-Type may contain only letters, digits and '_', up to 100 characters."
            )
        received = self.clock()
        self._authorize(request, content_type, received)
        records = _records(request.body)
        self._store(request, log_type, records, received)

    def _authorize(self, request: Request, content_type: str, now: datetime) -> None:
        header = request.header("Authorization")
        if not header:
            raise _Rejected(403, "InvalidAuthorization", "No Authorization header was specified")
        match = _SHARED_KEY.fullmatch(header)
        if not match:
            raise _Rejected(403, "InvalidAuthorization", "An invalid scheme was specified in the Authorization header")
        workspace_id, presented = match.groups()
        if workspace_id.lower() != self.workspace_id.lower():
            raise _Rejected(
                403, "InvalidAuthorization", "An invalid workspace id was specified in the Authorization header"
            )
        date = request.header("x-ms-date")
        if not date:
            raise _Rejected(403, "InvalidAuthorization", "The x-ms-date header was not specified.")
        moment = parse_rfc1123(date)
        if moment is None:
            raise _Rejected(403, "InvalidAuthorization", "An invalid date format used in the x-ms-date header.")
        with self._lock:
            key = self._key
        string_to_sign = f"{request.method}\n{request.content_length}\n{content_type}\nx-ms-date:{date}\n/api/logs"
        expected = base64.b64encode(hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(expected.encode(), presented.encode()):
            raise _Rejected(
                403, "InvalidAuthorization", "An invalid signature was specified in the Authorization header"
            )
        if abs(now - moment) > CLOCK_SKEW:
            raise _Rejected(
                403, "InvalidAuthorization", f"The x-ms-date header ({date}) is too far from the service time."
            )

    def _store(self, request: Request, log_type: str, records: list[dict[str, Any]], received: datetime) -> None:
        table = f"{log_type}_CL"
        time_field = request.header("time-generated-field") or None  # the samples send "" to mean none
        resource_id = request.header("x-ms-AzureResourceId") or None
        truncated = fallbacks = 0
        with self._lock:
            schema = dict(self._schemas.get(table, {}))
            rows = []
            for record in records:
                row: dict[str, Any] = {}
                for name, value in record.items():
                    if value is None:
                        continue  # null properties are dropped
                    column, stored = _place(schema, name, value)
                    if isinstance(stored, str):
                        stored, cut = _truncate(stored)
                        truncated += cut
                    row[column] = stored
                supplied = _time_field(record, time_field)
                generated = time_generated(supplied, received)
                fallbacks += time_field is not None and generated != supplied
                standard: dict[str, Any] = {
                    "TenantId": self.workspace_id,
                    "SourceSystem": "RestAPI",
                    "TimeGenerated": format_datetime(generated),
                    "Type": table,
                }
                if resource_id:
                    standard["_ResourceId"] = resource_id
                rows.append({**standard, **row})
            if len(schema) > MAX_COLUMNS:
                raise _Rejected(
                    400, "InvalidDataFormat", f"Table {table} would have {len(schema)} columns; the limit is 500."
                )
            self._schemas[table] = schema
            self._append_rows(table, rows)
            self._posts.append(
                Post(
                    log_type,
                    table,
                    request.header_items(),
                    len(request.body),
                    len(records),
                    truncated,
                    fallbacks,
                    received,
                )
            )


def _decode_key(shared_key_b64: str) -> bytes:
    try:
        return base64.b64decode(shared_key_b64, validate=True)
    except binascii.Error:
        raise ValueError("the workspace key must be base64") from None


def _records(body: bytes) -> list[dict[str, Any]]:
    def reject_constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        payload = json.loads(body.decode("utf-8"), parse_constant=reject_constant)
    except (UnicodeDecodeError, ValueError) as error:
        raise _Rejected(400, "InvalidDataFormat", f"An invalid JSON was submitted: {error}") from None
    records = [payload] if isinstance(payload, dict) else payload
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise _Rejected(400, "InvalidDataFormat", "The body must be a JSON object or an array of objects.")
    return records


def _place(schema: dict[str, str], name: str, value: Any) -> tuple[str, Any]:
    """The column ``value`` of property ``name`` goes to (creating it in ``schema`` if needed)."""
    if not _NAME.fullmatch(name):
        raise _Rejected(400, "InvalidDataFormat", f"Property name '{name}' may contain only letters, digits and '_'.")
    if name.lower() in RESERVED:
        raise _Rejected(400, "InvalidDataFormat", f"'{name}' is a reserved property name.")
    inferred, stored = infer(value)
    existing = [suffix for suffix in "sbdtg" if schema.get(f"{name}_{suffix}") == suffix]
    if inferred in existing:
        return f"{name}_{inferred}", stored
    for suffix in existing:
        fits, converted = convert(value, suffix)
        if fits:
            return f"{name}_{suffix}", converted
    column = f"{name}_{inferred}"
    if len(column) > MAX_COLUMN_NAME:
        raise _Rejected(400, "InvalidDataFormat", f"Column name '{column}' is longer than 45 characters.")
    schema[column] = inferred
    return column, stored


def _time_field(record: dict[str, Any], field: str | None) -> datetime | None:
    """The date-time in the record's ``time-generated-field``, if it has one."""
    value = record.get(field) if field is not None else None
    return parse_iso_datetime(value) if isinstance(value, str) else None


def _fault(fault: Fault) -> Response:
    headers = retry_after_header(fault)
    if fault.status == 429:
        return Response(429, b"", headers)  # documented without an error code
    code = "ServiceUnavailable" if fault.status == 503 else "UnspecifiedError"
    message = "The service encountered an error (sandbox fault). Please retry the request."
    return Response.json(fault.status, {"Error": code, "Message": message}, headers)
