"""`make demo`, after the dashboards: two accounts whose current state is not simply "the latest run".

Two more accounts report through the same sink the demo configured (real HTTP, real signing or token):
- one last ran 30 hours ago: its snapshot is kept and shown, marked Stale (older than StaleAfterHours);
- one ran two hours ago, and again just now, but the new run's second key row did not reach the workspace (as
  when a batch is spilled and waits for `keyreport replay`): the new run announced 2 key rows and 1 arrived, so
  the account keeps the previous snapshot, marked Arriving, and `ingestion-arriving` names the run and what it
  waits for.
The rows are built by the product's record code; only their account and times are the demo's.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import boto3

from keyreport import __version__, queries
from keyreport.deadline import Deadline
from keyreport.records import KeyRecord, RunSummary, UserRecord, key_row, summary_row, user_row
from keyreport.settings import Settings
from keyreport.sinks.base import Sink, Table
from keyreport.wiring import Wiring
from sandbox.local_kql import LocalWorkspace, TimeRange
from sandbox.stack import Stack

STOPPED_ACCOUNT = "210987654321"
ARRIVING_ACCOUNT = "345678901234"
FINGERPRINT_KEY = b"state-demo-fingerprint-key-32byt"
KEY_IDS = ("AKIAXDEMOSTATE000001", "AKIAXDEMOSTATE000002")


def show(stack: Stack, sink_name: str) -> list[str]:
    """Ships the two accounts' runs and prints what the state functions make of them; returns the mismatches."""
    now = datetime.now(UTC).replace(microsecond=0)
    sink = Wiring(Settings.from_env(), boto3.Session()).sink
    print("\n== Current state against the clock: an account that stopped, and a run still arriving")
    _ship_run(sink, sink_name, STOPPED_ACCOUNT, now - timedelta(hours=30), KEY_IDS[:1], arrived=1)
    _ship_run(sink, sink_name, ARRIVING_ACCOUNT, now - timedelta(hours=2), KEY_IDS[:1], arrived=1)
    arriving_run = _ship_run(sink, sink_name, ARRIVING_ACCOUNT, now, KEY_IDS, arrived=1)
    print(
        f"Shipped: {STOPPED_ACCOUNT} last ran 30 hours ago; {ARRIVING_ACCOUNT} ran 2 hours ago and again now, "
        "its new run announcing 2 key rows of which 1 arrived (the other spilled)"
    )
    store = stack.ingestion if sink_name == "logs_ingestion" else stack.collector
    workspace = LocalWorkspace.from_stores(store)
    try:
        library = queries.library()
        results = {
            query_id: workspace.run(
                library[query_id].text, time_range=TimeRange.last(library[query_id].timespan, now)
            ).records()
            for query_id in ("accounts-stale", "ingestion-arriving")
        }
        latest = workspace.run("KeyReport_LatestRuns() | sort by account_number_s asc").records()
        keys = workspace.run("KeyReport_CurrentKeys() | summarize Keys = count() by account_number_s").records()
    finally:
        workspace.close()
    for row in latest:
        print(
            f"  KeyReport_LatestRuns: {row['account_number_s']}  AsOf {row['AsOf']:%Y-%m-%d %H:%M}  "
            f"LatestRun {row['LatestRun']:%Y-%m-%d %H:%M} {row['LatestRunStatus']}  "
            f"Arriving={row['Arriving']}  Stale={row['Stale']}"
        )
    for row in results["ingestion-arriving"]:
        print(f"  ingestion-arriving: {row['Account']} run {row['RunId']}: {row['KeyRowsMissing']} key row missing, "
              f"waiting for {row['Waiting']}")  # fmt: skip
    per_account = {row["account_number_s"]: row for row in latest}
    key_counts = {row["account_number_s"]: row["Keys"] for row in keys}
    problems = []
    if {row["Account"] for row in results["accounts-stale"]} != {STOPPED_ACCOUNT}:
        problems.append(f"accounts-stale lists {[r['Account'] for r in results['accounts-stale']]}")
    if [str(row["RunId"]) for row in results["ingestion-arriving"]] != [arriving_run]:
        problems.append(f"ingestion-arriving lists {[r['RunId'] for r in results['ingestion-arriving']]}")
    arriving = per_account.get(ARRIVING_ACCOUNT, {})
    if not arriving.get("Arriving") or arriving.get("AsOf") != now - timedelta(hours=2) or arriving.get("Stale"):
        problems.append(f"{ARRIVING_ACCOUNT} should keep its 2-hour-old snapshot, Arriving: {arriving}")
    if (key_counts.get(STOPPED_ACCOUNT), key_counts.get(ARRIVING_ACCOUNT)) != (1, 1):
        problems.append(f"the current keys of the two accounts are {key_counts}, expected one each")
    if not problems:
        print(
            f"{STOPPED_ACCOUNT} stays listed with its last snapshot, marked Stale; {ARRIVING_ACCOUNT} keeps its "
            "previous snapshot until every row of the new run is in, and the health tab says what it waits for."
        )
    return problems


def _ship_run(
    sink: Sink, sink_name: str, account: str, started: datetime, key_ids: tuple[str, ...], *, arrived: int
) -> str:
    """One complete inventory of `account` (one user, `key_ids`), of which the first `arrived` key rows are sent."""
    run_id = str(uuid.uuid4())
    user_arn = f"arn:aws:iam::{account}:user/demo.service"
    keys = [KeyRecord("demo.service", user_arn, key_id, "Active", started - timedelta(days=40)) for key_id in key_ids]
    created = started - timedelta(days=400)
    user = UserRecord("demo.service", user_arn, "/", created, active_keys=len(keys), keys=len(keys))
    summary = RunSummary(
        run_id, account, started, __version__, sink_name, users=1, keys=len(keys), shipped=arrived + 1,
        spilled=len(keys) - arrived, key_rows=len(keys), user_rows=1,
    )  # fmt: skip
    rows = [key_row(k, run_time=started, run_id=run_id, fingerprint_key=FINGERPRINT_KEY) for k in keys[:arrived]]
    for table, batch in (
        (Table.KEYS, rows),
        (Table.USERS, [user_row(user, run_time=started, run_id=run_id)]),
        (Table.RUNS, [summary_row(summary)]),
    ):
        sink.send(table, batch, Deadline())
    return run_id
