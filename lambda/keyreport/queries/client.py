"""Running a KQL query against the workspace: azure-monitor-query's LogsQueryClient, results as plain tables.

Queries go to the cloud's Log Analytics query endpoint (KEYREPORT_AZURE_CLOUD; KEYREPORT_LOGS_QUERY_ENDPOINT
overrides the host, e.g. for private link), with a token for the cloud's query audience. A partial result
is returned as partial, never passed off as complete.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError
from azure.monitor.query import LogsQueryClient, LogsQueryError, LogsQueryPartialResult, LogsTable

from keyreport.errors import first_line
from keyreport.queries.output import ResultTable
from keyreport.settings import QuerySettings
from keyreport.tls import trust_bundle

SERVER_TIMEOUT_SECONDS = 180  # the service's default; at most 600


@dataclass(frozen=True)
class Outcome:
    tables: list[ResultTable]
    partial_error: LogsQueryError | None = None


def logs_client(settings: QuerySettings, credential: TokenCredential) -> LogsQueryClient:
    """The client for the cloud's query API; the token audience stays the cloud's even when the host is overridden."""
    return LogsQueryClient(
        credential,
        endpoint=settings.logs_query_endpoint,
        audience=settings.azure.cloud.logs_query_endpoint,
        connection_verify=trust_bundle(settings.azure.ca_bundle),
    )


def execute(client: LogsQueryClient, workspace_id: str, text: str, timespan: timedelta, server_timeout: int) -> Outcome:
    response = client.query_workspace(workspace_id, text, timespan=timespan, server_timeout=server_timeout)
    if isinstance(response, LogsQueryPartialResult):
        return Outcome([_table(t) for t in response.partial_data or []], response.partial_error)
    return Outcome([_table(t) for t in response.tables])


def describe(error: HttpResponseError) -> str:
    """`status code: message` with the service's innermost message (what went wrong in the query)."""
    model = error.model
    if isinstance(model, LogsQueryError) and model.message:
        return f"{error.status_code} {model.code}: {model.message}"
    found = _service_error(error)
    if found is not None:
        return f"{error.status_code} {found[0]}: {found[1]}"
    return f"{error.status_code}: {first_line(error)}"


def function_hint(message: str) -> str:
    """What to do when the workspace does not know keyreport's functions (azure/functions.json not deployed)."""
    if re.search(r"resolve[^']*'KeyReport_\w+'", message):
        return "; the workspace lacks keyreport's functions: deploy azure/functions.json (see docs/queries.md)"
    return ""


def _service_error(error: HttpResponseError) -> tuple[str, str] | None:
    """(code, innermost message) from the body `{"error": {"code", "message", "innererror": ...}}`, if any."""
    try:
        body = json.loads(error.response.text()) if error.response is not None else None
    except ValueError:
        return None
    top = body.get("error") if isinstance(body, dict) else None
    if not isinstance(top, dict) or not top.get("code"):
        return None
    inner = top
    while isinstance(inner.get("innererror"), dict):
        inner = inner["innererror"]
    return str(top["code"]), str(inner.get("message") or top.get("message", ""))


def describe_partial(error: LogsQueryError) -> str:
    messages = [str(detail["message"]) for detail in details(error) if detail.get("message")]
    return "; ".join([f"{error.code}: {error.message}", *messages])


def details(error: LogsQueryError) -> list[dict[str, Any]]:
    """The error's details as plain dicts (the SDK gives its own mapping models)."""
    return [dict(detail) for detail in error.details or [] if isinstance(detail, Mapping)]


def _table(table: LogsTable) -> ResultTable:
    return ResultTable(
        table.name, tuple(table.columns), tuple(table.columns_types), tuple(tuple(row) for row in table.rows)
    )
