"""The event path: IAM CloudTrail events, straight from an EventBridge rule or batched through SQS, become one
user-scope run per user they name (keyreport.user_runs), in accounts keyreport reads and nowhere else.

Events for the same user in one invocation coalesce into one re-read (the SQS batching window makes that
a burst); the scheduled run reconciles whatever an event missed.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from keyreport.aws import iam_events, organization
from keyreport.errors import AccountUnreachable, DeadlineReached, RunFailed, aws_problem
from keyreport.log import logger
from keyreport.metrics import EventFigures, publish_events
from keyreport.user_runs import UserRun, run_users

if TYPE_CHECKING:
    from keyreport.aws.clients import AwsClients
    from keyreport.deadline import Deadline
    from keyreport.wiring import Wiring


def is_event_path(event: dict[str, Any], event_queue_url: str | None) -> bool:
    """An IAM event delivered directly, or an SQS batch of the event queue (any record of it)."""
    if iam_events.is_iam_event(event):
        return True
    records = event.get("Records")
    if not event_queue_url or not isinstance(records, list):
        return False
    return any(iam_events.is_from_queue(record, event_queue_url) for record in records)


def handle(event: dict[str, Any], wiring: Wiring, deadline: Deadline) -> dict[str, Any]:
    """Re-reads every user the events name; an SQS batch gets a partial batch response (failed users' messages
    return to the queue), a direct event raises RunFailed when its re-read failed (Lambda retries it)."""
    queue = wiring.settings.event_queue_url
    queued = not iam_events.is_iam_event(event)
    batch = iam_events.coalesce_sqs(event, str(queue)) if queued else iam_events.coalesce([event])
    figures = EventFigures(received=batch.received, refused=batch.refused, ignored=batch.ignored)
    failed: list[UserRun] = []
    retry: list[str] = []
    readable = _Accounts(wiring)
    for account_id, users in batch.by_account().items():
        clients = readable.clients(account_id)
        if clients is None:
            figures.refused += len(users)
            continue
        runs = run_users(
            clients,
            account_id,
            users,
            wiring.sink,
            deadline,
            fingerprint_key=wiring.deployment_key.fingerprint,
            concurrency=wiring.settings.iam_concurrency,
            spill=wiring.spill,
            tag_rules=wiring.settings.tag_rules,
        )
        shipped_at = datetime.now(UTC)
        for run in runs:
            user = (account_id, run.user_name)
            if run.succeeded:
                figures.reread += 1
                figures.gone += bool(run.snapshot and run.snapshot.gone)
                figures.lag_seconds.append((shipped_at - batch.first_event[user]).total_seconds())
            else:
                failed.append(run)
                retry.extend(batch.messages.get(user, []))
    publish_events(figures, wiring.settings.metrics_namespace)
    logger.info("IAM events handled", extra={"events": figures.as_dict()})
    if queued:
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in retry]}
    if failed:
        raise RunFailed(failed[0].summary)
    return figures.as_dict()


class _Accounts:
    """The accounts keyreport may read: its own, and in organization mode the ACTIVE accounts of the
    organization (through the member role). An event naming any other account changes nothing."""

    def __init__(self, wiring: Wiring) -> None:
        self.wiring = wiring
        self._members: organization.MemberSessions | None = None
        self._organization: set[str] | None = None

    def clients(self, account_id: str) -> AwsClients | None:
        wiring, org = self.wiring, self.wiring.settings.organization
        try:
            own = self._own_account()
            if account_id == own:
                return wiring.aws
            if org is None:
                return self._refused(account_id, f"not this function's account ({own}) in KEYREPORT_MODE=account")
            if account_id not in self._organization_accounts():
                return self._refused(account_id, "not an ACTIVE account of the organization")
            assert self._members is not None
            return wiring.clients_for(self._members.for_account(account_id))
        except AccountUnreachable as error:
            return self._refused(account_id, str(error))
        except (ClientError, BotoCoreError, DeadlineReached) as error:
            return self._refused(account_id, aws_problem(error))

    def _own_account(self) -> str:
        if self._members is None:
            org = self.wiring.settings.organization
            role, external_id = (org.member_role_name, org.external_id) if org else ("", None)
            self._members = organization.MemberSessions(self.wiring.session, self.wiring.aws.sts(), role, external_id)
        return self._members.own_account

    def _organization_accounts(self) -> set[str]:
        if self._organization is None:
            started = time.monotonic()
            self._organization = set(organization.active_accounts(self.wiring.client("organizations")))
            logger.debug("organization accounts listed", extra={"seconds": round(time.monotonic() - started, 3)})
        return self._organization

    @staticmethod
    def _refused(account_id: str, why: str) -> None:
        logger.error("IAM event for an account keyreport does not read", extra={"account": account_id, "why": why})
