"""The kill harness of test_deadline: the real handler in a child process, SIGKILLed at the simulated
Lambda timeout, and the accounting of what the emulators, the spill bucket and its log hold afterwards."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import boto3

from keyreport.settings import Settings
from keyreport.sinks.base import Table
from keyreport.wiring import Wiring
from tests.integration.conftest import KEYS_TABLE, RUNS_TABLE, World

ROOT = Path(__file__).resolve().parents[2]
IMPORT_SECONDS = 120.0  # the child's init phase on a loaded machine; not part of the Lambda timeout


@dataclass
class Invocation:
    """What one child did: whether its handler returned before the kill, how long it ran, its log."""

    exited: bool
    seconds: float
    log: list[dict[str, Any]] = field(default_factory=list)
    output: list[str] = field(default_factory=list)

    @property
    def run_ids(self) -> set[str]:
        return {line["run_id"] for line in self.log if "run_id" in line}

    def undelivered(self, table: Table) -> list[dict[str, Any]]:
        return [
            line["record"]
            for line in self.log
            if line.get("message") == "undelivered record" and line.get("table") == table.value
        ]


def _lines(stream: IO[str], sink: queue.Queue[str | None]) -> None:
    for line in stream:
        sink.put(line.rstrip("\n"))
    sink.put(None)


def invoke_and_kill(env: dict[str, str], timeout_seconds: float) -> Invocation:
    """Runs one invocation in a child; SIGKILL when `timeout_seconds` have passed since it was ready."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.lambda_child", str(timeout_seconds)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stderr is not None
    stdout: queue.Queue[str | None] = queue.Queue()
    stderr: queue.Queue[str | None] = queue.Queue()
    for stream, lines in ((child.stdout, stdout), (child.stderr, stderr)):
        threading.Thread(target=_lines, args=(stream, lines), daemon=True).start()
    output = [stdout.get(timeout=IMPORT_SECONDS) or ""]
    assert output == ["ready"], f"the child did not start: {output}"
    started = time.monotonic()
    returned = _handler_returned(stdout, output, started + timeout_seconds)
    seconds = time.monotonic() - started
    # Lambda ends the invocation when the handler returns (or freezes it); at the timeout, it kills.
    child.send_signal(signal.SIGKILL)
    child.wait()
    return Invocation(returned, seconds, _json_lines(_drain(stderr)), output + _drain(stdout))


def _handler_returned(stdout: queue.Queue[str | None], output: list[str], end: float) -> bool:
    """Reads the child's stdout until it says the handler returned (True) or the timeout passes."""
    while (left := end - time.monotonic()) > 0:
        try:
            line = stdout.get(timeout=left)
        except queue.Empty:
            return False
        if line is None:
            return False  # it died without returning
        output.append(line)
        if line.startswith("finished "):
            return True
    return False


def _drain(lines: queue.Queue[str | None]) -> list[str]:
    drained: list[str] = []
    while (line := lines.get(timeout=10)) is not None:
        drained.append(line)
    return drained


def _json_lines(lines: list[str]) -> list[dict[str, Any]]:
    parsed = []
    for line in lines:
        if line.startswith("{"):
            parsed.append(json.loads(line))
    return parsed


def child_env(world: World, overrides: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **world.env, **overrides}


@dataclass
class Accounting:
    """Where one run's records and run row ended up."""

    run_row: dict[str, Any]
    shipped: int
    spilled: int
    logged: int

    def value(self, name: str) -> Any:
        """A run row field by its contract name, whether stored (suffixed column) or spilled / logged."""
        return self.run_row[name] if name in self.run_row else self.run_row.get(f"{name}_d")


def account(world: World, invocation: Invocation, sink: str) -> Accounting:
    """Reads back one run from the workspace, the spill bucket and the child's log."""
    assert len(invocation.run_ids) == 1, f"expected one run in the log, got {invocation.run_ids}"
    (run_id,) = invocation.run_ids
    emulator = world.stack.collector if sink == "data_collector" else world.stack.ingestion
    stored = {
        table: [row for row in emulator.rows(name) if row.get("RunId_g") == run_id]
        for table, name in ((Table.KEYS, KEYS_TABLE), (Table.RUNS, RUNS_TABLE))
    }
    spill = Wiring(Settings.from_env(), boto3.Session()).spill  # the deployment's key authenticates them
    assert spill is not None
    spilled: dict[Table, list[dict[str, Any]]] = {table: [] for table in Table}
    # A spill whose answer never came (S3 trickling) may be stored although its rows were logged: they count
    # once, as logged (what the run row says); a replay may deliver them once more, which the queries absorb.
    logged_too = {line["maybe_spilled_as"] for line in invocation.log if "maybe_spilled_as" in line}
    for key in spill.object_keys():
        if f"/{run_id}/" in key and key not in logged_too:
            batch = spill.load(key)
            spilled[batch.table] += batch.rows
    run_rows = stored[Table.RUNS] + spilled[Table.RUNS] + invocation.undelivered(Table.RUNS)
    assert len(run_rows) == 1, f"the run row must exist exactly once (workspace, bucket or log): {run_rows}"
    return Accounting(
        run_rows[0], len(stored[Table.KEYS]), len(spilled[Table.KEYS]), len(invocation.undelivered(Table.KEYS))
    )


def record_measurement(name: str, timeout_seconds: float, margin_seconds: float, invocation: Invocation) -> None:
    """Appends the case's timing to $KEYREPORT_DEADLINE_MEASUREMENTS (docs/reliability.md's table)."""
    path = os.environ.get("KEYREPORT_DEADLINE_MEASUREMENTS")
    if path:
        line = {
            "case": name,
            "timeout": timeout_seconds,
            "margin": margin_seconds,
            "seconds": round(invocation.seconds, 3),
            "past_work_deadline": round(invocation.seconds - (timeout_seconds - margin_seconds), 3),
            "killed": not invocation.exited,
        }
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")
