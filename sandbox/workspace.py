"""What both ingestion emulators share: a workspace's stored rows, the loopback read-back API, and the rule by
which Log Analytics sets a row's TimeGenerated."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

from sandbox.https import Request, Response

# Microsoft documents one window for both ingestion APIs. Data Collector API (learn.microsoft.com,
# azure-monitor/logs/data-collector-api, header `time-generated-field`): "The Time Generated value cannot be
# older than 2 days before received time or more than a day in the future. In such case, the time that the
# message is ingested will be used." Every table, DCR-based ones (Logs Ingestion API) included
# (azure-monitor/logs/log-standard-columns#timegenerated): "The TimeGenerated value cannot be older than 2 days
# before received time or more than a day in the future. If in some situation, the value is older than 2 days
# or more than a day in the future, it would be replaced with the actual received time."
TIME_GENERATED_PAST = timedelta(days=2)
TIME_GENERATED_FUTURE = timedelta(days=1)


def time_generated(supplied: datetime | None, received: datetime) -> datetime:
    """The TimeGenerated Log Analytics stores for a record that supplied ``supplied`` (None: none, or not a
    date-time) and was ingested at ``received``: its own time within [received - 2 days, received + 1 day],
    else the ingestion time. So a batch replayed days late arrives looking new; its other columns (the run's
    loggedDate) are untouched."""
    if supplied is None or not received - TIME_GENERATED_PAST <= supplied <= received + TIME_GENERATED_FUTURE:
        return received
    return supplied


class WorkspaceTables:
    """Rows per table, guarded by one lock; `GET /_sandbox/tables[/NAME]` reads them back (loopback only)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tables: dict[str, list[dict[str, Any]]] = {}

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Stored rows of ``table`` (e.g. ``AWS_Access_Key_Report_CL``), oldest first."""
        with self._lock:
            return [dict(row) for row in self._tables.get(table, [])]

    def tables(self) -> dict[str, int]:
        with self._lock:
            return {name: len(rows) for name, rows in self._tables.items()}

    def _append_rows(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Callers hold ``self._lock``: storing is part of their own atomic ingestion step.

        No rows create no table: an empty upload (a healthcheck) leaves the workspace as it was."""
        if rows:
            self._tables.setdefault(table, []).extend(rows)

    def _read_back(self, request: Request) -> Response:
        if request.client_host not in ("127.0.0.1", "::1"):
            return Response.json(403, {"error": "the read-back API is for loopback clients only"})
        parts = request.path.strip("/").split("/")
        if parts == ["_sandbox", "tables"]:
            return Response.json(200, {"tables": self.tables()})
        if len(parts) == 3 and parts[:2] == ["_sandbox", "tables"]:
            with self._lock:
                known = parts[2] in self._tables
            if not known:
                return Response.json(404, {"error": f"no table {parts[2]}"})
            return Response.json(200, self.rows(parts[2]))
        return Response(404)
