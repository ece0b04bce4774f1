"""The run's figures as the field sees them: the EMF lines a real handler run writes, parsed as CloudWatch does."""

from __future__ import annotations

import json
from typing import Any

import pytest

import keyreport.handler
from keyreport.errors import RunFailed
from sandbox.lambda_context import LocalLambdaContext
from sandbox.stack import make_workspace_key
from tests.integration.conftest import World
from tests.integration.test_organization import organization, queue_arn  # noqa: F401 (a fixture)

NAMESPACE = "KeyReport/sandbox-stack"
COUNTS = ["SuccessfulRuns", "FailedRuns", "Users", "Keys", "RecordsShipped", "RecordsSpilled", "RecordsFailed"]


def emf_lines(out: str) -> list[dict[str, Any]]:
    """Every line CloudWatch would read as embedded metric format: JSON objects with an `_aws` directive."""
    lines = []
    for text in out.splitlines():
        try:
            line = json.loads(text)
        except ValueError:
            continue
        if isinstance(line, dict) and "_aws" in line:
            lines.append(line)
    return lines


def metric_values(line: dict[str, Any]) -> dict[str, float]:
    [directive] = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == NAMESPACE
    assert directive["Dimensions"] == [["Account", "service"], ["service"]]
    units = {metric["Name"]: metric["Unit"] for metric in directive["Metrics"]}
    assert units == {**dict.fromkeys([*COUNTS, "UsersSkipped"], "Count"), "RunDuration": "Seconds"}
    return {name: line[name][0] for name in units}


@pytest.fixture
def namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYREPORT_METRICS_NAMESPACE", NAMESPACE)


@pytest.mark.usefixtures("namespace")
def test_a_run_emits_one_emf_line_with_its_figures(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    summary = world.invoke()
    [line] = emf_lines(capsys.readouterr().out)
    assert (line["Account"], line["service"]) == (world.estate.account_id, "keyreport")
    values = metric_values(line)
    keys = world.estate.key_count
    assert {name: values[name] for name in COUNTS} == {
        "SuccessfulRuns": 1,
        "FailedRuns": 0,
        "Users": summary["Users"],
        "Keys": keys,
        "RecordsShipped": keys,
        "RecordsSpilled": 0,
        "RecordsFailed": 0,
    }
    assert values["UsersSkipped"] == 0
    assert values["RunDuration"] == pytest.approx(summary["DurationSeconds"], abs=0.01) and values["RunDuration"] > 0


@pytest.mark.usefixtures("namespace")
def test_a_run_that_spilled_says_so_in_its_metrics(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.stack.collector.set_key(make_workspace_key("another workspace"))
    with pytest.raises(RunFailed) as failed:
        world.invoke()
    [line] = emf_lines(capsys.readouterr().out)
    values = metric_values(line)
    assert (values["SuccessfulRuns"], values["RecordsShipped"], values["RecordsSpilled"]) == (
        0,
        0,
        failed.value.summary.spilled,
    )
    assert values["RecordsSpilled"] == world.estate.key_count


def test_a_check_emits_no_metrics(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert keyreport.handler.lambda_handler({"keyreport": "check"}, LocalLambdaContext(900))["passed"]  # type: ignore[arg-type]
    assert emf_lines(capsys.readouterr().out) == []


@pytest.mark.usefixtures("namespace")
def test_member_accounts_each_get_their_own_line(
    world: World,
    organization: dict[str, Any],  # noqa: F811 (the fixture imported above)
    capsys: pytest.CaptureFixture[str],
) -> None:
    members = [account for account in organization["estates"] if account != world.estate.account_id][:2]
    event = {
        "Records": [
            {"messageId": f"m-{n}", "body": json.dumps({"account_id": account}), "eventSource": "aws:sqs"}
            | {"eventSourceARN": queue_arn(world, organization["queue"])}
            for n, account in enumerate(members)
        ]
    }
    assert keyreport.handler.lambda_handler(event, LocalLambdaContext(900)) == {"batchItemFailures": []}  # type: ignore[arg-type]
    lines = emf_lines(capsys.readouterr().out)
    assert [line["Account"] for line in lines] == members
    for line in lines:
        keys = organization["estates"][line["Account"]].key_count
        assert (metric_values(line)["RecordsShipped"], metric_values(line)["SuccessfulRuns"]) == (keys, 1)
