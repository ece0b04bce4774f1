"""The run's figures as CloudWatch metrics in embedded metric format (Powertools Metrics): one line per account.

Each line carries two dimension sets: (Account, service) for per-account graphs, and (service) alone for the
template's alarms, which must not need to know the accounts. Only the Lambda publishes: on a workstation the
line would land on stdout, which a dry run keeps for records.
"""

from __future__ import annotations

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
