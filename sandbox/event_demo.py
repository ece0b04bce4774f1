"""The end of `make demo`: one IAM change reaches the workspace through the event path, end to end.

An administrator creates a second access key for a user (moto's IAM); CloudTrail's event for that call,
as EventBridge puts it on the stack's event queue, is handed to the real Lambda handler as an SQS batch.
The handler re-reads that one user from IAM and ships a user snapshot; the current-state function
(KeyReport_CurrentKeys, on duckdb-kql over what the workspace stored) then shows the new key.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from datetime import UTC, datetime

from keyreport.records import mask_key_id
from sandbox.cloudtrail import iam_event, queue_arn, sqs_batch
from sandbox.estate import Estate, read_estate
from sandbox.lambda_context import LocalLambdaContext
from sandbox.local_kql import LocalWorkspace
from sandbox.stack import Stack

RUNS_TABLE = "AWS_Access_Key_Report_Run_CL"


def show(stack: Stack, estate: Estate, sink: str) -> list[str]:
    """Runs the change and prints it; returns what does not match moto's estate (empty: all matched)."""
    from keyreport.handler import lambda_handler  # noqa: PLC0415 - after the environment is set

    user = next(u.name for u in estate.users if len(estate.keys_of(u.name)) == 1)
    queue = stack.aws.client("sqs").create_queue(QueueName="keyreport-iam-events")["QueueUrl"]
    os.environ["KEYREPORT_EVENT_QUEUE_URL"] = queue  # the stack's IamEventQueue
    time.sleep(1.05 - datetime.now(UTC).microsecond / 1e6)  # a run is dated to the second: after the full run
    created = stack.aws.client("iam").create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    print(f"\n== The event path: an administrator creates a second access key for {user} ({mask_key_id(created)})")
    event = iam_event("CreateAccessKey", estate.account_id, user)
    print(
        f"CloudTrail's event ({event['detail-type']}, {event['detail']['eventName']}, userName {user}) reaches the "
        "queue; the trigger hands the handler one SQS batch"
    )
    started = time.monotonic()
    with contextlib.redirect_stdout(io.StringIO()):  # the event metrics' EMF line, which Lambda sends to its log
        answer = lambda_handler(sqs_batch([event], queue_arn(queue)), LocalLambdaContext())  # type: ignore[arg-type]
    seconds = time.monotonic() - started
    problems = [] if answer == {"batchItemFailures": []} else [f"the batch was not handled: {answer}"]
    store = stack.ingestion if sink == "logs_ingestion" else stack.collector
    runs = [r for r in store.rows(RUNS_TABLE) if r.get("Scope_s") == "user" and r.get("ScopeUser_s") == user]
    run = runs[-1] if runs else {}
    print(
        f"Re-read {user} from IAM and shipped a user snapshot in {seconds:.2f}s: run {run.get('RunId_g')}, "
        f"Status={run.get('Status_s')}, KeyRows={run.get('KeyRows_d')}, UserRows={run.get('UserRows_d')}"
    )
    workspace = LocalWorkspace.from_stores(store)
    try:
        query = f"KeyReport_CurrentKeys() | where user_s == '{user}' | project AccessKeyId_s, Status_s"
        shown = sorted((str(masked), str(status)) for masked, status in workspace.run(query).rows)
        [[account_keys]] = workspace.run("KeyReport_CurrentKeys() | count").rows
    finally:
        workspace.close()
    now = read_estate(stack.aws)
    truth = sorted((mask_key_id(k.access_key_id), k.status) for k in now.keys_of(user))
    if account_keys != now.key_count:  # the rest of the account still comes from the scheduled run's snapshot
        problems.append(f"KeyReport_CurrentKeys holds {account_keys} keys for the account; IAM has {now.key_count}")
    for masked, status in shown:
        print(f"  KeyReport_CurrentKeys: {user}  {masked}  {status}")
    if shown != truth:
        problems.append(f"KeyReport_CurrentKeys shows {shown} for {user}; IAM has {truth}")
    else:
        print(
            f"The dashboards show {user}'s {len(truth)} keys as IAM has them now, and the account's other "
            f"{account_keys - len(truth)} keys from the scheduled run, without waiting for the next one."
        )
    return problems
