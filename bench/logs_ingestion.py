"""The Logs Ingestion sink at scale: throughput, request sizes, and memory that does not grow with the estate.

    python -m bench.logs_ingestion --rows 20000 100000           # throughput, request sizes
    python -m bench.logs_ingestion --rows 20000 100000 --trace   # + the sink's peak memory (slower)

Each size ships synthetic key rows (a generator, as the pipeline hands them over) through the real
LogsIngestionSink (azure-monitor-ingestion, azure-identity, TLS) to the sandbox's Logs Ingestion emulator.
The emulators run in a child process, so the parent's tracemalloc peak is the sink's own memory: with
streaming it should stay near one chunk (1 MB of rows) whatever the number of rows.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

import boto3

from keyreport.deadline import Deadline
from keyreport.records import Row
from keyreport.settings import Settings
from keyreport.sinks import Table
from keyreport.wiring import Wiring
from sandbox.entra import EntraEmulator
from sandbox.logs_ingestion import LogsIngestionEmulator
from sandbox.stack import CLIENT_ID, DCR_ID, TENANT_ID
from sandbox.tls import LocalCA

SECRET = "bench-client-secret"


def serve(directory: str, pipe: Connection) -> None:
    """Child process: Entra + Logs Ingestion emulators until the parent asks for the upload statistics."""
    ca = LocalCA(directory)
    with EntraEmulator(ca) as entra, LogsIngestionEmulator(ca, entra, "5a2c9e1f-7b4d-4c3a-8e6f-1b9d2a7c4e0f") as li:
        app = entra.register_app(TENANT_ID, CLIENT_ID, SECRET)
        li.add_rule(DCR_ID)
        li.assign_publisher(DCR_ID, app.object_id)
        pipe.send({"entra": entra.url, "ingestion": li.url, "ca": str(ca.ca_bundle_path)})
        while pipe.recv() == "stats":
            uploads = li.uploads
            pipe.send(
                {
                    "requests": len(uploads),
                    "rows": sum(u.records for u in uploads),
                    "wire_bytes": sum(u.body_bytes for u in uploads),
                    "payload_bytes": sum(u.payload_bytes for u in uploads),
                    "largest_payload": max((u.payload_bytes for u in uploads), default=0),
                    "largest_wire": max((u.body_bytes for u in uploads), default=0),
                }
            )


def rows(count: int) -> Iterator[Row]:
    for i in range(count):
        yield {
            "loggedDate": "2026-06-01T00:00:00Z",
            "account_number": "123456789012",
            "user": f"user-{i:07d}",
            "UserArn": f"arn:aws:iam::123456789012:user/team-{i % 50}/user-{i:07d}",
            "AccessKeyId": "AKIA...MPLE",
            "KeyFingerprint": f"kf1-{i:040x}",
            "Status": "Active" if i % 7 else "Inactive",
            "CreateDate": "2024-01-02T03:04:05Z",
            "KeyAgeDays": 516,
            "LastUsedDate": "2026-05-30T11:22:33Z",
            "ServiceName": "s3",
            "Region": "eu-west-1",
            "DaysSinceLastUse": 1,
            "NeverUsed": False,
            "PasswordEnabled": bool(i % 2),
            "MfaActive": bool(i % 3),
            "RunId": "0b6f2e5c-4a7d-4e1b-9c3f-2d8a6e1f7b40",
        }


def measure(count: int, endpoints: dict[str, str], pipe: Connection, trace: bool) -> dict[str, Any]:
    settings = Settings.from_env(
        {
            "KEYREPORT_SINK": "logs_ingestion",
            "KEYREPORT_DCE_ENDPOINT": endpoints["ingestion"],
            "KEYREPORT_DCR_ID": DCR_ID,
            "KEYREPORT_AZURE_AUTHORITY_HOST": endpoints["entra"],
            "KEYREPORT_CA_BUNDLE": endpoints["ca"],
            "AZURE_TENANT_ID": TENANT_ID,
            "AZURE_CLIENT_ID": CLIENT_ID,
        }
    )
    from azure.identity import ClientSecretCredential  # noqa: PLC0415 - the bench skips Secrets Manager

    credential = ClientSecretCredential(
        TENANT_ID, CLIENT_ID, SECRET, authority=endpoints["entra"], disable_instance_discovery=True,
        connection_verify=endpoints["ca"],
    )  # fmt: skip
    sink = Wiring(settings, boto3.Session(), credential).sink
    sink.send(Table.KEYS, rows(10), Deadline())  # warm: token, TLS session, imports
    pipe.send("stats")
    before = pipe.recv()
    if trace:
        tracemalloc.start()  # slows Python down several times: throughput is measured without it
    started = time.perf_counter()
    delivery = sink.send(Table.KEYS, rows(count), Deadline())
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory() if trace else (0, 0)
    tracemalloc.stop()
    pipe.send("stats")
    after = pipe.recv()
    sent = {key: after[key] - before[key] for key in ("requests", "rows", "wire_bytes", "payload_bytes")}
    return {
        "rows": count,
        "shipped": delivery.shipped,
        "failed": delivery.failed,
        "seconds": round(seconds, 2),
        "rows_per_second": round(count / seconds),
        "requests": sent["requests"],
        "largest_request_uncompressed": after["largest_payload"],
        "largest_request_on_wire": after["largest_wire"],
        "compression": round(sent["payload_bytes"] / max(1, sent["wire_bytes"]), 1),
        "peak_traced_mib": round(peak / 2**20, 1) if trace else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--trace", action="store_true", help="measure the sink's peak memory (tracemalloc)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="keyreport-bench-") as directory:
        parent, child = multiprocessing.Pipe()
        server = multiprocessing.get_context("fork").Process(target=serve, args=(directory, child), daemon=True)
        server.start()
        endpoints = parent.recv()
        try:
            for count in args.rows:
                print(json.dumps(measure(count, endpoints, parent, args.trace)), flush=True)
        finally:
            parent.send("stop")
            server.join(timeout=10)


if __name__ == "__main__":
    main()
