"""The event path: event in to rows accepted for one user, IAM calls per event, and a burst.

    python -m bench.events --users 500 --latency 0.05 --repeat 40 --burst 1000

The real handler (`handler.handle`) takes CloudTrail IAM events as EventBridge delivers them and ships
each named user's snapshot over TLS to the sandbox's Data Collector emulator; IAM is the sandbox's moto
server with `--latency` seconds added to every IAM call on the wire (bench.iam_conditions). The time is
taken from the moment the handler is given the event to its return, which is after the sink accepted the
rows (a synchronous POST): what a Lambda adds on top is its own start and the SQS batching window.

The burst: `--burst` events for `--users` users (each user named twice: CreateAccessKey then
UpdateAccessKey, shuffled), first as one SQS batch (as the stack's trigger delivers up to 1,000 events
within its 20 s window), then in batches of 100, one after the other, to show what a smaller batch costs:
a user named in two batches is read twice.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import statistics
import tempfile
import time
from collections import Counter
from typing import Any

import boto3

from bench.iam_conditions import IamConditions
from keyreport import handler
from keyreport.wiring import _WARM
from sandbox.cloudtrail import iam_event, queue_arn, sqs_batch
from sandbox.lambda_context import LocalLambdaContext
from sandbox.stack import Stack

RUNS_TABLE = "AWS_Access_Key_Report_Run_CL"
SMALL_BATCH = 100  # for comparison: what a trigger with BatchSize 100 would deliver (the stack's takes 1,000)


def invoke(event: dict[str, Any], session: boto3.Session) -> dict[str, Any]:
    with contextlib.redirect_stdout(io.StringIO()):  # the EMF lines, which a Lambda sends to its log
        result: dict[str, Any] = handler.handle(event, LocalLambdaContext(900), session)  # type: ignore[arg-type]
    return result


def user_runs(stack: Stack) -> Counter[str]:
    return Counter(r["ScopeUser_s"] for r in stack.collector.rows(RUNS_TABLE) if r.get("Scope_s") == "user")


def one_user(
    stack: Stack, conditions: IamConditions, session: boto3.Session, names: list[str], repeat: int
) -> dict[str, Any]:
    account = stack.aws.client("sts").get_caller_identity()["Account"]
    invoke(iam_event("TagUser", account, names[0]), session)  # warm: clients, secrets, token
    seconds, calls = [], []
    for index in range(repeat):
        before = conditions.total_calls
        started = time.perf_counter()
        result = invoke(iam_event("CreateAccessKey", account, names[index % len(names)]), session)
        seconds.append(time.perf_counter() - started)
        calls.append(conditions.total_calls - before)
        assert result["users_reread"] == 1, result
    ordered = sorted(seconds)
    return {
        "case": "one user, direct event",
        "events": repeat,
        "median_seconds": round(statistics.median(ordered), 3),
        "p95_seconds": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
        "iam_calls_per_event": statistics.mean(calls),
        "iam_calls": dict(conditions.calls),
    }


def burst(
    stack: Stack, conditions: IamConditions, session: boto3.Session, names: list[str], events: int
) -> list[dict[str, Any]]:
    account = stack.aws.client("sts").get_caller_identity()["Account"]
    users = names[: events // 2]
    batch = [iam_event(name, account, user) for user in users for name in ("CreateAccessKey", "UpdateAccessKey")]
    random.Random(7).shuffle(batch)
    arn = queue_arn(os.environ["KEYREPORT_EVENT_QUEUE_URL"])
    results = []
    for size in (len(batch), SMALL_BATCH):
        before_runs, before_calls = user_runs(stack), conditions.total_calls
        started = time.perf_counter()
        failures = 0
        for start in range(0, len(batch), size):
            failures += len(invoke(sqs_batch(batch[start : start + size], arn), session)["batchItemFailures"])
        seconds = time.perf_counter() - started
        payload = len(json.dumps(sqs_batch(batch[:size], arn)))
        snapshots = user_runs(stack) - before_runs
        results.append(
            {
                "case": f"burst of {len(batch)} events for {len(users)} users in batches of {size}",
                "seconds": round(seconds, 2),
                "snapshots": sum(snapshots.values()),
                "users_with_one_snapshot": sum(1 for count in snapshots.values() if count == 1)
                if size == len(batch)
                else None,
                "failed_messages": failures,
                "iam_calls": conditions.total_calls - before_calls,
                "largest_invocation_payload_bytes": payload,
            }
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--burst", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory, Stack(directory) as stack:
        estate = stack.seed(users=args.users, seed=23)
        queue = stack.aws.client("sqs").create_queue(QueueName="keyreport-iam-events")["QueueUrl"]
        os.environ.update(stack.env() | {"KEYREPORT_EVENT_QUEUE_URL": queue})
        _WARM.clear()
        conditions = IamConditions(latency=args.latency)
        session = conditions.install(boto3.Session())
        names = [user.name for user in estate.users]
        facts = {"latency": args.latency, "users_in_account": estate.user_count, "keys": estate.key_count}
        print(json.dumps(facts | one_user(stack, conditions, session, names, args.repeat)), flush=True)
        conditions.calls.clear()
        for result in burst(stack, conditions, session, names, args.burst):
            print(json.dumps(facts | result), flush=True)


if __name__ == "__main__":
    main()
