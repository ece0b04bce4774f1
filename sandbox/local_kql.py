"""KQL run locally: duckdb-kql (KQL translated to DuckDB SQL) over the rows the Data Collector emulator stored.

Used by the Log Analytics query emulator, `make demo` and the query tests. It is not Kusto: duckdb-kql
1.1.2 implements much of KQL (where, project, extend, summarize with ``arg_max(..., *)``, join, let,
``ago``/``now``, ``bin``, ``countif``, ``iff`` ...) but not ``make-series`` nor ``column_ifexists``. Queries
that need those say so in their header (``local: no: ...``); this module refuses them with
:class:`LocalUnsupported` rather than pretending, and Microsoft's analyser still checks them.

Tables look like a Data Collector workspace: the standard columns plus the custom columns the emulator
created (a column exists once a record carried it), typed as the emulator typed them. A time range
filters ``TimeGenerated`` the way the query API's ``timespan`` does. The workspace functions of
``queries/functions/`` are registered as a workspace deployed with azure/functions.json has them.
"""

from __future__ import annotations

import functools
import json
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from typing import Any, Protocol

import duckdb
import duckdb_kql
from duckdb_kql.engine import schema as kql_schema
from duckdb_kql.stored_functions import ResolvedFunctions, parse_functions

from keyreport import queries
from sandbox.data_collector import parse_iso_datetime

ENGINE = f"duckdb-kql {version('duckdb-kql')}"
# DuckDB settings of every workspace: speed only, never results (tests/sandbox/test_local_kql.py runs the library
# with and without them and compares). DuckDB 2.0's projection_pullup optimizer pass grows much faster than the
# plan: the SQL of a query over KeyReport_Findings (its state functions expanded at every call, about 520 kB) spent
# 69 of its 84 s there and runs in 13 s without it (profiled, compliance-summary, 4 runs of 120 keys, busy 2 cores).
# An optimizer pass rewrites a plan into an equivalent one: turning one off changes the plan, not the rows.
# One thread: the test rows are small (planning is the cost) and a tie (KeyReport_CurrentRuns' arg_max(RunTime, ...)
# between two runs of an account in the same second) is then broken the same way at every expansion of a function
# in one query. With two threads and the new plan, test_state_model's same-second case failed 1 run in 3 (the
# expansions chose different runs); with the defaults it passed by the plan's luck. A query that needs a tie broken
# one way must break it itself (reported); this keeps the local engine repeatable meanwhile.
ENGINE_SETTINGS = ("SET disabled_optimizers = 'projection_pullup'", "SET threads = 1")
# Every Data Collector table has these besides its custom columns.
STANDARD_COLUMNS: dict[str, str] = {
    "TenantId": "string",
    "SourceSystem": "string",
    "TimeGenerated": "datetime",
    "Type": "string",
    "_ResourceId": "string",
}
_DUCK_TYPES = {"string": "VARCHAR", "real": "DOUBLE", "bool": "BOOLEAN", "datetime": "TIMESTAMP", "guid": "UUID"}
# DuckDB result type -> Log Analytics column type, as the query API reports it.
_KUSTO_TYPES = {
    "VARCHAR": "string",
    "DOUBLE": "real",
    "FLOAT": "real",
    "BIGINT": "long",
    "HUGEINT": "long",
    "INTEGER": "int",
    "SMALLINT": "int",
    "TINYINT": "int",
    "BOOLEAN": "bool",
    "TIMESTAMP": "datetime",
    "TIMESTAMP WITH TIME ZONE": "datetime",
    "DATE": "datetime",
    "INTERVAL": "timespan",
    "UUID": "guid",
    "JSON": "dynamic",
}


class RowStore(Protocol):
    """What the ingestion emulators offer for reading back: DataCollectorEmulator, LogsIngestionEmulator."""

    def tables(self) -> dict[str, int]: ...

    def columns(self, table: str) -> dict[str, str]: ...

    def rows(self, table: str) -> list[dict[str, Any]]: ...


class LocalQueryError(Exception):
    """The query is wrong (syntax, unknown table or column) as far as the local engine can tell."""


class LocalSyntaxError(LocalQueryError):
    """The query does not parse."""


class LocalUnsupported(LocalQueryError):
    """The query uses KQL that duckdb-kql does not implement; Kusto would run it."""


@dataclass(frozen=True)
class TimeRange:
    """[start, end]: the rows whose TimeGenerated falls in it are visible to the query."""

    start: datetime
    end: datetime

    @classmethod
    def last(cls, duration: timedelta, now: datetime | None = None) -> TimeRange:
        end = now or datetime.now(UTC)
        return cls(end - duration, end)

    def holds(self, moment: datetime) -> bool:
        return self.start <= moment <= self.end


@dataclass(frozen=True)
class StoredTable:
    name: str
    columns: Mapping[str, str]  # custom column -> Log Analytics type
    rows: Sequence[Mapping[str, Any]]  # as stored: datetimes are ISO 8601 strings


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # Log Analytics type: string, real, long, int, bool, datetime, timespan, guid, dynamic


@dataclass(frozen=True)
class ResultTable:
    columns: tuple[Column, ...]
    rows: tuple[tuple[Any, ...], ...]  # Python values: str, float, int, bool, datetime (UTC), UUID, None
    name: str = "PrimaryResult"

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.column_names, row, strict=True)) for row in self.rows]

    def json_rows(self) -> list[list[Any]]:
        """The rows as the query API sends them (ISO 8601 datetimes, timespans as d.hh:mm:ss)."""
        return [[_json_value(value) for value in row] for row in self.rows]


class LocalWorkspace:
    """A snapshot of stored tables, loaded once into an in-memory DuckDB; queries run one at a time.

    The rows sit in the `stored` schema; before each query, a view per table with the rows of the time
    range takes the table's own name, which is what the query sees.
    """

    def __init__(self, tables: Iterable[StoredTable], functions: Sequence[str] | None = None) -> None:
        self.tables = {table.name: table for table in tables}
        self.functions = list(deployed_functions() if functions is None else functions)
        self._parsed_functions = _parsed(tuple(self.functions))
        # What a query's SQL depends on besides its text and now(): the functions and the tables' columns.
        self._signature = (
            tuple(self.functions),
            tuple((name, tuple({**STANDARD_COLUMNS, **self.tables[name].columns}.items())) for name in self.tables),
        )
        self._lock = threading.Lock()
        self._connection = duckdb.connect(":memory:")
        self._connection.execute("SET TimeZone='UTC'")
        for setting in ENGINE_SETTINGS:
            self._connection.execute(setting)
        self._connection.execute("CREATE SCHEMA stored")
        for table in self.tables.values():
            _load(self._connection, table)

    @classmethod
    def from_stores(cls, *stores: RowStore) -> LocalWorkspace:
        """The tables of one workspace fed by several ingestion emulators (Data Collector, Logs Ingestion)."""
        columns: dict[str, dict[str, str]] = {}
        rows: dict[str, list[Mapping[str, Any]]] = {}
        for store in stores:
            for name in store.tables():
                columns.setdefault(name, {}).update(store.columns(name))
                rows.setdefault(name, []).extend(store.rows(name))
        return cls(StoredTable(name, columns[name], rows[name]) for name in columns)

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def run(self, query: str, *, time_range: TimeRange | None = None, now: datetime | None = None) -> ResultTable:
        """Run `query` over the rows in `time_range` (all rows when None); `now` fixes now()/ago()."""
        with self._lock:
            connection = self._connection
            for name in self.tables:
                connection.execute(f'CREATE OR REPLACE TEMP VIEW "{name}" AS {_visible(name, time_range)}')
            try:
                sql, parameters = self._translated(query, _naive(now))
                relation = connection.sql(sql, params=parameters) if parameters else connection.sql(sql)
                rows = relation.fetchall()
            except duckdb_kql.KqlUnsupportedError as error:
                raise LocalUnsupported(f"{ENGINE} cannot run this query: {error}") from None
            except duckdb_kql.KqlSyntaxError as error:
                raise LocalSyntaxError(f"{ENGINE}: {error}") from None
            except (duckdb_kql.KqlError, duckdb.Error) as error:
                raise LocalQueryError(f"{ENGINE}: {error}") from None
            names, kinds = relation.columns, relation.types
        columns = tuple(Column(name, _kusto_type(str(kind))) for name, kind in zip(names, kinds, strict=True))
        return ResultTable(columns, tuple(tuple(_python_value(value) for value in row) for row in rows))

    def _translated(self, query: str, now: datetime | None) -> tuple[str, dict[str, Any]]:
        """The query's SQL and parameters (what duckdb_kql.kql runs), translated once per process for the same
        text, now(), functions and columns: the translation of a query over the state functions takes a few
        tenths of a second, as long as DuckDB takes to run it on a test's rows."""
        key = (query, now, self._signature)
        cached = _TRANSLATIONS.get(key)
        if cached is None:
            translated = duckdb_kql.to_sql(
                query,
                schema=kql_schema(self._connection),
                allow_write=False,
                query_now=now,
                functions={database: dict(found) for database, found in self._parsed_functions.items()},
            )
            if translated.unbound:
                raise LocalQueryError(f"{ENGINE}: query parameters without a value: {', '.join(translated.unbound)}")
            cached = (str(translated), dict(translated.parameters))
            if len(_TRANSLATIONS) >= 256:  # workspaces of other threads may share it: at worst one translates again
                _TRANSLATIONS.clear()
            _TRANSLATIONS[key] = cached
        sql, parameters = cached
        return sql, dict(parameters)


_TRANSLATIONS: dict[tuple[Any, ...], tuple[str, dict[str, Any]]] = {}


def deployed_functions() -> list[str]:
    """The shipped workspace functions, as definitions duckdb-kql registers (`function Name() { body }`)."""
    return [function.definition() for function in queries.functions().values()]


@functools.lru_cache(maxsize=8)
def _parsed(definitions: tuple[str, ...]) -> ResolvedFunctions:
    """The definitions parsed once per process: duckdb-kql's parser takes about 0.1 s per function, which was
    most of each query's time when every run parsed all of them again."""
    return parse_functions(list(definitions)) or {}


def _visible(name: str, time_range: TimeRange | None) -> str:
    select = f'SELECT * FROM stored."{name}"'
    if time_range is None:
        return select
    start, end = (_utc_naive(moment).isoformat(sep=" ") for moment in (time_range.start, time_range.end))
    return f"{select} WHERE \"TimeGenerated\" BETWEEN TIMESTAMP '{start}' AND TIMESTAMP '{end}'"


def _load(connection: duckdb.DuckDBPyConnection, table: StoredTable) -> None:
    columns = {**STANDARD_COLUMNS, **table.columns}
    definition = ", ".join(f'"{name}" {_DUCK_TYPES[kind]}' for name, kind in columns.items())
    connection.execute(f'CREATE TABLE stored."{table.name}" ({definition})')
    if not table.rows:
        return
    # Column-wise through unnest(): executemany() costs milliseconds per row.
    values = [[_stored_value(row.get(name), kind) for row in table.rows] for name, kind in columns.items()]
    unnested = ", ".join(
        f"unnest(CAST(${index} AS {_DUCK_TYPES[kind]}[]))" for index, kind in enumerate(columns.values(), start=1)
    )
    connection.execute(f'INSERT INTO stored."{table.name}" SELECT {unnested}', values)


def _stored_value(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "datetime":
        return _naive(parse_iso_datetime(str(value)))
    if kind == "guid":
        return str(uuid.UUID(str(value)))
    return value


def _utc_naive(moment: datetime) -> datetime:
    """DuckDB TIMESTAMP is naive; the engine's clock and every stored time are UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _naive(moment: datetime | None) -> datetime | None:
    return None if moment is None else _utc_naive(moment)


def _kusto_type(duck_type: str) -> str:
    if duck_type.endswith("[]") or duck_type.startswith(("STRUCT", "MAP")):
        return "dynamic"
    if duck_type.startswith("DECIMAL"):
        return "decimal"
    return _KUSTO_TYPES.get(duck_type, "string")


def _python_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        text = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return text + (f".{value.microsecond:06d}0Z" if value.microsecond else "Z")
    if isinstance(value, timedelta):
        return format_timespan(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


def format_timespan(value: timedelta) -> str:
    """Kusto's timespan text: [-][d.]hh:mm:ss[.fffffff]."""
    sign = "-" if value < timedelta(0) else ""
    total = abs(value)
    days, seconds = total.days, total.seconds
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{sign}{f'{days}.' if days else ''}{hours:02d}:{minutes:02d}:{seconds:02d}"
    return text + (f".{total.microseconds:06d}0" if total.microseconds else "")
