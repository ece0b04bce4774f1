"""AWS Lambda entry point: wiring only. Clients are built once per warm container and reused."""

from __future__ import annotations

import functools
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from keyreport import organization, pipeline
from keyreport.aws_clients import AwsClients
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
        _SINKS[settings] = build_sink(settings, AwsClients(session, config))
    return _SINKS[settings]


def spill_for(settings: Settings, session: boto3.Session) -> SpillBucket | None:
    if not settings.spill_bucket:
        return None
    return SpillBucket(session.client("s3", config=pipeline.aws_config(settings)), settings.spill_bucket)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, context, _session())


@functools.cache
def _session() -> boto3.Session:
    """One session per container: building one loads botocore's models again (~0.3 s per warm run)."""
    return boto3.Session()


def handle(event: dict[str, Any], context: LambdaContext, session: boto3.Session) -> dict[str, Any]:
    """The invocation with its AWS session injected: a schedule runs this account (or, in organization
    mode, enqueues every member account); an SQS event runs the member accounts it names."""
    try:
        return _dispatch(event, context, session, Settings.from_env())
    except ConfigError as error:
        # Raised by Settings, or later by what the settings lead to (an auth mode this package cannot run).
        logger.error("configuration error", extra={"problems": error.problems})
        raise


def _dispatch(
    event: dict[str, Any], context: LambdaContext, session: boto3.Session, settings: Settings
) -> dict[str, Any]:
    deadline = Deadline(context.get_remaining_time_in_millis, settings.deadline_margin_seconds)
    if organization.is_sqs_event(event):
        return _member_accounts(event, settings, session, deadline)
    if settings.mode == "organization":
        assert settings.queue_url is not None  # required by Settings in this mode
        config = pipeline.aws_config(settings)
        accounts = organization.enqueue_accounts(
            session.client("organizations", config=config), session.client("sqs", config=config), settings.queue_url
        )
        return {"accounts_enqueued": len(accounts)}
    result = pipeline.run(settings, session, sink_for(settings, session), deadline, spill=spill_for(settings, session))
    if not result.summary.succeeded:
        raise pipeline.RunFailed(result.summary)
    return summary_row(result.summary)


def _member_accounts(
    event: dict[str, Any], settings: Settings, session: boto3.Session, deadline: Deadline
) -> dict[str, Any]:
    """One member account per SQS message; failures go back to the queue, the rest are done."""
    sink, spill = sink_for(settings, session), spill_for(settings, session)
    sts = session.client("sts", config=pipeline.aws_config(settings))
    members = organization.MemberSessions(session, sts, settings.member_role_name, settings.external_id)

    def run_account(member: boto3.Session) -> bool:
        return pipeline.run(settings, member, sink, deadline, spill=spill).summary.succeeded

    def report_unreachable(account_id: str, reason: str) -> None:
        pipeline.report_unreachable_account(account_id, reason, sink, deadline, spill=spill)

    return organization.run_member_accounts(event, members, run_account, report_unreachable)
