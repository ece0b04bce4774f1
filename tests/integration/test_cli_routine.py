"""Routine actions at a terminal, as a user does them: no traceback, the documented exit code, the cause on top.

Every case runs `keyreport` in a separate process against the sandbox: a pipe its reader closes early,
Ctrl-C and SIGTERM in the middle of a run, argument mistakes, dead endpoints under `check`, a retired Data
Collector endpoint, a wrong client secret, and two `make sandbox` side by side.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from keyreport import queries
from keyreport.cli.interrupt import EXIT_INTERRUPTED
from keyreport.spill.bucket import PREFIX as SPILL_PREFIX
from sandbox.black_hole import SilentHost
from sandbox.local_kql import LocalWorkspace, StoredTable, TimeRange
from sandbox.stack import SPILL_BUCKET
from tests.integration.conftest import World

CLI = [sys.executable, "-m", "keyreport.cli"]


def environment(world: World, **extra: str) -> dict[str, str]:
    return world.stack.aws.env(os.environ) | world.env | extra


def keyreport(world: World, *args: str, timeout: float = 120, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=environment(world, **extra), capture_output=True, text=True, timeout=timeout, check=False
    )


def spilled(world: World) -> list[dict[str, object]]:
    """Every batch in the spill bucket: (its object's metadata and rows), newest runs included."""
    s3 = world.stack.aws.client("s3")
    listed = s3.list_objects_v2(Bucket=SPILL_BUCKET, Prefix=SPILL_PREFIX).get("Contents", [])
    return [json.loads(s3.get_object(Bucket=SPILL_BUCKET, Key=item["Key"])["Body"].read()) for item in listed]


# --- a closed pipe ---------------------------------------------------------------------------------------------


def test_a_dry_run_piped_into_head_exits_quietly(world: World) -> None:
    """`keyreport run --sink stdout | head -1`: the reader goes away after one line; no traceback, exit 141."""
    writer = subprocess.Popen(
        [*CLI, "run", "--sink", "stdout"],
        env=environment(world),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None and writer.stderr is not None
    first = writer.stdout.readline()
    writer.stdout.close()  # what head does after its lines
    code = writer.wait(timeout=120)
    errors = writer.stderr.read()
    assert json.loads(first)["record"]["RunId"]  # each line: {"table": ..., "record": ...}
    assert code == 141, errors
    assert "Traceback" not in errors and "BrokenPipeError" not in errors and "Exception ignored" not in errors


# --- Ctrl-C and SIGTERM ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_mid_run_spills_what_was_read_writes_the_run_row_and_exits_130(
    world: World, number: signal.Signals
) -> None:
    """The known point: the Data Collector answers 503 with Retry-After 1 s to every POST, so the run is retrying
    its first batch; the signal arrives after the second attempt. The run stops, spills the key records it
    holds, writes its run row (spilled: the sink is down) and exits 130 without a traceback."""
    world.stack.collector.fail_next(503, 1000, retry_after=1)
    before = len(world.stack.collector.history)
    run = subprocess.Popen([*CLI, "run"], env=environment(world), stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while len(world.stack.collector.history) < before + 2:
            assert run.poll() is None and time.monotonic() < deadline, "the run never reached the retries"
            time.sleep(0.05)
        sent = time.monotonic()
        run.send_signal(number)
        code = run.wait(timeout=30)
        stopped_after = time.monotonic() - sent
    finally:
        if run.poll() is None:
            run.kill()
        world.stack.collector.faults.clear()
    assert run.stderr is not None
    errors = run.stderr.read()
    assert code == EXIT_INTERRUPTED, errors
    assert "Traceback" not in errors and "KeyboardInterrupt" not in errors
    assert f"keyreport: {number.name}: stopping" in errors
    assert stopped_after < 15, f"took {stopped_after:.1f} s to stop"
    batches = spilled(world)
    runs = [row for batch in batches if batch["table"] == "runs" for row in batch["rows"]]  # type: ignore[attr-defined]
    keys = [row for batch in batches if batch["table"] == "keys" for row in batch["rows"]]  # type: ignore[attr-defined]
    assert len(runs) == 1, batches
    assert f"interrupted ({number.name})" in runs[0]["ErrorDetail"]
    assert runs[0]["Status"] == "failed"
    assert len(keys) == world.estate.key_count == runs[0]["RecordsSpilled"]


# --- argument mistakes -------------------------------------------------------------------------------------------

MISTAKES = {
    "a hop timeout that is no number": (["check", "--hop-timeout", "abc"], "keyreport check: argument --hop-timeout"),
    "a negative hop timeout": (["check", "--hop-timeout", "-1"], "keyreport check: argument --hop-timeout"),
    "a run timeout that is no number": (["run", "--timeout", "soon"], "keyreport run: argument --timeout"),
    "an unknown command": (["report"], "keyreport: argument COMMAND: invalid choice: 'report'"),
    "an unknown option": (["run", "--dry-run"], "keyreport: unrecognized arguments: --dry-run"),
    "an unknown sink": (["run", "--sink", "splunk"], "keyreport run: argument --sink: invalid choice: 'splunk'"),
    "a missing query name": (["query"], "keyreport query: the following arguments are required: name"),
}


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_every_argument_mistake_reads_the_same_way(world: World, name: str) -> None:
    args, said = MISTAKES[name]
    done = keyreport(world, *args)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert said in lines[0], done.stderr
    assert re.fullmatch(r"  \(keyreport( \w[\w-]*)? --help lists the options\)", lines[1]), done.stderr
    assert len(lines) == 2 and "Traceback" not in done.stderr and "usage:" not in done.stderr


def test_check_refuses_account_outside_organization_mode(world: World) -> None:
    done = keyreport(world, "check", "--account", "123456789012")
    assert done.returncode == 2
    assert "--account applies in organization mode only" in done.stderr


def test_help_describes_each_command_its_exit_codes_and_the_variables_it_reads(world: World) -> None:
    top = keyreport(world, "--help")
    assert top.returncode == 0
    for command in ("check", "run", "replay", "query", "queries", "kms-certificate"):
        assert f"  {command} " in top.stdout, command
    for code in ("0 ", "1 ", "2 ", "3 ", "130", "141"):
        assert f"\n  {code}" in top.stdout, code
    run = keyreport(world, "run", "--help").stdout
    assert "exit codes: 0 everything delivered" in run
    for variable in ("KEYREPORT_SINK", "KEYREPORT_DCE_ENDPOINT", "KEYREPORT_SPILL_BUCKET", "AZURE_CLIENT_ID"):
        assert re.search(rf"^  {variable} +\S", run, re.MULTILINE), variable
    assert "KEYREPORT_WORKSPACE_ID" in keyreport(world, "query", "--help").stdout


# --- check: fast and honest failure ---------------------------------------------------------------------------


def test_check_fails_a_refused_aws_endpoint_within_the_hop_timeout_and_checks_nothing_behind_it(world: World) -> None:
    """Ten attempts per call (botocore's retries) would take a minute: the hop ends inside its timeout, says
    refused (not a firewall), and every AWS hop behind the identity is "not checked"."""
    started = time.monotonic()
    done = keyreport(
        world, "check", "--hop-timeout", "3", AWS_ENDPOINT_URL="http://127.0.0.1:9", KEYREPORT_AWS_MAX_ATTEMPTS="10"
    )
    took = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    identity = next(line for line in lines if line.startswith("✗ aws identity"))
    assert "refused the connection" in done.stdout, done.stdout
    assert "firewall dropping" not in done.stdout
    behind = [line for line in lines if line.startswith(("· iam:", "· credential report", "· spill bucket"))]
    assert len(behind) == 6 and all("not checked: needs" in line for line in behind), done.stdout
    assert not any(line.startswith("✓ iam:") for line in lines)
    assert lines[-2].startswith("  first failure: aws identity"), lines[-3:]
    assert took < 15, f"check took {took:.1f} s ({identity})"


def test_check_tells_a_silent_endpoint_from_a_refused_one(world: World) -> None:
    with SilentHost() as silent:
        started = time.monotonic()
        done = keyreport(world, "check", "--hop-timeout", "2", AWS_ENDPOINT_URL=silent.url("http"))
        took = time.monotonic() - started
    assert done.returncode == 1
    identity = next(line for line in done.stdout.splitlines() if line.startswith("✗ aws identity"))
    assert "refused" not in identity
    assert "did not answer" in done.stdout or "silent" in done.stdout, done.stdout
    assert took < 15


# --- a retired Data Collector endpoint, and a wrong key -----------------------------------------------------------


@pytest.mark.parametrize("answer", ["gone", "forbidden", "not-found"])
def test_check_tells_a_retired_data_collector_from_a_wrong_key_and_names_the_switch(world: World, answer: str) -> None:
    world.stack.collector.retire(answer)
    try:
        done = keyreport(world, "check")
    finally:
        world.stack.collector.retire(None)
    assert done.returncode == 1
    collector = done.stdout[done.stdout.index("✗ data collector") :]
    assert "not a wrong key" in collector and "wrong workspace key" not in collector
    assert "KEYREPORT_SINK=logs_ingestion" in collector and "2026-09-14" in collector


def test_a_run_against_a_retired_data_collector_ends_with_the_switch(world: World) -> None:
    world.stack.collector.retire("gone")
    try:
        done = keyreport(world, "run")
    finally:
        world.stack.collector.retire(None)
    assert done.returncode == 1
    last = done.stderr.splitlines()[-2:]
    assert last[0].startswith("cause: the Data Collector API refused the requests themselves"), last
    assert "KEYREPORT_SINK=logs_ingestion" in last[1]


def test_a_wrong_client_secret_ends_with_the_aadsts_code_explained_and_no_log_lines(world: World) -> None:
    secrets = world.stack.aws.client("secretsmanager")
    secrets.put_secret_value(SecretId=world.stack.client_secret_arn, SecretString="not-the-secret")
    try:
        done = keyreport(world, "run")
    finally:
        secrets.put_secret_value(SecretId=world.stack.client_secret_arn, SecretString=world.stack.client_secret)
    assert done.returncode == 1
    last = done.stderr.splitlines()[-2:]
    assert last[0].startswith("cause: Entra refused the sign-in, AADSTS7000215: wrong client secret"), done.stderr
    assert last[1].startswith("fix:   create a client secret")
    assert not any(line.lstrip().startswith("{") for line in done.stderr.splitlines()), "JSON log on the terminal"
    assert "azure.identity" not in done.stderr and "get_token" not in done.stderr
    assert "not-the-secret" not in done.stderr


def test_records_no_bucket_took_are_counted_on_the_terminal_and_kept_in_a_file(world: World, tmp_path: Path) -> None:
    world.stack.collector.fail_next(400, 10)
    done = subprocess.run(
        [*CLI, "run"],
        env=environment(world, KEYREPORT_SPILL_BUCKET="no-such-bucket"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    world.stack.collector.faults.clear()
    assert done.returncode == 1
    summary = next(line for line in done.stderr.splitlines() if line.startswith("neither delivered nor spilled:"))
    assert f"keys: {world.estate.key_count} rows" in summary, summary
    assert len(done.stderr.splitlines()) < 40, "one line per record"
    kept = list(tmp_path.glob("keyreport-undelivered-*.jsonl"))
    assert len(kept) == 1 and oct(kept[0].stat().st_mode & 0o777) == "0o600"
    rows = [json.loads(line) for line in kept[0].read_text().splitlines()]
    assert sum(row["table"] == "keys" for row in rows) == world.estate.key_count


# --- outcomes that add up ------------------------------------------------------------------------------------------


def test_a_run_that_delivered_nothing_is_failed_and_its_replay_adds_up_in_the_health_query(world: World) -> None:
    """Every batch refused: the run shipped 0 of its records, so it is `failed`, not `partial`. After `keyreport
    replay` the records-per-run query counts the replayed rows as received: nothing missing, none negative."""
    world.stack.collector.fail_next(400, 10)
    done = keyreport(world, "run", "--json")
    world.stack.collector.faults.clear()
    assert done.returncode == 1
    summary = json.loads(done.stdout)
    assert (summary["Status"], summary["RecordsShipped"]) == ("failed", 0)
    assert keyreport(world, "replay").returncode == 0
    query = queries.find("ingestion-records-per-run")
    at = datetime.now(UTC) + timedelta(seconds=1)
    collector = world.stack.collector
    workspace = LocalWorkspace(
        StoredTable(
            name, collector.columns(name), [r for r in collector.rows(name) if r["RunId_g"] == summary["RunId"]]
        )
        for name in collector.tables()
    )
    try:
        [row] = workspace.run(query.text, time_range=TimeRange.last(query.timespan, at), now=at).records()
    finally:
        workspace.close()
    keys = world.estate.key_count
    assert (row["Shipped"], row["Spilled"], row["KeysAnnounced"], row["KeysArrived"]) == (0, keys, keys, keys)
    assert (row["Missing"], row["Complete"]) == (0, True)  # every row replayed: the run is a snapshot after all


# --- two sandboxes side by side -----------------------------------------------------------------------------------


def _start_sandbox(directory: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--users", "3", "--dir", str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    env: dict[str, str] = {}
    for line in process.stdout:
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").strip().partition("=")
            env[name] = value.strip("'")
        elif line.startswith("# Data Collector rows"):
            return process, env
    raise AssertionError("the sandbox printed no environment")


def test_two_sandboxes_side_by_side_both_pass_check(tmp_path: Path) -> None:
    """Two `make sandbox` in the same directory: each keeps its own CA, so both still verify."""
    first, first_env = _start_sandbox(tmp_path)
    try:
        second, second_env = _start_sandbox(tmp_path)
        try:
            assert first_env["KEYREPORT_CA_BUNDLE"] != second_env["KEYREPORT_CA_BUNDLE"]
            for env in (first_env, second_env):
                base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KEYREPORT_", "AZURE_"))}
                done = subprocess.run(
                    [*CLI, "check"], env=base | env, capture_output=True, text=True, timeout=120, check=False
                )
                assert done.returncode == 0, done.stdout + done.stderr
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)
    assert not list(tmp_path.glob("keyreport-sandbox-ca-*.pem")), "a stopped sandbox leaves its CA behind"
