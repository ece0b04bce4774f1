"""keyreport rows made by the product's own record code, and a local workspace holding them (duckdb-kql)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from keyreport.columns import KEY_COLUMNS, RUN_COLUMNS, USER_COLUMNS, stream_record
from keyreport.records import KeyRecord, RunSummary, UserRecord, key_row, summary_row, user_row
from sandbox.local_kql import LocalWorkspace, StoredTable
from scripts import schema

FINGERPRINT_KEY = bytes(range(32))
Tables = dict[str, list[dict[str, Any]]]


def arn(account: str, user: str) -> str:
    return f"arn:aws:iam::{account}:user/{user}"


def key(account: str, user: str, key_id: str, status: str, created: datetime, **fields: Any) -> KeyRecord:
    return KeyRecord(user, arn(account, user), key_id, status, created, **fields)


def complete_run(
    account: str, started: datetime, keys: list[KeyRecord], users: list[UserRecord] | None = None
) -> Tables:
    """The rows of one complete run of `account`: its keys, a user row per key owner (unless given), the run row."""
    run_id = str(uuid.uuid4())
    if users is None:
        owners = dict.fromkeys((k.user_name, k.user_arn) for k in keys)
        users = [
            UserRecord(name, user_arn, "/", started - timedelta(days=500),
                       keys=sum(k.user_name == name for k in keys),
                       active_keys=sum(k.user_name == name and k.status == "Active" for k in keys))
            for name, user_arn in owners
        ]  # fmt: skip
    summary = RunSummary(
        run_id, account, started, "test", "stdout", users=len(users), keys=len(keys), shipped=len(keys)
    )
    return {
        schema.KEYS_TABLE: [
            stream_record(key_row(k, run_time=started, run_id=run_id, fingerprint_key=FINGERPRINT_KEY), KEY_COLUMNS)
            for k in keys
        ],
        schema.USERS_TABLE: [stream_record(user_row(u, run_time=started, run_id=run_id), USER_COLUMNS) for u in users],
        schema.RUNS_TABLE: [stream_record(summary_row(summary), RUN_COLUMNS)],
    }


def workspace(runs: Iterable[Tables], cloudtrail: list[dict[str, Any]] | None = None) -> LocalWorkspace:
    """A workspace with keyreport's three tables (these runs' rows) and AWSCloudTrail (these rows, or none)."""
    rows: Tables = {name: [] for name in schema.tables()}
    for run in runs:
        for name, table_rows in run.items():
            rows[name].extend(table_rows)
    tables = [
        StoredTable(name, {c["name"]: c["type"] for c in columns if c["name"] != "TimeGenerated"}, rows[name])
        for name, columns in schema.tables().items()
    ]
    for name, columns in schema.external_tables().items():
        declared = {c["name"]: c["type"] for c in columns if c["name"] != "TimeGenerated"}
        tables.append(StoredTable(name, declared, cloudtrail or []))
    return LocalWorkspace(tables)
