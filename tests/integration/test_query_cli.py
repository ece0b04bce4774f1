"""`keyreport query` / `keyreport queries` against the Log Analytics query emulator: real SDK, real HTTPS.

The emulator answers from the rows the real handler shipped, evaluated by duckdb-kql. These tests check
the client's side: the request (workspace, timespan, token audience), the three output formats, partial
results, service errors, retries and the command line's mistakes. What the results mean is checked
against the estate in test_query_results.py; here an answer is compared with the same query run locally
over the same stored rows.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from keyreport import cli, queries
from sandbox.local_kql import LocalWorkspace, TimeRange
from sandbox.logs_query import PUBLIC_AUDIENCE, SERVICE_RECORD_LIMIT
from sandbox.stack import CLIENT_ID, WORKSPACE_ID, Stack
from tests.integration.conftest import World, new_world

NOW_DEPENDENT = {"AgeDays", "HoursAgo", "IdleDays", "OverlapDays", "HoursSilent"}


@pytest.fixture(scope="module")
def shipped_once(stack: Stack) -> Iterator[World]:
    """One seeded account and one run for the whole module: these tests only read the workspace."""
    with pytest.MonkeyPatch.context() as patch:
        world = new_world(stack, patch)
        world.invoke()
        yield world


@pytest.fixture
def shipped(shipped_once: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for name, value in shipped_once.env.items():
        monkeypatch.setenv(name, value)
    emulator = shipped_once.stack.logs_query
    emulator.faults.clear()
    yield shipped_once
    emulator.faults.clear()
    emulator.max_rows = SERVICE_RECORD_LIMIT
    emulator.allow(CLIENT_ID)


def keyreport(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def local_answer(world: World, query_id: str) -> list[dict[str, Any]]:
    """The same query over the same stored rows, run here: what the emulator should have answered."""
    query = queries.find(query_id)
    workspace = LocalWorkspace.from_stores(world.stack.collector, world.stack.ingestion)
    try:
        return workspace.run(query.text, time_range=TimeRange.last(query.timespan)).records()
    finally:
        workspace.close()


def comparable(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{k: json.dumps(v, default=str) for k, v in row.items() if k not in NOW_DEPENDENT} for row in rows]


def test_json_output_is_the_workspaces_answer(shipped: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = keyreport(capsys, "query", "root-keys", "-o", "json")
    assert code == 0, err
    document = json.loads(out)
    assert (document["query"], document["workspace"], document["status"]) == ("root-keys", WORKSPACE_ID, "Success")
    [table] = document["tables"]
    assert [c["name"] for c in table["columns"]][:3] == ["Account", "AccessKey", "Status"]
    expected = [dict(row, Created=_iso(row["Created"]), LastUsed=_iso(row["LastUsed"]), AsOf=_iso(row["AsOf"]))
                for row in local_answer(shipped, "root-keys")]  # fmt: skip
    assert comparable(table["rows"]) == comparable(expected)
    assert {row["AccessKey"] for row in table["rows"]} == {key.access_key_id for key in shipped.estate.root_keys}


def test_the_request_carries_the_default_timespan_and_a_token_for_the_query_audience(
    shipped: World, capsys: pytest.CaptureFixture[str]
) -> None:
    issued = len(shipped.stack.entra.issued)
    code, _, err = keyreport(capsys, "query", "ingestion-stopped")
    assert code == 0, err
    body = shipped.stack.logs_query.queries[-1]
    assert body["query"] == queries.find("ingestion-stopped").text
    assert body["timespan"] == "PT2592000.0S"  # the header's P30D, as LogsQueryClient writes it
    assert shipped.stack.entra.issued[issued]["aud"] == PUBLIC_AUDIENCE


def test_table_output_lists_every_key_to_rotate(shipped: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = keyreport(capsys, "query", "rotation-due")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == [
        "Account",
        "User",
        "AccessKey",
        "Created",
        "AgeDays",
        "LastUsed",
        "LastService",
        "AsOf",
        "Stale",
    ]
    expected = local_answer(shipped, "rotation-due")
    assert lines[-1] == f"({len(expected)} rows)" and len(lines) == len(expected) + 3
    for row in expected:
        assert any(row["AccessKey"] in line and row["User"] in line for line in lines[2:-1])
    assert not [key_id for key_id in shipped.full_key_ids() if key_id in out]  # masked ids only
    # Other tests' runs share the session's workspace: check the shape of the ids, not this estate's.
    assert all(re.fullmatch(r"[A-Z0-9]{4}\.\.\.[A-Z0-9]{4}|root:[12]", row["AccessKey"]) for row in expected)


def test_csv_output_parses_back(shipped: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = keyreport(capsys, "query", "never-used", "-o", "csv", "--timespan", "P1D")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    expected = local_answer(shipped, "never-used")
    assert sorted((r["User"], r["AccessKey"]) for r in rows) == sorted((r["User"], r["AccessKey"]) for r in expected)
    assert shipped.stack.logs_query.queries[-1]["timespan"] == "PT86400.0S"


def test_a_partial_result_is_shown_and_reported_as_partial(shipped: World, capsys: pytest.CaptureFixture[str]) -> None:
    shipped.stack.logs_query.max_rows = 3
    code, out, err = keyreport(capsys, "query", "never-used", "-o", "json")
    assert code == 3
    document = json.loads(out)
    assert document["status"] == "PartialError" and document["error"]["code"] == "PartialError"
    assert len(document["tables"][0]["rows"]) == 3
    assert "PARTIAL RESULT" in err and "exceeded the internal record count limit 3" in err
    code, out, err = keyreport(capsys, "query", "never-used")
    assert code == 3 and out.splitlines()[-1] == "(3 rows)" and "PARTIAL RESULT" in err


def test_a_refused_query_exits_1_with_the_services_message(shipped: World, capsys: pytest.CaptureFixture[str]) -> None:
    shipped.stack.logs_query.forbid(CLIENT_ID)
    code, out, err = keyreport(capsys, "query", "rotation-due")
    assert (code, out) == (1, "")
    assert "403 InsufficientAccessError: The provided credentials have insufficient access" in err
    assert "Traceback" not in err


def test_a_query_the_sandbox_cannot_run_is_an_error_not_a_fake_answer(
    shipped: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = keyreport(capsys, "query", "key-creations-per-day")
    assert (code, out) == (1, "")
    assert "400 BadArgumentError" in err and "MakeSeriesOperator" in err and "Traceback" not in err


def test_a_token_for_another_clouds_audience_is_refused(
    shipped: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # usgov: the client asks Entra for https://api.loganalytics.us, which the public-cloud workspace refuses.
    monkeypatch.setenv("KEYREPORT_AZURE_CLOUD", "usgov")
    issued = len(shipped.stack.entra.issued)
    code, _, err = keyreport(capsys, "query", "root-keys")
    assert code == 1 and "401 InvalidTokenError: Invalid audience. Expected https://api.loganalytics.io" in err
    assert shipped.stack.entra.issued[issued]["aud"] == "https://api.loganalytics.us"


def test_a_throttled_query_is_retried(shipped: World, capsys: pytest.CaptureFixture[str]) -> None:
    shipped.stack.logs_query.fail_next(429, retry_after=0)
    shipped.stack.logs_query.fail_next(503)
    code, out, err = keyreport(capsys, "query", "root-keys", "-o", "csv")
    assert code == 0, err
    assert out.splitlines()[0].startswith("Account,AccessKey,Status")
    statuses = [e.status for e in shipped.stack.logs_query.history[-3:]]
    assert statuses == [429, 503, 200]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("query", "rotaton-due"), "no query named 'rotaton-due'. Did you mean: rotation-due"),
        (("query", "root-keys", "--timespan", "2 days"), "--timespan '2 days' is not an ISO 8601 duration"),
        (("query", "root-keys", "--server-timeout", "900"), "--server-timeout 900 is not between 1 and 600"),
        (("queries", "--show", "nope"), "no query named 'nope'"),
    ],
)
def test_command_line_mistakes_exit_2(
    shipped: World, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    code, out, err = keyreport(capsys, *args)
    assert (code, out) == (2, "")
    assert message in err and "Traceback" not in err


def test_a_missing_workspace_id_is_a_configuration_error(
    shipped: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KEYREPORT_WORKSPACE_ID")
    monkeypatch.delenv("KEYREPORT_KEYVAULT_URL")  # the sink's variables are not needed to query
    code, _, err = keyreport(capsys, "query", "root-keys")
    assert code == 2 and "KEYREPORT_WORKSPACE_ID is required for keyreport query" in err
    assert "KEYVAULT" not in err


def test_queries_lists_the_library_and_shows_one(shipped: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = keyreport(capsys, "queries")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == list(queries.library())
    code, out, _ = keyreport(capsys, "queries", "--show", "original-key-age")
    assert code == 0 and out == queries.find("original-key-age").text
    code, out, _ = keyreport(capsys, "queries", "--show", "KeyReport_Thresholds")
    assert code == 0 and out == queries.functions()["KeyReport_Thresholds"].text and "RotationDays = 90" in out


def test_as_a_user_runs_it(shipped: World) -> None:
    env = shipped.stack.aws.env(os.environ) | shipped.env
    done = subprocess.run(
        [sys.executable, "-m", "keyreport.cli", "query", "two-active-keys", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    users = {row["User"] for row in json.loads(done.stdout)["tables"][0]["rows"]}
    assert users == {row["User"] for row in local_answer(shipped, "two-active-keys")}


def _iso(value: Any) -> Any:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")
