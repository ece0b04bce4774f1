"""`make demo`: the real Lambda handler, end to end, against the local stack; then what a user would look at.

Nothing here is faked on the product side: the handler reads the client secret from Secrets Manager (moto),
gets a token from Entra (emulator), reads the workspace key from Key Vault (emulator) and POSTs signed
batches to the Data Collector (emulator) over TLS. The tables below are read back from what was stored.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sandbox.estate import Estate
from sandbox.lambda_context import LocalLambdaContext
from sandbox.stack import Stack

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


def report(stack: Stack, estate: Estate, summary: dict[str, Any], at: datetime) -> list[str]:
    rows = _latest(stack.collector.rows(KEYS_TABLE), summary["RunId"])
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
    old = sorted((r for r in rows if r["Status_s"] == "Active" and r["KeyAgeDays_d"] >= 90), key=by_age)
    never = sorted((r for r in rows if r["NeverUsed_b"]), key=by_age)
    stale = sorted(
        (r for r in rows if not r["NeverUsed_b"] and r["DaysSinceLastUse_d"] >= 90),
        key=lambda row: -float(row["DaysSinceLastUse_d"]),
    )
    root = [r for r in rows if r["user_s"] == "<root_account>"]

    table("Active keys 90+ days old: rotate", old, key_columns)
    table(
        "Keys never used: remove?", never, {k: v for k, v in key_columns.items() if k not in ("last used", "service")}
    )
    table("Keys unused for 90+ days: stale", stale, key_columns | {"days since use": "DaysSinceLastUse_d"})
    table("Root user keys: should not exist", root, key_columns)
    runs = [r for r in stack.collector.rows(RUNS_TABLE) if r.get("RunId_g") == summary["RunId"]]
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
    _check("all keys", rows, estate.key_count, problems)
    _check("active keys older than 90 days", old, len(estate.keys_older_than(90, at=at, active_only=True)), problems)
    _check("never used", never, len(estate.never_used()), problems)
    _check("unused for 90+ days", stale, len(estate.unused_for(90, at=at)), problems)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="keyreport-demo-") as directory, Stack(directory) as stack:
        started = time.monotonic()
        estate = stack.seed(users=args.users, seed=args.seed)
        print(
            f"Sandbox up: moto {stack.aws.endpoint_url}, Entra {stack.entra.url}, Key Vault {stack.keyvault.url},"
            f" Data Collector {stack.collector.url}"
        )
        print(
            f"Seeded {estate.user_count} IAM users with {estate.key_count} access keys "
            f"({len(estate.root_keys)} root) in account {estate.account_id}"
        )

        os.environ.update(stack.env())
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # keep the demo's screen for the results
        from keyreport.handler import lambda_handler  # noqa: PLC0415 - after the environment is set
        from keyreport.pipeline import RunFailed  # noqa: PLC0415

        logging.getLogger("azure").setLevel(logging.WARNING)
        run_time = datetime.now(UTC)
        try:
            summary = lambda_handler({}, LocalLambdaContext())  # type: ignore[arg-type]
        except RunFailed as error:
            print(f"\nThe run failed: {error}", file=sys.stderr)
            return 1

        posts = stack.collector.posts
        print(
            f"\nlambda_handler returned Status={summary['Status']}: {summary['RecordsShipped']} of "
            f"{summary['Keys']} keys shipped, {summary['RecordsFailed']} failed, "
            f"in {summary['DurationSeconds']:.2f}s"
        )
        print(
            f"Through the chain: {stack.entra.tokens_issued} Entra token(s), {stack.keyvault.reads} Key Vault "
            f"read(s), {len(posts)} SharedKey-signed POST(s) accepted "
            f"({sum(p.body_bytes for p in posts):,} bytes)"
        )

        problems = report(stack, estate, summary, run_time)
        print(f"\nDemo finished in {time.monotonic() - started:.1f}s.")
        if problems:
            print("Read-back does not match the seeded estate:\n  " + "\n  ".join(problems), file=sys.stderr)
            return 1
        print("Every count above matches the seeded estate.")
        return 0


if __name__ == "__main__":
    sys.exit(main())
