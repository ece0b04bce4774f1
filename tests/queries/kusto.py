"""Python side of kql_check.js: Microsoft's Kusto analyser over many queries in one node process."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from keyreport import queries as library
from tests import schema

HERE = Path(__file__).resolve().parent
CHECKER = HERE / "kql_check.js"
NODE_MODULES = HERE / "node_modules" / "@kusto" / "language-service-next"


@dataclass(frozen=True)
class Diagnostic:
    severity: str
    code: str
    message: str
    start: int
    length: int

    def where(self, text: str) -> str:
        """`line L, column C` of the diagnostic's start in `text` (both 1-based)."""
        before = text[: self.start]
        line = before.count("\n") + 1
        column = self.start - (before.rfind("\n") + 1) + 1
        return f"line {line}, column {column}"


@dataclass(frozen=True)
class Analysis:
    id: str
    text: str
    diagnostics: tuple[Diagnostic, ...]
    columns: tuple[tuple[str, str], ...]  # the result's columns and Kusto types

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == "Error")

    def error_report(self) -> str:
        """One line per Error diagnostic: query id, position and message."""
        return "\n".join(
            f"{self.id}: {d.where(self.text)} (offset {d.start}): {d.code} {d.message} "
            f"near {self.text[d.start : d.start + max(d.length, 1)]!r}"
            for d in self.errors
        )

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]


def declared_tables() -> dict[str, list[tuple[str, str]]]:
    """keyreport's tables as queries/schema.json declares them, TimeGenerated included, and the tables other
    connectors fill that queries join (AWSCloudTrail, queries/cloudtrail.json)."""
    tables = {**schema.tables(), **schema.external_tables()}
    return {name: [(c["name"], c["type"]) for c in columns] for name, columns in tables.items()}


def declared_functions() -> dict[str, str]:
    """The workspace functions (queries/functions/*.kql) by name: their bodies, as deployed."""
    return {function.id: function.text for function in library.functions().values()}


# A function as kql_check.js declares it: its body (no parameters), or {"parameters": "(name:type)", "body": ...}.
Declaration = str | dict[str, str]


def analyse(
    queries: dict[str, str],
    functions: Mapping[str, Declaration] | None = None,
    tables: Mapping[str, list[tuple[str, str]]] | None = None,
) -> dict[str, Analysis]:
    """Parse and analyse every query (id -> text) against the declared tables and functions, in one node process.

    `functions` defaults to the shipped ones, so that a query calling `KeyReport_CurrentKeys()` resolves; `tables`
    adds tables to the declared ones (Sentinel's Watchlist: tests/queries/sentinel.py).
    """
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not on PATH: the KQL check needs Node.js 18+")
    if not NODE_MODULES.is_dir():
        raise RuntimeError(f"{NODE_MODULES} is missing: run `make test` (it runs `npm ci` in tests/queries)")
    request = {
        "tables": {**declared_tables(), **(tables or {})},
        "functions": declared_functions() if functions is None else dict(functions),
        "queries": [{"id": name, "text": text} for name, text in queries.items()],
    }
    done = subprocess.run(
        [node, str(CHECKER)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=600,  # one node process for many queries: minutes on a loaded 2-core machine
        check=False,
        cwd=HERE,
    )
    if done.returncode != 0:
        raise RuntimeError(f"kql_check.js failed ({done.returncode}):\n{done.stderr}")
    answer = json.loads(done.stdout)
    return {
        result["id"]: Analysis(
            id=result["id"],
            text=queries[result["id"]],
            diagnostics=tuple(Diagnostic(**d) for d in result["diagnostics"]),
            columns=tuple((c["name"], c["type"]) for c in result["columns"]),
        )
        for result in answer["results"]
    }
