"""Azure Monitor Log Analytics query API emulator: ``POST /v1/workspaces/{workspaceId}/query``.

It answers from what the ingestion emulators (Data Collector, Logs Ingestion) stored, evaluating the KQL with duckdb-kql
(:mod:`sandbox.local_kql`): no canned answers. Strict where the service is:

* ``Authorization: Bearer`` with a token the Entra emulator issued for the query API's audience
  (``https://api.loganalytics.io`` by default, what LogsQueryClient asks for in the public cloud) and
  the tenant; 401 ``AuthorizationRequiredError`` / ``InvalidTokenError`` otherwise; an app refused with
  :meth:`LogsQueryEmulator.forbid` gets 403 ``InsufficientAccessError``.
* The workspace id in the path must be this workspace's (404 ``WorkspaceNotFoundError``).
* Body: JSON with ``query`` and optionally ``timespan`` (ISO 8601: a duration ending now, ``start/end``
  or ``start/duration``), which limits the rows by ``TimeGenerated``.
* 200 ``{"tables": [{"name": "PrimaryResult", "columns": [{"name", "type"}], "rows": [[...]]}]}``. A
  result over :attr:`LogsQueryEmulator.max_rows` rows is cut there and the answer carries a
  ``PartialError``, as the service does when a result exceeds its record limit (500,000).
* A query the service would reject gets 400 ``BadArgumentError`` with a ``SyntaxError`` /
  ``SemanticError`` inner error. KQL that duckdb-kql cannot run (``make-series``, ``column_ifexists``)
  gets 400 with the inner code ``SandboxUnsupported``: the real service would run it, the sandbox says so.

``fail_next`` applies to the query endpoint before authentication.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.entra import EntraEmulator, TokenError
from sandbox.https import Fault, HttpsEmulator, Request, Response, retry_after_header
from sandbox.local_kql import (
    LocalQueryError,
    LocalSyntaxError,
    LocalUnsupported,
    LocalWorkspace,
    RowStore,
    TimeRange,
)
from sandbox.tls import LocalCA

PUBLIC_AUDIENCE = "https://api.loganalytics.io"
SERVICE_RECORD_LIMIT = 500_000
_DURATION = re.compile(
    r"^P(?:(?P<days>\d+(?:\.\d+)?)D)?(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


class _Rejected(Exception):
    def __init__(self, status: int, payload: dict[str, Any]) -> None:
        super().__init__(payload["error"]["message"])
        self.status, self.payload = status, payload


class LogsQueryEmulator(HttpsEmulator):
    """One workspace, reading the tables of ``stores``; tokens from ``entra`` for ``tenant_id``."""

    max_body_bytes = 1024 * 1024

    def __init__(
        self,
        ca: LocalCA,
        entra: EntraEmulator,
        tenant_id: str,
        workspace_id: str,
        stores: Sequence[RowStore],
        *,
        audience: str = PUBLIC_AUDIENCE,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(ca)
        self.entra = entra
        self.tenant_id = tenant_id
        self.workspace_id = workspace_id
        self.stores = tuple(stores)
        self.audience = audience
        self.clock = clock
        #: Rows a result may have before it is cut and reported as partial (the service's is 500,000).
        self.max_rows = SERVICE_RECORD_LIMIT
        self._lock = threading.Lock()
        self._forbidden: set[str] = set()
        self._snapshot: tuple[tuple[tuple[tuple[str, int], ...], ...], LocalWorkspace] | None = None
        self._queries: list[dict[str, Any]] = []

    # -- test-facing API -----------------------------------------------------------------------------
    def forbid(self, client_id: str) -> None:
        """Answer this app's queries with 403 (no Log Analytics Reader role on the workspace)."""
        with self._lock:
            self._forbidden.add(client_id)

    def allow(self, client_id: str) -> None:
        with self._lock:
            self._forbidden.discard(client_id)

    @property
    def queries(self) -> list[dict[str, Any]]:
        """The bodies of the queries that reached evaluation, oldest first."""
        with self._lock:
            return list(self._queries)

    # -- HTTP ----------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        if request.method != "POST" or len(parts) != 4 or parts[:2] != ["v1", "workspaces"] or parts[3] != "query":
            return _error(404, "PathNotFoundError", "The requested path does not exist")
        fault = self.take_fault()
        if fault is not None:
            return self.raw_fault(fault) or _fault(fault)
        try:
            claims = self._authenticate(request)
            if parts[2].lower() != self.workspace_id.lower():
                raise _Rejected(404, _payload("WorkspaceNotFoundError", f"Workspace {parts[2]} could not be found"))
            with self._lock:
                if claims.get("appid") in self._forbidden:
                    raise _Rejected(
                        403,
                        _payload(
                            "InsufficientAccessError",
                            "The provided credentials have insufficient access to perform the requested operation",
                        ),
                    )
            body = _body(request)
            return self._evaluate(body)
        except _Rejected as rejected:
            return Response.json(rejected.status, rejected.payload)

    def _authenticate(self, request: Request) -> dict[str, Any]:
        header = request.header("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _Rejected(401, _payload("AuthorizationRequiredError", "Valid authentication was not provided"))
        try:
            return self.entra.verify_token(token.strip(), self.audience, self.tenant_id)
        except TokenError as error:
            inner = {"code": f"{error.reason.capitalize()}ValidationFailedError", "message": str(error)}
            payload = _payload("InvalidTokenError", "The provided authentication is not valid for this resource")
            payload["error"]["innererror"] = inner
            raise _Rejected(401, payload) from None

    def _evaluate(self, body: dict[str, Any]) -> Response:
        time_range = _time_range(body.get("timespan"), self.clock())
        with self._lock:
            self._queries.append(body)
        try:
            result = self._workspace().run(body["query"], time_range=time_range)
        except LocalUnsupported as error:
            inner = _bad_argument("SandboxUnsupported", "The sandbox cannot run this query.", error)
            raise _Rejected(400, inner) from None
        except LocalSyntaxError as error:
            raise _Rejected(400, _bad_argument("SyntaxError", "A syntax error occurred.", error)) from None
        except LocalQueryError as error:
            raise _Rejected(400, _bad_argument("SemanticError", "A semantic error occurred.", error)) from None
        rows = result.json_rows()
        table = {
            "name": result.name,
            "columns": [{"name": column.name, "type": column.type} for column in result.columns],
            "rows": rows[: self.max_rows],
        }
        payload: dict[str, Any] = {"tables": [table]}
        if len(rows) > self.max_rows:
            payload["error"] = {
                "message": "Response contained partial results",
                "code": "PartialError",
                "correlationId": str(uuid.uuid4()),
                "details": [
                    {
                        "code": "EvaluationPartialResultsError",
                        "message": f"Query result set has exceeded the internal record count limit {self.max_rows} "
                        f"records; {len(rows) - self.max_rows} of {len(rows)} rows were left out.",
                    }
                ],
            }
        return Response.json(200, payload)

    def _workspace(self) -> LocalWorkspace:
        """A LocalWorkspace over the stored rows, rebuilt only when rows were added since."""
        sizes = tuple(tuple(sorted(store.tables().items())) for store in self.stores)
        with self._lock:
            if self._snapshot is not None and self._snapshot[0] == sizes:
                return self._snapshot[1]
        workspace = LocalWorkspace.from_stores(*self.stores)
        with self._lock:
            if self._snapshot is not None:
                self._snapshot[1].close()
            self._snapshot = (sizes, workspace)
        return workspace


def _body(request: Request) -> dict[str, Any]:
    content_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise _Rejected(415, _payload("UnsupportedMediaTypeError", "Content-Type must be application/json"))
    try:
        body = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise _Rejected(400, _bad_argument("QueryValidationError", "The body is not valid JSON.", error)) from None
    if not isinstance(body, dict) or not isinstance(body.get("query"), str) or not body["query"].strip():
        raise _Rejected(
            400, _bad_argument("QueryValidationError", "Required property 'query' not found in JSON.", None)
        )
    return body


def _time_range(timespan: Any, now: datetime) -> TimeRange | None:
    if timespan in (None, ""):
        return None
    try:
        first, _, second = str(timespan).partition("/")
        if not second:
            return TimeRange(now - parse_duration(first), now)
        start = _instant(first)
        end = start + parse_duration(second) if second.upper().startswith("P") else _instant(second)
    except ValueError as error:
        raise _Rejected(400, _bad_argument("QueryValidationError", f"Invalid timespan '{timespan}'.", error)) from None
    if end < start:
        raise _Rejected(400, _bad_argument("QueryValidationError", f"Invalid timespan '{timespan}'.", None))
    return TimeRange(start, end)


def parse_duration(text: str) -> timedelta:
    """ISO 8601 durations as LogsQueryClient sends them (``PT172800.0S``) or people write them (``P2D``)."""
    match = _DURATION.fullmatch(text.strip().upper())
    if not match or not any(match.groupdict().values()):
        raise ValueError(f"{text!r} is not an ISO 8601 duration")
    parts = {name: float(value or 0) for name, value in match.groupdict().items()}
    return timedelta(**parts)


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip())
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _payload(code: str, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "code": code, "correlationId": str(uuid.uuid4())}}


def _bad_argument(code: str, message: str, detail: Exception | None) -> dict[str, Any]:
    payload = _payload("BadArgumentError", "The request had some invalid properties")
    inner: dict[str, Any] = {"code": code, "message": message}
    if detail is not None:
        inner["innererror"] = {"code": code, "message": str(detail)}
    payload["error"]["innererror"] = inner
    return payload


def _error(status: int, code: str, message: str) -> Response:
    return Response.json(status, _payload(code, message))


def _fault(fault: Fault) -> Response:
    if fault.status == 429:
        code, message = "ThrottledError", "Your request was throttled, retry later."
    else:
        code, message = "ServiceError", "The service is temporarily unavailable (sandbox fault)."
    response = _error(fault.status, code, message)
    return Response(response.status, response.body, {**response.headers, **retry_after_header(fault)})
