"""Inventory + shipping at the size of a large account, against the serial per-user/per-key baseline.

    python -m bench.scale latency  --users 5000            # 50 ms per IAM call, no throttling
    python -m bench.scale throttle --users 5000            # 50 calls/s per IAM API, burst 100
    python -m bench.scale memory   --users 1000 5000       # peak RSS of a separate `keyreport run` process

moto runs in process (`mock_aws`: several times faster than its HTTP server), latency and throttling are
added on the wire by bench.iam_conditions, and records are shipped over TLS to the sandbox's Data
Collector emulator. The product runs unmodified: pipeline.run with the DataCollectorSink.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import requests
from moto import mock_aws

from bench.iam_conditions import IamConditions
from keyreport import pipeline
from keyreport.deadline import Deadline
from keyreport.deployment_key import DeploymentKey
from keyreport.identity.key_vault import WorkspaceKey
from keyreport.identity.secret_cache import CachedSecret
from keyreport.records import KeyRecord, key_row
from keyreport.settings import Settings
from keyreport.sinks import Table
from keyreport.sinks.data_collector import DataCollectorSink
from keyreport.wiring import Wiring
from sandbox.data_collector import DataCollectorEmulator
from sandbox.estate import seed_estate
from sandbox.stack import WORKSPACE_ID, Stack, make_workspace_key
from sandbox.tls import LocalCA

KEY = DeploymentKey.throwaway().fingerprint  # the baseline's rows are keyed like the product's

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@dataclass
class Measurement:
    name: str
    users: int
    keys_read: int
    keys_shipped: int
    iam_calls: int
    iam_calls_by_api: dict[str, int]
    throttled: int
    peak_in_flight: int
    seconds: float


def _sink(collector: DataCollectorEmulator, bundle: Path) -> DataCollectorSink:
    session = requests.Session()
    session.verify = str(bundle)
    key = WorkspaceKey(CachedSecret(lambda: collector.shared_key, max_age=3600))
    return DataCollectorSink(
        workspace_id=WORKSPACE_ID,
        endpoint=collector.url,
        key=key,
        log_types={Table.KEYS: "AWS_Access_Key_Report", Table.RUNS: "AWS_Access_Key_Report_Run"},
        session=session,
        max_bytes=4 * 1024 * 1024,
    )


def run_keyreport(users: int, conditions: IamConditions, sink: DataCollectorSink, settings: Settings) -> Measurement:
    session = conditions.install(boto3.Session())
    started = time.monotonic()
    wiring = Wiring(settings, session)
    key = wiring.deployment_key.fingerprint
    result = pipeline.run(settings, wiring.aws, sink, Deadline(), fingerprint_key=key)
    seconds = time.monotonic() - started
    summary = result.summary
    return Measurement(
        "keyreport",
        users,
        summary.keys,
        summary.shipped,
        conditions.total_calls,
        dict(conditions.calls),
        sum(conditions.throttled.values()),
        conditions.peak_in_flight,
        seconds,
    )


def run_serial_baseline(users: int, conditions: IamConditions, sink: DataCollectorSink) -> Measurement:
    """The original report's algorithm: one user after another, list_access_keys per user and
    get_access_key_last_used per key, strictly in sequence, then one shipment."""
    session = conditions.install(boto3.Session())
    iam = session.client("iam")
    started = time.monotonic()
    now, rows = datetime.now(UTC), []
    for page in iam.get_paginator("list_users").paginate():
        for user in page["Users"]:
            for key_page in iam.get_paginator("list_access_keys").paginate(UserName=user["UserName"]):
                for key in key_page["AccessKeyMetadata"]:
                    last = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])["AccessKeyLastUsed"]
                    record = KeyRecord(
                        user["UserName"],
                        user["Arn"],
                        key["AccessKeyId"],
                        key["Status"],
                        key["CreateDate"],
                        last.get("LastUsedDate"),
                        last.get("ServiceName"),
                        last.get("Region"),
                    )
                    row = key_row(
                        record, run_time=now, run_id="00000000-0000-0000-0000-000000000000", fingerprint_key=KEY
                    )
                    rows.append(row)
    delivery = sink.send(Table.KEYS, rows, Deadline())
    seconds = time.monotonic() - started
    return Measurement(
        "serial baseline",
        users,
        len(rows),
        delivery.shipped,
        conditions.total_calls,
        dict(conditions.calls),
        sum(conditions.throttled.values()),
        conditions.peak_in_flight,
        seconds,
    )


def in_process(
    users: int, latency: float, rate: float | None, concurrency: int, retry_mode: str, baseline: bool
) -> list[Measurement]:
    os.environ.update(AWS_ENV)
    results = []
    with tempfile.TemporaryDirectory() as directory, mock_aws():
        ca = LocalCA(directory)
        with DataCollectorEmulator(ca, WORKSPACE_ID, make_workspace_key("bench")) as collector:
            sink = _sink(collector, ca.ca_bundle_path)
            seeding = time.monotonic()
            estate = seed_estate(boto3.client("iam"), users=users, seed=7, root_keys=0)
            print(
                f"# seeded {estate.user_count} users / {estate.key_count} keys in {time.monotonic() - seeding:.1f}s",
                file=sys.stderr,
            )
            settings = Settings.from_env(
                {
                    "KEYREPORT_SINK": "stdout",
                    "KEYREPORT_IAM_CONCURRENCY": str(concurrency),
                    "KEYREPORT_AWS_RETRY_MODE": retry_mode,
                }
            )
            results.append(run_keyreport(users, IamConditions(latency, rate), sink, settings))
            print(f"# {results[-1]}", file=sys.stderr)
            if baseline:
                results.append(run_serial_baseline(users, IamConditions(latency, rate), sink))
                print(f"# {results[-1]}", file=sys.stderr)
    return results


def peak_rss_of_a_run(users: int) -> dict[str, Any]:
    """`keyreport run` in its own process against the sandbox (moto server + emulators in this process)."""
    with tempfile.TemporaryDirectory() as directory, Stack(directory) as stack:
        estate = stack.seed(users=users, seed=7)
        env = stack.aws.env(os.environ) | stack.env()
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "keyreport.cli", "run", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.monotonic() - started
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        summary = json.loads(done.stdout)
        return {
            "users": users,
            "keys": estate.key_count,
            "shipped": summary["RecordsShipped"],
            "peak_rss_mib": round(peak_kib / 1024, 1),
            "seconds": round(seconds, 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("regime", choices=["latency", "throttle", "memory"])
    parser.add_argument("--users", type=int, nargs="+", default=[5000])
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--burst", type=float, default=100.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--retry-mode", choices=["standard", "adaptive"], default="standard")  # the product default
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()

    if args.regime == "memory":
        # One subprocess per size, sequentially: RUSAGE_CHILDREN is the max over children so far, so the
        # sizes run from small to large.
        for users in sorted(args.users):
            print(json.dumps(peak_rss_of_a_run(users)))
        return
    rate = args.rate if args.regime == "throttle" else None
    for users in args.users:
        results = in_process(
            users,
            args.latency,
            rate,
            args.concurrency,
            args.retry_mode,
            baseline=not args.no_baseline and args.regime == "latency",
        )
        for result in results:
            print(
                json.dumps(
                    {
                        "regime": args.regime,
                        "latency": args.latency,
                        "rate": rate,
                        "concurrency": args.concurrency,
                        "retry_mode": args.retry_mode,
                    }
                    | asdict(result)
                )
            )


if __name__ == "__main__":
    main()
