"""The run metrics: which figures a run's status gives, and the namespace setting."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from keyreport.metrics import EventFigures, publish_events, run_figures
from keyreport.records import RunSummary
from keyreport.settings import Settings
from tests.unit.settings_helpers import problems_with

DRY_RUN = {"KEYREPORT_SINK": "stdout"}


def summary(**counts: object) -> RunSummary:
    started = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    return RunSummary("r", "111122223333", started, "test", "stdout", **counts)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("counts", "successful", "failed"),
    [({}, 1, 0), ({"users_skipped": 1}, 0, 0), ({"spilled": 2}, 0, 0), ({"failed": 1}, 0, 1)],
    ids=["ok", "partial-skipped", "partial-spilled", "failed"],
)
def test_only_an_ok_run_counts_as_successful(counts: dict[str, int], successful: int, failed: int) -> None:
    figures = run_figures(summary(**counts))
    assert (figures["SuccessfulRuns"][1], figures["FailedRuns"][1]) == (successful, failed)


def test_the_namespace_defaults_and_is_checked() -> None:
    assert Settings.from_env(DRY_RUN).metrics_namespace == "KeyReport"
    assert Settings.from_env({**DRY_RUN, "KEYREPORT_METRICS_NAMESPACE": "KeyReport/prod"}).metrics_namespace == (
        "KeyReport/prod"
    )
    assert problems_with(DRY_RUN, KEYREPORT_METRICS_NAMESPACE="AWS/Lambda") == [
        "KEYREPORT_METRICS_NAMESPACE='AWS/Lambda' must not start with AWS/ (reserved for AWS services)"
    ]
    [problem] = problems_with(DRY_RUN, KEYREPORT_METRICS_NAMESPACE="key|report")
    assert "is not a CloudWatch namespace" in problem


def test_the_event_paths_emf_line_names_every_figure_and_keeps_under_100_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    figures = EventFigures(received=1000, refused=3, ignored=2, reread=500, gone=4)
    figures.lag_seconds = [60.0 + index / 10 for index in range(500)]
    publish_events(figures, "KeyReport/test")
    [line] = capsys.readouterr().out.strip().splitlines()
    emf = json.loads(line)
    [directive] = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "KeyReport/test" and directive["Dimensions"] == [["service"]]
    assert {m["Name"] for m in directive["Metrics"]} == {
        "EventsReceived",
        "EventsRefused",
        "UsersReread",
        "UsersGone",
        "EventToRowsSeconds",
    }
    assert (emf["EventsReceived"], emf["UsersReread"], emf["UsersGone"]) == ([1000.0], [500.0], [4.0])
    lags = emf["EventToRowsSeconds"]
    assert len(lags) < 100 and min(lags) == 60.0 and max(lags) > 109.0  # an even sample of the 500
    assert figures.as_dict()["max_event_to_rows_seconds"] == 109.9
