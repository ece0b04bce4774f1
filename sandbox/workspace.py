"""What both ingestion emulators share: a workspace's stored rows and the loopback read-back API."""

from __future__ import annotations

import threading
from typing import Any

from sandbox.https import Request, Response


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
