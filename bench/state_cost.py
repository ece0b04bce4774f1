"""What the current state costs: the rows each state function and each workbook tile touches, on duckdb-kql.

    python -m bench.state_cost --accounts 4 --users 250 --days 32 8 --compare main

Generates hourly runs of `--accounts` accounts of `--users` IAM users each over `--days` days (each figure
is one workspace, generated with DuckDB SQL straight into the stored tables, columns as queries/schema.json
declares them, rows in time order as Log Analytics stores them), then runs every function of
queries/functions that a query starts from and every workbook tile (queries/workbook.json, over the tile's
time range) under DuckDB's profiler. For each query it reports, per keyreport table:

- `emitted`: rows the table scans emitted (DuckDB, after the filters pushed into the scan: the time range,
  the query's own TimeGenerated predicates, and the join filters DuckDB derives from `RunId_g in (...)`);
- `read`: rows the scans read (DuckDB skips row groups of 122,880 rows whose TimeGenerated is out of range:
  about what Kusto's extent pruning by time does, at a coarser grain);
- `in_range`: for each scan of the table, every row of the table in the query's time range, summed: what
  Kusto reads when it prunes by the time range only and uses no index on RunId_g (an upper bound).

Each count is also given in account-hours of rows (the rows a table gains per account per hourly run) and
extrapolated linearly to `--target-accounts` accounts of `--target-users` users: a figure proportional to
the history grows with the hours in range, one proportional to the estate does not (compare two `--days`).
`--compare REF` also runs the functions as they are at git REF (the state before run-time snapshots).
Output: one JSON line per query and workspace, then a markdown table per workspace.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import duckdb_kql

from keyreport import queries
from keyreport.queries.catalogue import parse_function
from sandbox.local_kql import STANDARD_COLUMNS
from scripts import schema

ROOT = Path(__file__).resolve().parents[1]
WORKBOOK = ROOT / "queries" / "workbook.json"
TABLES = (schema.KEYS_TABLE, schema.USERS_TABLE, schema.RUNS_TABLE)
SHORT = {schema.KEYS_TABLE: "keys", schema.USERS_TABLE: "users", schema.RUNS_TABLE: "runs"}
# The functions a query starts from; the others (RunRows, KeyRows, UserRows ...) are their parts.
FUNCTIONS = (
    "KeyReport_CurrentRuns",
    "KeyReport_LatestRuns",
    "KeyReport_CurrentKeys",
    "KeyReport_CurrentUsers",
    "KeyReport_Findings",
    "KeyReport_Runs",
    "KeyReport_KeySnapshots",
    "KeyReport_FindingSnapshots",
)
FUNCTION_RANGE = timedelta(days=30)  # StateLookbackDays, and the timespan of most library queries
DUCK_TYPES = {"string": "VARCHAR", "real": "DOUBLE", "bool": "BOOLEAN", "datetime": "TIMESTAMP", "guid": "UUID"}
NOW = datetime(2026, 12, 1, 0, 30)  # naive UTC, as DuckDB stores it; the newest run started at 00:00
REREADS_PER_ACCOUNT_DAY = 4  # event-driven re-reads of one user (Scope user)


@dataclass(frozen=True)
class Estate:
    accounts: int
    users: int
    days: int

    @property
    def hours(self) -> int:
        return self.days * 24


@dataclass
class Measure:
    query: str
    kind: str  # function, tile, or function@REF
    time_range: str
    result_rows: int
    seconds: float
    scans: dict[str, int] = field(default_factory=dict)  # table -> scans
    emitted: dict[str, int] = field(default_factory=dict)
    read: dict[str, int] = field(default_factory=dict)
    in_range: dict[str, int] = field(default_factory=dict)
    error: str = ""
    digest: str = ""  # of the sorted result rows: a variant that gives the same rows has the same digest


# --- the workspace ---------------------------------------------------------------------------------------


def connect(estate: Estate) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB laid out as sandbox.local_kql.LocalWorkspace lays it out, holding `estate`'s runs."""
    connection = duckdb.connect(":memory:")
    connection.execute("SET TimeZone='UTC'")
    connection.execute("CREATE SCHEMA stored")
    for name, columns in schema.tables().items():
        declared = {**STANDARD_COLUMNS, **{c["name"]: c["type"] for c in columns if c["name"] != "TimeGenerated"}}
        definition = ", ".join(f'"{column}" {DUCK_TYPES[kind]}' for column, kind in declared.items())
        connection.execute(f'CREATE TABLE stored."{name}" ({definition})')
    generate(connection, estate)
    return connection


def generate(connection: duckdb.DuckDBPyConnection, estate: Estate) -> None:
    """Hourly account runs (and a few user re-reads a day) of every account, every row arrived but the
    newest run of the first account, whose key rows are half here (a run still arriving)."""
    now = NOW.isoformat(sep=" ")
    connection.execute(f"""
        CREATE TEMP TABLE runs AS
        SELECT a AS account, printf('%012d', 210000000000 + a) AS account_number,
               TIMESTAMP '{now}' - INTERVAL 30 MINUTE - to_hours(h) AS run_time,
               CAST(md5('account-' || a || '-' || h) AS UUID) AS run_id,
               'account' AS scope, CAST(NULL AS INTEGER) AS scope_user, h
        FROM range({estate.accounts}) t(a), range({estate.hours}) s(h)
        UNION ALL
        SELECT a, printf('%012d', 210000000000 + a), TIMESTAMP '{now}' - INTERVAL 30 MINUTE - to_hours(h)
               + INTERVAL 20 MINUTE, CAST(md5('user-' || a || '-' || h) AS UUID), 'user',
               CAST((h * 7919 + a * 31) % {estate.users} AS INTEGER), h
        FROM range({estate.accounts}) t(a), range({estate.hours}) s(h)
        WHERE h % {24 // REREADS_PER_ACCOUNT_DAY} = 3
    """)
    # One user i has (0, 1, 2, 1)[i % 4] keys: one key per user on average, as sandbox.estate seeds.
    connection.execute(f"""
        CREATE TEMP TABLE keyset AS
        SELECT u AS user_index, k FROM range({estate.users}) t(u), range(2) s(k)
        WHERE (u % 4 = 1 AND k = 0) OR (u % 4 = 2) OR (u % 4 = 3 AND k = 0)
    """)
    connection.execute(f"""
        INSERT INTO stored."{schema.KEYS_TABLE}" BY NAME
        SELECT r.run_time AS TimeGenerated, r.run_time AS loggedDate_t, r.account_number AS account_number_s,
               printf('user-%05d', k.user_index) AS user_s,
               printf('arn:aws:iam::%s:user/user-%05d', r.account_number, k.user_index) AS UserArn_s,
               printf('AKIA...%04d', k.user_index * 2 + k.k) AS AccessKeyId_s,
               md5(r.account_number || k.user_index || '-' || k.k) AS KeyFingerprint_s,
               CASE WHEN k.user_index % 10 = 7 AND k.k = 1 THEN 'Inactive' ELSE 'Active' END AS Status_s,
               TIMESTAMP '2026-01-01' - to_days((k.user_index * 37 + k.k * 200) % 400) AS CreateDate_t,
               CAST(date_diff('day', TIMESTAMP '2026-01-01' - to_days((k.user_index * 37 + k.k * 200) % 400),
                              r.run_time) AS DOUBLE) AS KeyAgeDays_d,
               CASE WHEN k.user_index % 9 = 0 THEN NULL
                    ELSE r.run_time - to_days((k.user_index * 13) % 120) END AS LastUsedDate_t,
               CASE WHEN k.user_index % 9 = 0 THEN '' ELSE 's3' END AS ServiceName_s,
               CASE WHEN k.user_index % 9 = 0 THEN '' ELSE 'us-east-1' END AS Region_s,
               CASE WHEN k.user_index % 9 = 0 THEN NULL ELSE CAST((k.user_index * 13) % 120 AS DOUBLE) END
                   AS DaysSinceLastUse_d,
               k.user_index % 9 = 0 AS NeverUsed_b, k.user_index % 3 = 0 AS PasswordEnabled_b,
               k.user_index % 6 <> 3 AS MfaActive_b, r.run_id AS RunId_g
        FROM runs r JOIN keyset k ON r.scope = 'account' OR k.user_index = r.scope_user
        WHERE NOT (r.account = 0 AND r.h = 0 AND r.scope = 'account' AND k.user_index % 2 = 1)
        ORDER BY TimeGenerated
    """)
    users = f"""
        SELECT u AS user_index, printf('user-%05d', u) AS name FROM range({estate.users}) t(u)
        UNION ALL SELECT -1, '<root_account>'
    """
    connection.execute(f"""
        INSERT INTO stored."{schema.USERS_TABLE}" BY NAME
        SELECT r.run_time AS TimeGenerated, r.run_time AS loggedDate_t, r.account_number AS account_number_s,
               u.name AS user_s, printf('arn:aws:iam::%s:user/%s', r.account_number, u.name) AS UserArn_s,
               '/' AS Path_s, TIMESTAMP '2025-01-01' + to_days(greatest(u.user_index, 0) % 300) AS CreateDate_t,
               u.user_index % 3 = 0 OR u.user_index = -1 AS PasswordEnabled_b,
               CASE WHEN u.user_index % 3 = 0 THEN r.run_time - to_days(u.user_index % 100) END
                   AS PasswordLastUsed_t,
               CASE WHEN u.user_index % 3 = 0 THEN TIMESTAMP '2025-06-01' END AS PasswordLastChanged_t,
               u.user_index % 6 <> 3 AS MfaActive_b,
               CAST((SELECT count(*) FROM keyset k WHERE k.user_index = u.user_index
                     AND NOT (k.user_index % 10 = 7 AND k.k = 1)) AS DOUBLE) AS ActiveKeys_d,
               CAST((SELECT count(*) FROM keyset k WHERE k.user_index = u.user_index) AS DOUBLE) AS Keys_d,
               r.run_time - to_days(greatest(u.user_index, 0) % 150) AS LastActivity_t,
               CASE WHEN u.user_index = -1 THEN true END AS HardwareMfa_b, r.run_id AS RunId_g
        FROM runs r JOIN ({users}) u ON r.scope = 'account' OR u.user_index = r.scope_user
        ORDER BY TimeGenerated
    """)
    keys_per_user = "(SELECT count(*) FROM keyset k WHERE k.user_index = r.scope_user)"
    connection.execute(f"""
        INSERT INTO stored."{schema.RUNS_TABLE}" BY NAME
        SELECT r.run_time AS TimeGenerated, r.run_time AS loggedDate_t, r.account_number AS account_number_s,
               r.run_id AS RunId_g, 'ok' AS Status_s, 'data_collector' AS Sink_s,
               CAST(CASE WHEN r.scope = 'account' THEN {estate.users} ELSE 1 END AS DOUBLE) AS Users_d,
               CAST(CASE WHEN r.scope = 'account' THEN (SELECT count(*) FROM keyset) ELSE {keys_per_user} END
                    AS DOUBLE) AS Keys_d,
               0.0 AS UsersSkipped_d, 0.0 AS UsersNotRead_d, 0.0 AS RecordsShipped_d, 0.0 AS RecordsSpilled_d,
               0.0 AS RecordsFailed_d, 0.0 AS Errors_d, '' AS ErrorDetail_s, 60.0 AS DurationSeconds_d,
               'bench' AS CollectorVersion_s, r.scope AS Scope_s,
               CASE WHEN r.scope = 'user' THEN printf('user-%05d', r.scope_user) ELSE '' END AS ScopeUser_s,
               CASE WHEN r.scope = 'user' THEN false END AS UserDeleted_b, true AS InventoryComplete_b,
               CAST(CASE WHEN r.scope = 'account' THEN (SELECT count(*) FROM keyset) ELSE {keys_per_user} END
                    AS DOUBLE) AS KeyRows_d,
               CAST(CASE WHEN r.scope = 'account' THEN {estate.users} + 1 ELSE 1 END AS DOUBLE) AS UserRows_d,
               CASE WHEN r.scope = 'account' THEN true END AS PasswordPolicy_b,
               CASE WHEN r.scope = 'account' THEN 14.0 END AS MinPasswordLength_d,
               CASE WHEN r.scope = 'account' THEN 24.0 END AS PasswordReusePrevention_d,
               CASE WHEN r.scope = 'account' THEN true END AS RequireSymbols_b,
               CASE WHEN r.scope = 'account' THEN true END AS RequireNumbers_b,
               CASE WHEN r.scope = 'account' THEN true END AS RequireUppercase_b,
               CASE WHEN r.scope = 'account' THEN true END AS RequireLowercase_b,
               CAST(NULL AS DOUBLE) AS MaxPasswordAge_d, '' AS PostureNotRead_s
        FROM runs r
        ORDER BY TimeGenerated
    """)


def table_rows(connection: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return {name: _scalar(connection, f'SELECT count(*) FROM stored."{name}"') for name in TABLES}


def rows_in_range(connection: duckdb.DuckDBPyConnection, since: datetime) -> dict[str, int]:
    return {
        name: _scalar(connection, f"SELECT count(*) FROM stored.\"{name}\" WHERE TimeGenerated >= TIMESTAMP '{since}'")
        for name in TABLES
    }


def _scalar(connection: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = connection.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


# --- the queries -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    name: str
    kind: str
    text: str
    time_range: timedelta
    functions: tuple[str, ...]


def subjects(compare: str | None) -> Iterator[Subject]:
    current = tuple(function.definition() for function in queries.functions().values())
    for name in FUNCTIONS:
        yield Subject(name, "function", f"{name}()", FUNCTION_RANGE, current)
    for tile, text, duration in workbook_tiles():
        yield Subject(tile, "tile", text, duration, current)
    if compare:
        old = functions_at(compare)
        for name in ("KeyReport_LatestRuns", "KeyReport_CurrentKeys", "KeyReport_CurrentUsers", "KeyReport_Findings"):
            if any(f"function {name}()" in definition for definition in old):
                yield Subject(name, f"function@{compare}", f"{name}()", FUNCTION_RANGE, old)


def workbook_tiles() -> Iterator[tuple[str, str, timedelta]]:
    """(name, query, time range) of every query item of the workbook; a tile reads its time range parameter."""
    workbook = json.loads(WORKBOOK.read_text(encoding="utf-8"))
    default = timedelta(days=7)
    for item in workbook["items"]:
        content = item.get("content", {})
        if item.get("type") == 9:
            for parameter in content.get("parameters", []):
                if parameter.get("name") == "TimeRange":
                    default = timedelta(milliseconds=parameter["value"]["durationMs"])
        if "query" in content:
            duration = default
            if not content.get("timeContextFromParameter"):
                duration = timedelta(milliseconds=content.get("timeContext", {}).get("durationMs", 0)) or default
            yield item["name"], content["query"], duration


def functions_at(ref: str) -> tuple[str, ...]:
    """The workspace functions as they are at git `ref` (definitions duckdb-kql registers)."""
    names = subprocess.run(
        ["git", "ls-tree", "--name-only", ref, "queries/functions/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    definitions = []
    for path in names:
        if path.endswith(".kql"):
            text = subprocess.run(
                ["git", "show", f"{ref}:{path}"], cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout
            definitions.append(parse_function(text, Path(path).name).definition())
    return tuple(definitions)


def measure(connection: duckdb.DuckDBPyConnection, subject: Subject, profile: Path) -> Measure:
    since = NOW - subject.time_range
    for name in TABLES:
        connection.execute(
            f'CREATE OR REPLACE TEMP VIEW "{name}" AS SELECT * FROM stored."{name}" '
            f"WHERE TimeGenerated BETWEEN TIMESTAMP '{since}' AND TIMESTAMP '{NOW}'"
        )
    result = Measure(subject.name, subject.kind, _iso(subject.time_range), 0, 0.0)
    started = time.perf_counter()
    connection.execute("PRAGMA enable_profiling='json'")
    connection.execute(f"PRAGMA profiling_output='{profile}'")
    try:
        relation = duckdb_kql.kql(
            connection, subject.text, allow_write=False, query_now=NOW, functions=list(subject.functions)
        )
        rows = relation.fetchall()  # the profile holds the last statement: this one
    except (duckdb_kql.KqlError, duckdb.Error) as error:
        result.error = f"{type(error).__name__}: {str(error).splitlines()[0]}"
        return result
    finally:
        connection.execute("PRAGMA disable_profiling")
    result.seconds = round(time.perf_counter() - started, 3)
    result.result_rows = len(rows)
    result.digest = hashlib.sha256("\n".join(sorted(map(repr, rows))).encode()).hexdigest()[:12]
    in_range = rows_in_range(connection, since)
    for scan in table_scans(json.loads(profile.read_text(encoding="utf-8"))):
        table = scan["extra_info"]["Table"].rsplit(".", 1)[-1].strip('"')
        if table not in TABLES:
            continue
        result.scans[table] = result.scans.get(table, 0) + 1
        result.emitted[table] = result.emitted.get(table, 0) + int(scan.get("operator_cardinality", 0))
        result.read[table] = result.read.get(table, 0) + int(scan.get("operator_rows_scanned", 0))
        result.in_range[table] = result.in_range.get(table, 0) + in_range[table]
    return result


def table_scans(node: Any) -> Iterator[dict[str, Any]]:
    """Every TABLE_SCAN of a DuckDB JSON profile, with its cardinality and rows scanned under common keys."""
    if isinstance(node, dict):
        if node.get("operator_type", node.get("type")) == "TABLE_SCAN":
            yield {
                "extra_info": node.get("extra_info", {}),
                "operator_cardinality": node.get("operator_cardinality", node.get("intermediate_rows", 0)),
                "operator_rows_scanned": node.get("operator_rows_scanned", node.get("rows_scanned", 0)),
            }
        for key in ("children", "operator"):
            yield from table_scans(node.get(key, []))
    elif isinstance(node, list):
        for child in node:
            yield from table_scans(child)


def _iso(duration: timedelta) -> str:
    return f"P{duration.days}D" if not duration.seconds else f"PT{int(duration.total_seconds() // 3600)}H"


# --- the figures -------------------------------------------------------------------------------------------


def per_account_hour(connection: duckdb.DuckDBPyConnection, estate: Estate) -> dict[str, float]:
    """Rows each table gains per account per hour (an account run, and its share of the re-reads)."""
    return {name: count / (estate.accounts * estate.hours) for name, count in table_rows(connection).items()}


def extrapolate(count: int, table: str, estate: Estate, rate: dict[str, float], accounts: int, users: int) -> float:
    """`count` rows of `table` in account-hours of rows, scaled to `accounts` x `users`: the key and user tables
    grow with the users of an account, the run table does not (one row per run)."""
    account_hours = count / rate[table] / estate.accounts
    scale = users / estate.users if table != schema.RUNS_TABLE else 1.0
    return account_hours * accounts * rate[table] * scale


def markdown(
    estate: Estate, results: Sequence[Measure], rate: dict[str, float], targets: Sequence[int], users: int
) -> str:
    lines = [
        f"{estate.accounts} accounts x {estate.users} users, hourly runs over {estate.days} days "
        f"(rows per account-hour: " + ", ".join(f"{SHORT[t]} {rate[t]:,.1f}" for t in TABLES) + ")",
        "",
        "| query | kind | range | result rows | emitted (keys/users/runs) | in range (keys/users/runs) "
        "| account-hours emitted | account-hours in range | "
        + " | ".join(f"{a} x {users:,}: emitted / in range" for a in targets)
        + " | s |",
        "|---|---|---|---:|---:|---:|---:|---:|" + "---:|" * len(targets) + "---:|",
    ]
    for r in results:
        if r.error:
            lines.append(f"| {r.query} | {r.kind} | {r.time_range} | {r.error} |")
            continue
        emitted = "/".join(f"{r.emitted.get(t, 0):,}" for t in TABLES)
        in_range = "/".join(f"{r.in_range.get(t, 0):,}" for t in TABLES)
        hours_emitted = _account_hours(r.emitted, estate, rate)
        hours_range = _account_hours(r.in_range, estate, rate)
        cells = []
        for accounts in targets:
            e = sum(extrapolate(r.emitted.get(t, 0), t, estate, rate, accounts, users) for t in TABLES)
            i = sum(extrapolate(r.in_range.get(t, 0), t, estate, rate, accounts, users) for t in TABLES)
            cells.append(f"{_human(e)} / {_human(i)}")
        lines.append(
            f"| {r.query} | {r.kind} | {r.time_range} | {r.result_rows:,} | {emitted} | {in_range} "
            f"| {hours_emitted:,.1f} | {hours_range:,.1f} | " + " | ".join(cells) + f" | {r.seconds:.1f} |"
        )
    return "\n".join(lines)


def _account_hours(counts: dict[str, int], estate: Estate, rate: dict[str, float]) -> float:
    """The key and user rows in account-hours per account: 1 is one account's hourly run of both tables."""
    big = [schema.KEYS_TABLE, schema.USERS_TABLE]
    return sum(counts.get(t, 0) for t in big) / sum(rate[t] for t in big) / estate.accounts


def _human(value: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:.0f}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=4)
    parser.add_argument("--users", type=int, default=250)
    parser.add_argument("--days", type=int, nargs="+", default=[32], help="one workspace per value")
    parser.add_argument("--target-accounts", type=int, nargs="+", default=[20, 200])
    parser.add_argument("--target-users", type=int, default=5000)
    parser.add_argument("--compare", metavar="REF", help="also run the functions as they are at this git ref")
    parser.add_argument("--only", nargs="*", default=[], help="only these queries (names)")
    parser.add_argument("--kinds", nargs="*", default=[], help="only these kinds (function, tile, function@REF)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    selected = [
        s
        for s in subjects(args.compare)
        if (not args.only or s.name in args.only) and (not args.kinds or s.kind in args.kinds)
    ]
    reports = []
    with tempfile.TemporaryDirectory() as folder:
        profile = Path(folder) / "profile.json"
        for days in args.days:
            estate = Estate(args.accounts, args.users, days)
            started = time.perf_counter()
            connection = connect(estate)
            connection.execute(f"SET threads = {args.threads}")
            rate = per_account_hour(connection, estate)
            print(
                json.dumps(
                    {
                        "estate": asdict(estate),
                        "rows": table_rows(connection),
                        "per_account_hour": rate,
                        "generated_seconds": round(time.perf_counter() - started, 1),
                    }
                ),
                flush=True,
            )
            results = []
            for subject in selected:
                result = measure(connection, subject, profile)
                results.append(result)
                print(json.dumps({"days": days, **asdict(result)}), flush=True)
            connection.close()
            reports.append(markdown(estate, results, rate, args.target_accounts, args.target_users))
    print("\n\n".join(reports))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
