"""Progress on a terminal, and none off one: `keyreport run`, `replay` and `check` with stderr on a pseudo-terminal."""

from __future__ import annotations

import fcntl
import json
import os
import struct
import subprocess
import sys
import termios

from sandbox.stack import make_workspace_key
from tests.integration.conftest import World
from tests.integration.test_cli import keyreport as piped


def on_terminal(world: World, *args: str, **extra_env: str) -> tuple[int, str, str]:
    """Runs keyreport with stderr on a pseudo-terminal (stdout a pipe); returns exit code, stdout, stderr."""
    env = world.stack.aws.env(os.environ) | world.env | {"TQDM_MININTERVAL": "0"} | extra_env
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 160, 0, 0))  # a terminal has a size
    process = subprocess.Popen(
        [sys.executable, "-m", "keyreport.cli", *args], env=env, stdout=subprocess.PIPE, stderr=follower
    )
    os.close(follower)
    received = bytearray()
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        received += chunk
    os.close(leader)
    assert process.stdout is not None
    out = process.stdout.read().decode()
    return process.wait(timeout=120), out, received.decode(errors="replace")


def test_run_shows_users_read_of_the_total_and_records_shipped(world: World) -> None:
    code, _, err = on_terminal(world, "run")
    assert code == 0, err
    users = world.estate.user_count
    assert "users read" in err and "shipped=" in err and "keys=" in err
    assert f"{users}/{users}" in err
    assert "Status" in err and "ok" in err  # the summary follows the progress


def test_run_json_on_a_terminal_prints_only_the_summary(world: World) -> None:
    code, out, err = on_terminal(world, "run", "--json")
    assert code == 0 and json.loads(out)["Status"] == "ok"
    assert "users read" not in err and "\r" not in err


def test_no_progress_when_stderr_is_not_a_terminal(world: World) -> None:
    done = piped(world, "run")
    assert done.returncode == 0 and "users read" not in done.stderr and "\r" not in done.stderr


def test_check_shows_the_hop_it_is_on(world: World) -> None:
    code, out, err = on_terminal(world, "check")
    assert code == 0, out + err
    assert "data collector" in err and "hop" in err
    assert out.splitlines()[-1] == "keyreport check: every hop passed"


def test_replay_counts_the_spilled_batches(world: World) -> None:
    world.stack.collector.set_key(make_workspace_key("another workspace"))
    assert piped(world, "run").returncode == 1  # everything spilled
    world.stack.collector.set_key(world.stack.workspace_key)
    code, _, err = on_terminal(world, "replay")
    assert code == 0, err
    assert "spilled batches" in err and "shipped=" in err
