"""Inventory + shipping at the size of a large account, against the serial per-user/per-key baseline.

    python -m bench.scale latency  --users 5000            # 50 ms per IAM call, no throttling
    python -m bench.scale throttle --users 5000            # 50 calls/s per IAM API, burst 100
    python -m bench.scale memory   --users 1000 5000       # peak RSS of a separate `keyreport run` process
    python -m bench.scale latency  --users 5000 --no-baseline --report-seconds 0 10   # a slow credential report

moto runs in a process of its own (bench.remote_moto: AWS's CPU is not the function's), reached over a local
socket instead of HTTP; latency, throttling and a slow credential report are added on the wire by
bench.iam_conditions; records are shipped over TLS to the sandbox's Data Collector emulator. The product
runs unmodified: pipeline.run with the DataCollectorSink.

CPU: `cpu_seconds` is this process's CPU time during the run, less the Data Collector emulator's (measured
inside its request handler): `cpu_ms_per_call` is the product's CPU per AWS call (botocore, the inventory,
records, the sink's client side, and the bench's own hooks). Real IAM adds HTTP and TLS on top.
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

from bench.iam_conditions import IamConditions, iam_paging
from bench.remote_moto import AWS_ENV, RemoteMoto
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
from sandbox.https import Request, Response
from sandbox.stack import WORKSPACE_ID, Stack, make_workspace_key
from sandbox.tls import LocalCA

KEY = DeploymentKey.throwaway().fingerprint  # the baseline's rows are keyed like the product's
DEFAULT_CONCURRENCY = Settings.from_env({"KEYREPORT_SINK": "stdout"}).iam_concurrency


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
    concurrency: int = 1
    report_seconds: float = 0.0
    cpu_seconds: float = 0.0
    collector_cpu_seconds: float = 0.0

    @property
    def cpu_ms_per_call(self) -> float:
        product = self.cpu_seconds - self.collector_cpu_seconds
        return round(1000 * product / max(1, self.iam_calls), 3)


class MeteredCollector(DataCollectorEmulator):
    """The emulator, with the CPU time its request handler spends (server side, not the product's)."""

    cpu_seconds = 0.0

    def handle(self, request: Request) -> Response:
        started = time.thread_time()
        try:
            return super().handle(request)
        finally:
            self.cpu_seconds += time.thread_time() - started


def _sink(collector: DataCollectorEmulator, bundle: Path) -> DataCollectorSink:
    session = requests.Session()
    session.verify = str(bundle)
    key = WorkspaceKey(CachedSecret(lambda: collector.shared_key, max_age=3600))
    return DataCollectorSink(
        workspace_id=WORKSPACE_ID,
        endpoint=collector.url,
        key=key,
        log_types={
            Table.KEYS: "AWS_Access_Key_Report",
            Table.RUNS: "AWS_Access_Key_Report_Run",
            Table.USERS: "AWS_Access_Key_Report_Users",
        },
        session=session,
        max_bytes=4 * 1024 * 1024,
    )


def run_keyreport(
    users: int,
    aws: tuple[IamConditions, RemoteMoto],
    collector: MeteredCollector,
    sink: DataCollectorSink,
    settings: Settings,
) -> Measurement:
    conditions, moto = aws
    session = moto.install(conditions.install(boto3.Session()))
    collector_cpu = collector.cpu_seconds
    wiring = Wiring(settings, session)
    key = wiring.deployment_key.fingerprint  # read before the clock starts, as a warm function has it
    started, cpu = time.monotonic(), time.process_time()
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
        settings.iam_concurrency,
        conditions.report_seconds,
        time.process_time() - cpu,
        collector.cpu_seconds - collector_cpu,
    )


def run_serial_baseline(users: int, aws: tuple[IamConditions, RemoteMoto], sink: DataCollectorSink) -> Measurement:
    """The original report's algorithm: one user after another, list_access_keys per user and
    get_access_key_last_used per key, strictly in sequence, then one shipment."""
    conditions, moto = aws
    session = moto.install(conditions.install(boto3.Session()))
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


@dataclass(frozen=True)
class Plan:
    """The runs of one in-process benchmark: every concurrency x report delay, then the serial baseline."""

    latency: float
    rate: float | None
    retry_mode: str
    concurrencies: list[int]
    report_seconds: list[float]
    baseline: bool


def in_process(users: int, plan: Plan) -> list[Measurement]:
    os.environ.update(AWS_ENV)
    results = []
    seeding = time.monotonic()
    with tempfile.TemporaryDirectory() as directory, RemoteMoto(users) as moto:
        print(
            f"# seeded {moto.user_count} users / {moto.key_count} keys in {time.monotonic() - seeding:.1f}s",
            file=sys.stderr,
        )
        ca = LocalCA(directory)
        with MeteredCollector(ca, WORKSPACE_ID, make_workspace_key("bench")) as collector:
            sink = _sink(collector, ca.ca_bundle_path)
            for concurrency in plan.concurrencies:
                settings = Settings.from_env(
                    {
                        "KEYREPORT_SINK": "stdout",
                        "KEYREPORT_IAM_CONCURRENCY": str(concurrency),
                        "KEYREPORT_AWS_RETRY_MODE": plan.retry_mode,
                    }
                )
                for seconds in plan.report_seconds:
                    conditions = IamConditions(plan.latency, plan.rate, report_seconds=seconds)
                    results.append(run_keyreport(users, (conditions, moto), collector, sink, settings))
                    print(f"# {results[-1]}", file=sys.stderr)
            if plan.baseline:
                results.append(run_serial_baseline(users, (IamConditions(plan.latency, plan.rate), moto), sink))
                print(f"# {results[-1]}", file=sys.stderr)
    return results


# The run's own high-water mark, read by the run itself: getrusage(RUSAGE_CHILDREN) would also count the
# pages the child shared with this (large, seeded) process between fork and exec.
_PEAK_RSS_TEMPLATE = """
import atexit, runpy, sys
def peak():
    with open("/proc/self/status") as status:
        kib = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    sys.stderr.write(f"peak-rss-kib {kib}\\n")
atexit.register(peak)
sys.argv = ARGV
runpy.run_module("keyreport.cli", run_name="__main__", alter_sys=True)
"""


def peak_rss_probe(*args: str) -> str:
    """Python source for `python -c`: `keyreport ARGS`, writing its own peak RSS (`peak-rss-kib N`) at exit."""
    return _PEAK_RSS_TEMPLATE.replace("ARGV", repr(["keyreport", *args]))


PEAK_RSS_PROBE = peak_rss_probe("run", "--json")


def peak_rss_of_a_run(users: int) -> dict[str, Any]:
    """`keyreport run` in its own process against the sandbox (moto server + emulators in this process)."""
    with tempfile.TemporaryDirectory() as directory, Stack(directory) as stack, iam_paging():
        estate = stack.seed(users=users, seed=7)
        env = stack.aws.env(os.environ) | stack.env()
        started, cpu = time.monotonic(), _children_cpu()
        done = subprocess.run(
            [sys.executable, "-c", PEAK_RSS_PROBE], env=env, capture_output=True, text=True, check=False
        )
        seconds = time.monotonic() - started
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        peak_kib = int(done.stderr.rsplit("peak-rss-kib ", 1)[1].split()[0])
        summary = json.loads(done.stdout)
        return {
            "users": users,
            "keys": estate.key_count,
            "shipped": summary["RecordsShipped"],
            "peak_rss_mib": round(peak_kib / 1024, 1),
            "seconds": round(seconds, 1),
            "cpu_seconds": round(_children_cpu() - cpu, 2),  # the whole process: imports, HTTP to moto, TLS to Azure
        }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("regime", choices=["latency", "throttle", "memory"])
    parser.add_argument("--users", type=int, nargs="+", default=[5000])
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[DEFAULT_CONCURRENCY])
    parser.add_argument("--retry-mode", choices=["standard", "adaptive"], default="standard")  # the product default
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--report-seconds", type=float, nargs="+", default=[0.0], help="credential report delays")
    args = parser.parse_args()

    if args.regime == "memory":
        for users in sorted(args.users):
            print(json.dumps(peak_rss_of_a_run(users)))
        return
    plan = Plan(
        latency=args.latency,
        rate=args.rate if args.regime == "throttle" else None,
        retry_mode=args.retry_mode,
        concurrencies=args.concurrency,
        report_seconds=args.report_seconds,
        baseline=not args.no_baseline and args.regime == "latency",
    )
    for users in args.users:
        for result in in_process(users, plan):
            facts = {"regime": args.regime, "latency": plan.latency, "rate": plan.rate, "retry_mode": plan.retry_mode}
            print(json.dumps(facts | asdict(result) | {"cpu_ms_per_call": result.cpu_ms_per_call}))


if __name__ == "__main__":
    main()
