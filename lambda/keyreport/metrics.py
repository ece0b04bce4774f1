"""The run's figures as CloudWatch metrics in embedded metric format (Powertools Metrics): one line per account.

Each line carries two dimension sets: (Account, service) for per-account graphs, and (service) alone for the
template's alarms, which must not need to know the accounts. Only the Lambda publishes: on a workstation the
line would land on stdout, which a dry run keeps for records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from keyreport.records import RunSummary

SERVICE = "keyreport"
ACCOUNT_DIMENSION = "Account"


def run_figures(summary: RunSummary) -> dict[str, tuple[MetricUnit, float]]:
    """Every metric of one account's run: name -> (unit, value)."""
    count = MetricUnit.Count
    return {
        "SuccessfulRuns": (count, 1 if summary.status == "ok" else 0),
        "FailedRuns": (count, 1 if summary.status == "failed" else 0),
        "Users": (count, summary.users),
        "Keys": (count, summary.keys),
        "RecordsShipped": (count, summary.shipped),
        "RecordsSpilled": (count, summary.spilled),
        "RecordsFailed": (count, summary.failed),
        "UsersSkipped": (count, summary.users_skipped),
        "RunDuration": (MetricUnit.Seconds, round(summary.duration_seconds, 3)),
    }


def publish_run(summary: RunSummary, namespace: str) -> None:
    """Writes one EMF line (stdout, which Lambda sends to the function's log group) for this account's run."""
    metrics = Metrics(namespace=namespace, service=SERVICE)
    metrics.add_dimension(ACCOUNT_DIMENSION, summary.account_id)
    metrics.add_dimensions(service=SERVICE)
    for name, (unit, value) in run_figures(summary).items():
        metrics.add_metric(name=name, unit=unit, value=value)
    metrics.flush_metrics()


@dataclass
class EventFigures:
    """What one invocation of the event path did: events in, users re-read, event-to-rows lag per user."""

    received: int = 0
    refused: int = 0  # malformed, forged, or for an account keyreport does not read
    ignored: int = 0  # well-formed but nothing to do (a failed call, a root user's own call)
    reread: int = 0
    gone: int = 0
    lag_seconds: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, float]:
        lag = max(self.lag_seconds, default=0.0)
        return {
            "events_received": self.received,
            "events_refused": self.refused,
            "events_ignored": self.ignored,
            "users_reread": self.reread,
            "users_gone": self.gone,
            "max_event_to_rows_seconds": round(lag, 3),
        }


# EMF takes at most 100 values per metric and line (Powertools flushes a line early at 100): a larger burst
# publishes an even sample of its lags.
MAX_VALUES = 99


def event_figures(figures: EventFigures) -> dict[str, tuple[MetricUnit, list[float]]]:
    count = MetricUnit.Count
    lags = sorted(figures.lag_seconds)
    step = max(1, -(-len(lags) // MAX_VALUES))
    return {
        "EventsReceived": (count, [figures.received]),
        "EventsRefused": (count, [figures.refused]),
        "UsersReread": (count, [figures.reread]),
        "UsersGone": (count, [figures.gone]),
        "EventToRowsSeconds": (MetricUnit.Seconds, [round(lag, 3) for lag in lags[::step]]),
    }


def publish_events(figures: EventFigures, namespace: str) -> None:
    """One EMF line per invocation of the event path, dimensioned by service only (the alarms' dimension)."""
    metrics = Metrics(namespace=namespace, service=SERVICE)
    for name, (unit, values) in event_figures(figures).items():
        for value in values:
            metrics.add_metric(name=name, unit=unit, value=value)
    metrics.flush_metrics()
