"""AWS Lambda entry point: wiring only. Clients are built once per warm container and reused."""

from __future__ import annotations

import functools
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from keyreport import events, pipeline
from keyreport.aws import organization
from keyreport.aws.clients import AwsClients
from keyreport.deadline import Deadline, bounding
from keyreport.errors import ConfigError, RunFailed, SecretUnavailable
from keyreport.log import logger
from keyreport.metrics import publish_run
from keyreport.records import summary_row
from keyreport.settings import OrganizationSettings, Settings
from keyreport.validation import account_id_problem
from keyreport.wiring import Wiring, warm_wiring


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, context, _session())


@functools.cache
def _session() -> boto3.Session:
    """One session per container: building one loads botocore's models again (~0.3 s per warm run)."""
    return boto3.Session()


def handle(event: dict[str, Any], context: LambdaContext, session: boto3.Session) -> dict[str, Any]:
    """The invocation with its AWS session injected: a schedule runs this account (or, in organization
    mode, enqueues every member account); an SQS event runs the member accounts it names; an IAM CloudTrail
    event (directly, or batched through the event queue) re-reads the users it names."""
    try:
        settings = Settings.from_env()
        deadline = Deadline(context.get_remaining_time_in_millis, settings.deadline_margin_seconds)
        with bounding(deadline):  # every AWS and Azure call of the invocation, SDK internals included
            return _dispatch(event, warm_wiring(settings, session), deadline)
    except ConfigError as error:
        # Raised by Settings, or later by what the settings lead to (an auth mode this package cannot run).
        logger.error("configuration error", extra={"problems": error.problems})
        raise
    except SecretUnavailable as error:  # the fingerprint key: without it no row can be made
        logger.error("a secret the run needs is unavailable", extra={"error": str(error)})
        raise


def _dispatch(event: dict[str, Any], wiring: Wiring, deadline: Deadline) -> dict[str, Any]:
    if not isinstance(event, dict):  # Lambda passes whatever JSON the invoker sent: a list, a string, a number
        raise ConfigError(
            [f"the function was invoked with a JSON {type(event).__name__}, not an object: nothing was run "
             "(keyreport takes a schedule's event, an SQS batch or {\"keyreport\": \"check\"})"]
        )  # fmt: skip
    if event.get("keyreport") == "check":
        return _check(event, wiring)
    if events.is_event_path(event, wiring.settings.event_queue_url):
        return events.handle(event, wiring, deadline)
    if organization.is_sqs_event(event):
        if wiring.settings.organization is None:  # only organization mode has an account queue to trust
            raise ConfigError(["an SQS event reached the function in KEYREPORT_MODE=account; nothing was run"])
        return _member_accounts(event, wiring, wiring.settings.organization, deadline)
    if wiring.settings.organization is not None:
        queue = wiring.settings.organization.queue_url
        accounts = organization.enqueue_accounts(wiring.client("organizations"), wiring.client("sqs"), queue)
        return {"accounts_enqueued": len(accounts)}
    key = wiring.fingerprint_key  # read by the run, under its deadline
    result = pipeline.run(wiring.settings, wiring.aws, wiring.sink, deadline, fingerprint_key=key, spill=wiring.spill)
    publish_run(result.summary, wiring.settings.metrics_namespace)
    if not result.summary.succeeded:
        raise RunFailed(result.summary)
    return summary_row(result.summary)


def _check(event: dict[str, Any], wiring: Wiring) -> dict[str, Any]:
    """The test event {"keyreport": "check"} (optionally "account": a member account id): every hop, no row.

    A fresh Wiring, so no secret or token a warm container kept can hide a problem."""
    from keyreport.check import run_checks  # noqa: PLC0415 (it loads the Azure SDKs: only for this event)

    account = event.get("account")
    if account is not None and (not isinstance(account, str) or account_id_problem(account)):
        raise ConfigError([f"the check event's account {account!r} is not a 12-digit AWS account id"])
    report = run_checks(Wiring(wiring.settings, wiring.session), member_account=account)
    logger.info("check finished", extra={"check": report.as_dict()})
    return report.as_dict()


def _member_accounts(
    event: dict[str, Any], wiring: Wiring, org: OrganizationSettings, deadline: Deadline
) -> dict[str, Any]:
    """One member account per SQS message; failures go back to the queue, the rest are done."""
    members = organization.MemberSessions(wiring.session, wiring.aws.sts(), org.member_role_name, org.external_id)

    def run_account(member: boto3.Session) -> bool:
        account = wiring.aws if member is wiring.session else AwsClients(member, wiring.config)
        key = wiring.fingerprint_key
        result = pipeline.run(wiring.settings, account, wiring.sink, deadline, fingerprint_key=key, spill=wiring.spill)
        publish_run(result.summary, wiring.settings.metrics_namespace)
        return result.summary.succeeded

    def report_unreachable(account_id: str, reason: str) -> None:
        result = pipeline.report_unreachable_account(
            account_id,
            reason,
            wiring.sink,
            deadline,
            spill=wiring.spill,
            max_exception_days=wiring.settings.max_exception_days,
        )
        publish_run(result.summary, wiring.settings.metrics_namespace)

    region = wiring.session.region_name
    return organization.run_member_accounts(
        event, org.queue_url, members, run_account, report_unreachable, region=region
    )
