"""Organizations throughput: member accounts per minute with N member runs at once.

    python -m bench.organization --accounts 20 --users 300 --concurrent 1 5 20

Each concurrent member run is its own process, as each SQS-triggered Lambda invocation is: it seeds its
share of the member accounts in its own moto (in process), then, after every process is ready, runs the
real handler on one SQS message per account (`handler.handle`: AssumeRole into the member role, the
inventory, the stdout sink), with IAM answering in `--latency` seconds, as in bench.scale. On a Lambda
every invocation has its own CPU share; here the N processes share this machine's cores, so the figure
for large N is this machine's, and `cpu_seconds_per_account` is given to project it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from typing import Any

import boto3
from moto import mock_aws

from bench.iam_conditions import IamConditions
from bench.remote_moto import AWS_ENV
from keyreport import handler
from sandbox.aws import assumed_iam
from sandbox.estate import seed_estate
from sandbox.lambda_context import LocalLambdaContext

ROLE = "keyreport-member"
FIRST_MEMBER = 210000000000
# Organization mode, as the SQS-triggered function runs (the queue itself is not touched by a member run).
MEMBER_ENV = {
    "KEYREPORT_SINK": "stdout",
    "KEYREPORT_MODE": "organization",
    "KEYREPORT_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/keyreport-accounts",
}
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:keyreport-accounts"


def member_iam(account_id: str) -> Any:
    return assumed_iam(boto3.client("sts"), f"arn:aws:iam::{account_id}:role/{ROLE}")


def sqs_event(account_id: str) -> dict[str, Any]:
    body = json.dumps({"account_id": account_id})
    record = {"eventSource": "aws:sqs", "eventSourceARN": QUEUE_ARN, "messageId": f"m-{account_id}", "body": body}
    return {"Records": [record]}


def member_runs(accounts: list[str], users: int, latency: float, start: Any, results: Any) -> None:
    """One concurrent member run (one process): seed, wait for the others, then one invocation per account."""
    os.environ.update(AWS_ENV | MEMBER_ENV)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the stdout sink's records, for the life of the process
    with mock_aws():
        IamConditions(latency).install_everywhere()
        for offset, account in enumerate(accounts):
            seed_estate(member_iam(account), users=users, seed=int(account) % 1000 + offset, root_keys=0)
        start.wait()
        started, cpu = time.monotonic(), time.process_time()
        failed = 0
        for account in accounts:
            response = handler.handle(sqs_event(account), LocalLambdaContext(), boto3.Session())  # type: ignore[arg-type]
            failed += len(response["batchItemFailures"])
        results.put(
            {
                "accounts": len(accounts),
                "failed": failed,
                "seconds": time.monotonic() - started,
                "cpu": time.process_time() - cpu,
            }
        )


def throughput(accounts: int, users: int, latency: float, concurrent: int) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(concurrent), context.Queue()
    ids = [str(FIRST_MEMBER + index) for index in range(accounts)]
    processes = [
        context.Process(target=member_runs, args=(ids[share::concurrent], users, latency, start, results))
        for share in range(concurrent)
    ]
    for process in processes:
        process.start()
    done = [results.get(timeout=900) for _ in processes]  # a member run that died: fail, do not hang
    for process in processes:
        process.join()
    seconds = max(run["seconds"] for run in done)
    cpu = sum(run["cpu"] for run in done)
    return {
        "concurrent": concurrent,
        "accounts": sum(run["accounts"] for run in done),
        "failed": sum(run["failed"] for run in done),
        "users_per_account": users,
        "latency": latency,
        "seconds": round(seconds, 1),
        "accounts_per_minute": round(60 * accounts / seconds, 1),
        "cpu_seconds_per_account": round(cpu / accounts, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrent", type=int, nargs="+", default=[1, 5, 20])
    args = parser.parse_args()
    for concurrent in args.concurrent:
        print(json.dumps(throughput(args.accounts, args.users, args.latency, concurrent)), flush=True)


if __name__ == "__main__":
    main()
