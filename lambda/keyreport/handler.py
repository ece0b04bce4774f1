"""AWS Lambda entry point: wiring only. Clients are built once per warm container and reused."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from keyreport import pipeline
from keyreport.deadline import Deadline
from keyreport.log import logger
from keyreport.records import summary_row
from keyreport.settings import ConfigError, Settings
from keyreport.sinks import Sink, build_sink
from keyreport.spill import SpillBucket

_SINKS: dict[Settings, Sink] = {}


def sink_for(settings: Settings, session: boto3.Session) -> Sink:
    """One sink per configuration, so cached secrets and tokens survive warm invocations."""
    if settings not in _SINKS:
        config = pipeline.aws_config(settings)
        _SINKS[settings] = build_sink(settings, lambda: session.client("secretsmanager", config=config))
    return _SINKS[settings]


def spill_for(settings: Settings, session: boto3.Session) -> SpillBucket | None:
    if not settings.spill_bucket:
        return None
    return SpillBucket(session.client("s3", config=pipeline.aws_config(settings)), settings.spill_bucket)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        logger.error("configuration error", extra={"problems": error.problems})
        raise
    session = boto3.Session()
    deadline = Deadline(context.get_remaining_time_in_millis, settings.deadline_margin_seconds)
    result = pipeline.run(settings, session, sink_for(settings, session), deadline, spill=spill_for(settings, session))
    if not result.summary.succeeded:
        raise pipeline.RunFailed(result.summary)
    return summary_row(result.summary)
