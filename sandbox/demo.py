"""`make demo`: the real Lambda handler, end to end, against the local stack; then what a user would look at.

Nothing here is faked on the product side. By default both sinks run on one estate: first the Logs Ingestion
API (the client secret from Secrets Manager (moto), an Entra token for Azure Monitor, gzip uploads to the
rule deployed from azure/logs-ingestion.json), then the Data Collector API (a token for Key Vault, the
workspace key from it, SharedKey-signed POSTs), and the stored rows are compared. The tables below are read
back from what was stored, and are the same for both sinks.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from keyreport.records import parse_timestamp
from sandbox import dashboard_demo, event_demo, state_demo
from sandbox.auth_modes import AUTH_MODES
from sandbox.estate import Estate
from sandbox.expected import NEVER_USED_GRACE_DAYS, ROTATION_DAYS, UNUSED_DAYS, Expected
from sandbox.lambda_context import LocalLambdaContext
from sandbox.stack import SINKS, Stack

KEYS_TABLE = "AWS_Access_Key_Report_CL"
RUNS_TABLE = "AWS_Access_Key_Report_Run_CL"
SHOWN = 12


def table(title: str, rows: Sequence[dict[str, Any]], columns: dict[str, str], total: int | None = None) -> None:
    """Print rows as an aligned text table under a title; `columns` maps header -> stored column."""
    count = len(rows) if total is None else total
    print(f"\n{title} ({count})")
    if not rows:
        print("  (none)")
        return
    cells = [[_cell(row.get(column)) for column in columns.values()] for row in rows[:SHOWN]]
    widths = [max(len(header), *(len(line[i]) for line in cells)) for i, header in enumerate(columns)]
    print("  " + "  ".join(header.ljust(width) for header, width in zip(columns, widths, strict=True)))
    for line in cells:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
    if count > SHOWN:
        print(f"  ... and {count - SHOWN} more")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _latest(rows: list[dict[str, Any]], run_id: str) -> list[dict[str, Any]]:
    return [row for row in rows if row.get("RunId_g") == run_id]


def _check(name: str, shown: list[dict[str, Any]], expected: int, problems: list[str]) -> None:
    if len(shown) != expected:
        problems.append(f"{name}: {len(shown)} rows read back, the seeded estate has {expected}")


def stored_rows(stack: Stack, sink: str, table_name: str) -> list[dict[str, Any]]:
    """What the emulated workspace holds, read from the front door the run used (the rows are alike)."""
    return stack.ingestion.rows(table_name) if sink == "logs_ingestion" else stack.collector.rows(table_name)


def report(
    stack: Stack, estate: Estate, summary: dict[str, Any], at: datetime, sink: str = "data_collector"
) -> list[str]:
    rows = _latest(stored_rows(stack, sink, KEYS_TABLE), summary["RunId"])
    by_age: Callable[[dict[str, Any]], float] = lambda row: -float(row.get("KeyAgeDays_d", 0))  # noqa: E731
    key_columns = {
        "account": "account_number_s",
        "user": "user_s",
        "key": "AccessKeyId_s",
        "status": "Status_s",
        "created": "CreateDate_t",
        "age (days)": "KeyAgeDays_d",
        "last used": "LastUsedDate_t",
        "service": "ServiceName_s",
    }
    old = sorted((r for r in rows if r["Status_s"] == "Active" and r["KeyAgeDays_d"] > ROTATION_DAYS), key=by_age)
    # As the never-used query: a key younger than the grace period (a replacement made yesterday) is not listed.
    never = sorted((r for r in rows if r["NeverUsed_b"] and r["KeyAgeDays_d"] > NEVER_USED_GRACE_DAYS), key=by_age)
    stale = sorted(
        (r for r in rows if not r["NeverUsed_b"] and r["DaysSinceLastUse_d"] > UNUSED_DAYS),
        key=lambda row: -float(row["DaysSinceLastUse_d"]),
    )
    root = [r for r in rows if r["user_s"] == "<root_account>"]

    table("Active keys over 90 days old: rotate", old, key_columns)
    table(
        f"Keys never used and older than {NEVER_USED_GRACE_DAYS} days (the never-used query's grace for new keys): "
        "remove?",
        never,
        {k: v for k, v in key_columns.items() if k not in ("last used", "service")},
    )
    table("Keys unused for over 90 days: stale", stale, key_columns | {"days since use": "DaysSinceLastUse_d"})
    table("Root user keys: should not exist", root, key_columns)
    runs = [r for r in stored_rows(stack, sink, RUNS_TABLE) if r.get("RunId_g") == summary["RunId"]]
    table(
        "Run summary row (AWS_Access_Key_Report_Run_CL)",
        runs,
        {
            "status": "Status_s",
            "users": "Users_d",
            "keys": "Keys_d",
            "shipped": "RecordsShipped_d",
            "failed": "RecordsFailed_d",
            "seconds": "DurationSeconds_d",
            "version": "CollectorVersion_s",
        },
    )

    problems: list[str] = []
    truth = Expected(estate, parse_timestamp(summary["loggedDate"]))
    _check("all keys", rows, estate.key_count, problems)
    _check("active keys over 90 days old", old, len(truth.rotation_due()), problems)
    _check("never used", never, len(truth.never_used()), problems)
    _check("unused for over 90 days", stale, len(truth.stale()), problems)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--sink",
        choices=(*SINKS, "both"),
        default="both",
        help="logs_ingestion (DCR, Entra token only: what new deployments use), data_collector (SharedKey, "
        "workspace key from Key Vault: support ended 2026-09-14), or both (the default), one after the other on "
        "the same estate, comparing what was stored",
    )
    parser.add_argument(
        "--auth",
        choices=AUTH_MODES,
        default="secret",
        help="KEYREPORT_AZURE_AUTH: federated (STS-signed JWT, nothing stored), kms (assertion signed in KMS), "
        "certificate, secret (Secrets Manager), default (DefaultAzureCredential)",
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="keyreport-demo-") as directory, Stack(directory) as stack:
        started = time.monotonic()
        estate = stack.seed(users=args.users, seed=args.seed)
        print(
            f"Sandbox up: moto {stack.aws.endpoint_url}, Entra {stack.entra.url}, Key Vault {stack.keyvault.url},"
            f" Data Collector {stack.collector.url}, Logs Ingestion {stack.ingestion.url}"
        )
        print(
            f"Seeded {estate.user_count} IAM users with {estate.key_count} access keys "
            f"({len(estate.root_keys)} root) in account {estate.account_id}"
        )

        logging.getLogger("azure").setLevel(logging.WARNING)
        read_backs: dict[str, list[dict[str, Any]]] = {}
        run_time = datetime.now(UTC)
        for sink in ("logs_ingestion", "data_collector") if args.sink == "both" else (args.sink,):
            summary = _invoke(stack, sink, args.auth)
            if summary is None:
                return 1
            run_time = parse_timestamp(summary["loggedDate"])
            problems = report(stack, estate, summary, datetime.now(UTC), sink)
            if problems:
                print("Read-back does not match the seeded estate:\n  " + "\n  ".join(problems), file=sys.stderr)
                return 1
            read_backs[sink] = _latest(stored_rows(stack, sink, KEYS_TABLE), summary["RunId"])
        problems = dashboard_demo.show(stack, estate, datetime.now(UTC), run_time)
        if problems:
            print("The dashboards do not match the seeded estate:\n  " + "\n  ".join(problems), file=sys.stderr)
            return 1
        problems = event_demo.show(stack, estate, sink)
        if problems:
            print("The event path did not show the change:\n  " + "\n  ".join(problems), file=sys.stderr)
            return 1
        problems = state_demo.show(stack, sink)
        if problems:
            print("The current state is not what the runs imply:\n  " + "\n  ".join(problems), file=sys.stderr)
            return 1
        print(f"\nDemo finished in {time.monotonic() - started:.1f}s.")
        print("Every count above matches the seeded estate.")
        if len(read_backs) == 2:
            return _compare(read_backs)
        return 0


def _invoke(stack: Stack, sink: str, auth: str = "secret") -> dict[str, Any] | None:
    """The real handler, configured for `sink` and `auth` as a deployment would be; None when the run failed."""
    env = stack.env(sink=sink, auth=auth)
    for name in set(stack.env()) - set(env):
        os.environ.pop(name, None)  # a Logs Ingestion deployment has no workspace key or vault settings
    os.environ.update(env)
    from keyreport.errors import RunFailed  # noqa: PLC0415
    from keyreport.handler import lambda_handler  # noqa: PLC0415 - after the environment is set

    print(f"\n== KEYREPORT_SINK={sink} KEYREPORT_AZURE_AUTH={auth}")
    if not _prove_every_hop(lambda_handler):
        return None
    try:
        summary: dict[str, Any] = lambda_handler({}, LocalLambdaContext())  # type: ignore[arg-type]
    except RunFailed as error:
        print(f"\nThe run failed: {error}", file=sys.stderr)
        return None
    print(
        f"lambda_handler returned Status={summary['Status']}: {summary['RecordsShipped']} of "
        f"{summary['Keys']} keys shipped, {summary['RecordsFailed']} failed, "
        f"in {summary['DurationSeconds']:.2f}s"
    )
    print(_chain(stack, sink))
    return summary


def _prove_every_hop(lambda_handler: Any) -> bool:
    """The test event a new deployment is proved with: every hop of the run, no row shipped."""
    checked = lambda_handler({"keyreport": "check"}, LocalLambdaContext())
    print('lambda_handler({"keyreport": "check"}):')
    for hop in checked["hops"]:
        mark = "✓" if hop["status"] == "pass" else "✗"
        print(f"  {mark} {hop['name']} ({hop['milliseconds']} ms)" + ("" if mark == "✓" else f": {hop['detail']}"))
    if not checked["passed"]:
        print("The check failed: the run would not deliver.", file=sys.stderr)
    else:
        print('Every hop passed; the run\'s metrics follow as one embedded-metric-format line ({"_aws": ...}).')
    return bool(checked["passed"])


def _compare(read_backs: dict[str, list[dict[str, Any]]]) -> int:
    """Both sinks wrote the same estate: apart from what differs per run, the stored rows must be equal."""
    per_run = {"RunId_g", "loggedDate_t", "TimeGenerated", "SourceSystem"}  # SourceSystem: Data Collector only

    def comparable(rows: list[dict[str, Any]]) -> list[str]:
        return sorted(json.dumps({k: v for k, v in row.items() if k not in per_run}, sort_keys=True) for row in rows)

    first, second = (comparable(rows) for rows in read_backs.values())
    if first != second:
        print("The two sinks stored different rows for the same estate.", file=sys.stderr)
        return 1
    print(f"Both sinks stored the same {len(first)} rows, column for column (RunId, loggedDate, TimeGenerated aside).")
    return 0


def _chain(stack: Stack, sink: str) -> str:
    """What went over the wire, from the emulators' own records."""
    if sink == "logs_ingestion":
        uploads = stack.ingestion.uploads
        monitor_tokens = sum(1 for claims in stack.entra.issued if claims["aud"] == stack.ingestion.audience)
        return (
            f"Through the chain: {monitor_tokens} Entra token(s) for Azure Monitor, no Key Vault read, "
            f"{len(uploads)} gzip upload(s) to the data collection rule accepted "
            f"({sum(u.body_bytes for u in uploads):,} bytes on the wire, {sum(u.payload_bytes for u in uploads):,} "
            "uncompressed)"
        )
    posts = stack.collector.posts
    return (
        f"Through the chain: {stack.entra.tokens_issued} Entra token(s), {stack.keyvault.reads} Key Vault "
        f"read(s), {len(posts)} SharedKey-signed POST(s) accepted ({sum(p.body_bytes for p in posts):,} bytes)"
    )


if __name__ == "__main__":
    sys.exit(main())
