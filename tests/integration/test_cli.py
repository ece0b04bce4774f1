"""`keyreport` as a user runs it: a separate process, configured only by its environment."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from typing import Any

from tests.integration.conftest import World

# The working directory of the commands: a run that cannot deliver saves its rows in a file there.
WORKDIR = tempfile.mkdtemp(prefix="keyreport-cli-test-")


def keyreport(world: World, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = world.stack.aws.env(os.environ) | world.env | extra_env
    return subprocess.run(
        [sys.executable, "-m", "keyreport.cli", *args],
        cwd=WORKDIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_dry_run_prints_every_row_of_every_table_tagged_and_logs_only_on_stderr(world: World) -> None:
    done = keyreport(world, "run", "--sink", "stdout")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert all(set(line) == {"table", "record"} for line in lines), "stdout holds tagged rows and nothing else"
    tables: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        tables.setdefault(line["table"], []).append(line["record"])
    keys, users = tables["AWS_Access_Key_Report_CL"], tables["AWS_Access_Key_Report_Users_CL"]
    [run_row] = tables["AWS_Access_Key_Report_Run_CL"]
    assert len(keys) == world.estate.key_count
    assert sorted(u["user"] for u in users) == sorted([*(u.name for u in world.estate.users), "<root_account>"])
    assert {r["RunId"] for r in [*keys, *users, run_row]} == {run_row["RunId"]}
    assert run_row["Status"] == "ok" and "PasswordPolicy" in run_row
    assert not [line for line in done.stderr.splitlines() if line.startswith('{"table"')], "no row in the log"
    for secret in world.full_key_ids():
        assert secret not in done.stdout + done.stderr


def test_run_ships_and_prints_the_summary(world: World) -> None:
    done = keyreport(world, "run", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["RecordsShipped"] == world.estate.key_count and summary["Status"] == "ok"
    assert len(world.rows(summary["RunId"])) == world.estate.key_count


def test_a_refused_batch_exits_1_with_the_reason_and_no_traceback(world: World) -> None:
    world.stack.collector.fail_next(400, 10)
    done = keyreport(world, "run")
    assert done.returncode == 1
    assert "spilled for `keyreport replay`: " in done.stderr
    assert "s3://keyreport-spill-sandbox/keyreport/spill/" in done.stderr
    assert re.search(rf"^RecordsSpilled +{world.estate.key_count}$", done.stderr, re.MULTILINE)
    assert "Traceback" not in done.stderr


def test_a_configuration_mistake_exits_2_listing_every_problem(world: World) -> None:
    done = keyreport(world, "run", KEYREPORT_LOG_TYPE="Access-Keys", KEYREPORT_KEYVAULT_URL="http://vault")
    assert done.returncode == 2
    assert "KEYREPORT_LOG_TYPE='Access-Keys'" in done.stderr and "KEYREPORT_KEYVAULT_URL='http://vault'" in done.stderr
    assert "Traceback" not in done.stderr


def test_replay_redelivers_spilled_batches_then_deletes_them(world: World) -> None:
    world.stack.collector.fail_next(400, 2)  # the keys batch and the run row are refused, hence spilled
    failed = keyreport(world, "run", "--json")
    assert failed.returncode == 1
    run_id = json.loads(failed.stdout)["RunId"]
    assert world.rows(run_id) == []

    done = keyreport(world, "replay")

    assert done.returncode == 0, done.stderr
    assert "2 spilled batch(es) taken: 2 delivered (" in done.stderr
    assert "rows), 0 kept, 0 quarantined, 0 already delivered, 0 left" in done.stderr
    assert len(world.rows(run_id)) == world.estate.key_count
    s3 = world.stack.aws.client("s3")
    assert s3.list_objects_v2(Bucket="keyreport-spill-sandbox", Prefix="keyreport/spill/")["KeyCount"] == 0


def test_replay_needs_a_spill_bucket(world: World) -> None:
    done = keyreport(world, "replay", KEYREPORT_SPILL_BUCKET="")
    assert done.returncode == 2 and "KEYREPORT_SPILL_BUCKET is required" in done.stderr


def test_no_aws_credentials_is_one_line_and_exit_2(world: World, tmp_path: object) -> None:
    nowhere = f"{tmp_path}/none"
    done = keyreport(
        world,
        "run",
        AWS_ACCESS_KEY_ID="",
        AWS_SECRET_ACCESS_KEY="",
        AWS_SHARED_CREDENTIALS_FILE=nowhere,
        AWS_CONFIG_FILE=nowhere,
    )
    assert done.returncode == 2, done.stderr
    assert "no AWS credentials found: set AWS_PROFILE" in done.stderr and "Traceback" not in done.stderr


def test_an_unreachable_aws_endpoint_is_named_without_a_traceback(world: World) -> None:
    closed = "http://127.0.0.1:9"  # discard port: nothing listens, the connection is refused at once
    done = keyreport(world, "run", "--timeout", "20", AWS_ENDPOINT_URL=closed, KEYREPORT_AWS_MAX_ATTEMPTS="2")
    assert done.returncode == 1, done.stderr
    assert "cannot reach the AWS endpoint" in done.stderr and "AWS_ENDPOINT_URL" in done.stderr
    # Nothing of AWS answers, so not even the fingerprint key is read: the run row is still printed (and
    # logged, the spill bucket being unreachable too), `failed`, with the endpoint named.
    assert "Traceback" not in done.stderr and re.search(r"^Status +failed$", done.stderr, re.MULTILINE)


def test_aws_region_alone_is_honoured(world: World) -> None:
    done = keyreport(world, "run", "--sink", "stdout", AWS_DEFAULT_REGION="", AWS_REGION=world.stack.aws.region)
    assert done.returncode == 0, done.stderr
    keys = [line for line in done.stdout.splitlines() if line.startswith('{"table":"AWS_Access_Key_Report_CL"')]
    assert len(keys) == world.estate.key_count


def test_a_timeout_of_0_is_refused_rather_than_unlimited(world: World) -> None:
    done = keyreport(world, "run", "--timeout", "0")
    assert done.returncode == 2 and "give a number of seconds above 0" in done.stderr
