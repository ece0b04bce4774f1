"""`keyreport replay --timeout SECONDS` over many spilled objects: when it ends, what its summary says, its memory.

    python -m bench.replay --objects 2000 --timeout 10

The sandbox (moto server, Azure emulators) runs in this process; OBJECTS genuine batches of ROWS key rows
each are parked in its spill bucket with the deployment's key (as a failed run would have), then
`keyreport replay` runs in its own process against the Data Collector emulator. Its peak is the process's
own `VmHWM`, read by itself at exit. Prints one JSON line: the wall time, the exit code, the summary line
replay printed, the objects delivered and left in the bucket, and the peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.scale import peak_rss_probe
from keyreport.deployment_key import DeploymentKey
from keyreport.records import format_timestamp
from keyreport.sinks.base import FailedBatch, Table
from keyreport.spill.bucket import PREFIX, SpillBucket
from sandbox.stack import SPILL_BUCKET, Stack

ACCOUNT = "123456789012"


def rows(run_id: str, count: int, first: int) -> list[dict[str, Any]]:
    logged = format_timestamp(datetime.now(UTC) - timedelta(hours=1))
    return [
        {"loggedDate": logged, "account_number": ACCOUNT, "user": f"user{n}", "AccessKeyId": f"AKIA...{n % 10000:04d}",
         "Status": "Active", "RunId": run_id}
        for n in range(first, first + count)
    ]  # fmt: skip


def park(stack: Stack, objects: int, rows_per_object: int) -> None:
    key = DeploymentKey.from_secret(stack.fingerprint_secret, "the sandbox's fingerprint secret")
    spill = SpillBucket(stack.aws.client("s3"), SPILL_BUCKET, key.spill)
    run_id = str(uuid.uuid4())

    def one(sequence: int) -> None:
        batch = FailedBatch(Table.KEYS, rows(run_id, rows_per_object, sequence * rows_per_object), "bench")
        spill.put(batch, run_id=run_id, account_id=ACCOUNT, sink="data_collector", sequence=sequence)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(objects)))


def left(stack: Stack) -> int:
    pages = stack.aws.client("s3").get_paginator("list_objects_v2").paginate(Bucket=SPILL_BUCKET, Prefix=PREFIX)
    return sum(page.get("KeyCount", 0) for page in pages)


def measure(objects: int, rows_per_object: int, timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory, Stack(directory) as stack:
        park(stack, objects, rows_per_object)
        env = stack.aws.env(os.environ) | stack.env()
        started = time.monotonic()
        probe = peak_rss_probe("replay", "--timeout", str(timeout))
        done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False)
        seconds = time.monotonic() - started
        peak_kib = int(done.stderr.rsplit("peak-rss-kib ", 1)[1].split()[0])
        summary = next((line for line in done.stderr.splitlines() if "spilled batch(es) taken" in line), "")
        return {
            "objects": objects,
            "rows_per_object": rows_per_object,
            "timeout": timeout,
            "seconds": round(seconds, 2),
            "exit": done.returncode,
            "summary": summary.strip(),
            "left_in_bucket": left(stack),
            "peak_rss_mib": round(peak_kib / 1024, 1),
            "stopped": next((line.strip() for line in done.stderr.splitlines() if "stopped:" in line), None),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    print(json.dumps(measure(args.objects, args.rows, args.timeout)))


if __name__ == "__main__":
    main()
