"""CloudTrail IAM events as EventBridge delivers them: which user of which account to re-read, nothing more.

An event is a hint, never data: only `recipientAccountId` and the user it names are taken, both checked
strictly, and the user is then re-read from IAM (keyreport.user_runs). Nothing else an event says (key ids,
statuses, tags) is trusted or shipped, so a forged event can at most cause one harmless re-read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from keyreport.log import logger
from keyreport.records import ACCOUNT_ID

DETAIL_TYPE = "AWS API Call via CloudTrail"
SOURCE = "aws.iam"
EVENT_SOURCE = "iam.amazonaws.com"
# The calls that change what keyreport reports of a user: its existence, keys, password, MFA and tags.
EVENT_NAMES = frozenset(
    {
        "CreateUser",
        "DeleteUser",
        "CreateAccessKey",
        "UpdateAccessKey",
        "DeleteAccessKey",
        "CreateLoginProfile",
        "DeleteLoginProfile",
        "UpdateLoginProfile",
        "EnableMFADevice",
        "DeactivateMFADevice",
        "DeleteVirtualMFADevice",
        "TagUser",
        "UntagUser",
    }
)
# Calls whose UserName may be left out to act on the caller itself ("the IAM user making the request").
SELF_SERVICE = frozenset(
    {
        "CreateAccessKey",
        "UpdateAccessKey",
        "DeleteAccessKey",
        "CreateLoginProfile",
        "UpdateLoginProfile",
        "DeleteLoginProfile",
        "DeactivateMFADevice",
    }
)
# IAM's rule for user names (CreateUser): ASCII letters, digits and +=,.@_- ; 1 to 64 characters.
USER_NAME = re.compile(r"[A-Za-z0-9+=,.@_-]{1,64}")
_EVENT_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z")
_QUOTE_LIMIT = 80  # a rejected value is quoted this far at most: a forged event must not fill the log


@dataclass(frozen=True)
class UserHint:
    """One event's hint: re-read `user_name` of `account_id`. `event_time` is when the call was made."""

    account_id: str
    user_name: str
    event_name: str
    event_time: datetime


@dataclass(frozen=True)
class Refused:
    """Why an event gives no hint: `ignored` for well-formed events that need nothing, else malformed."""

    reason: str
    ignored: bool = False


def _quoted(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _QUOTE_LIMIT else text[:_QUOTE_LIMIT] + "..."


def is_iam_event(event: Any) -> bool:
    """Whether an invocation payload claims to be one IAM CloudTrail event (checked fully by `hint_of`)."""
    return isinstance(event, dict) and event.get("detail-type") == DETAIL_TYPE and event.get("source") == SOURCE


def hint_of(event: Any) -> UserHint | Refused:
    """The user an EventBridge "AWS API Call via CloudTrail" IAM event asks to re-read, or why it asks none."""
    detail = event.get("detail") if is_iam_event(event) else None
    if not isinstance(detail, dict):
        return Refused(f"not an IAM event as EventBridge delivers one ({SOURCE}, {DETAIL_TYPE}, a detail object)")
    refused = _call_refused(detail)
    if refused is not None:
        return refused
    name, account = detail["eventName"], detail.get("recipientAccountId")
    if not isinstance(account, str) or not ACCOUNT_ID.fullmatch(account):
        return Refused(f"recipientAccountId {_quoted(account)} is not a 12-digit account id")
    if event.get("account") != account:  # EventBridge's envelope names the account the event came from
        return Refused(f"the envelope's account {_quoted(event.get('account'))} is not recipientAccountId {account}")
    moment = _event_time(detail.get("eventTime"))
    if moment is None:
        return Refused(f"eventTime {_quoted(detail.get('eventTime'))} is not an ISO 8601 UTC time")
    user = _user_of(detail, account, name)
    return user if isinstance(user, Refused) else UserHint(account, user, name, moment)


def _call_refused(detail: dict[str, Any]) -> Refused | None:
    """Why the call the detail describes needs no re-read (not IAM's, not one of ours, failed), or None."""
    if detail.get("eventSource") != EVENT_SOURCE:
        return Refused(f"detail.eventSource is {_quoted(detail.get('eventSource'))}, not {EVENT_SOURCE}")
    name = detail.get("eventName")
    if not isinstance(name, str) or name not in EVENT_NAMES:
        return Refused(f"eventName {_quoted(name)} changes nothing keyreport reports", ignored=True)
    if detail.get("errorCode") is not None:  # the call failed: nothing changed
        return Refused(f"{name} failed ({_quoted(detail.get('errorCode'))}): nothing changed", ignored=True)
    return None


def _event_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not _EVENT_TIME.fullmatch(value):
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _user_of(detail: dict[str, Any], account: str, name: str) -> str | Refused:
    """requestParameters.userName; without one, the calling IAM user of the same account for a self-service call
    (e.g. CreateAccessKey for one's own key). The root user and roles have no IAM user to re-read."""
    parameters = detail.get("requestParameters")
    if parameters is not None and not isinstance(parameters, dict):
        return Refused("requestParameters is not an object")
    named = (parameters or {}).get("userName")
    if named is not None:
        return _checked_name("userName", named)
    if name not in SELF_SERVICE:  # DeleteVirtualMFADevice names a device: DeactivateMFADevice named its user
        return Refused(f"{name} names no user", ignored=name == "DeleteVirtualMFADevice")
    caller = detail.get("userIdentity")
    caller_type = caller.get("type") if isinstance(caller, dict) else None
    if not isinstance(caller, dict) or caller_type != "IAMUser":
        return Refused(
            f"the event names no user and its caller is {_quoted(caller_type)}, not an IAM user "
            "(the root user's credentials are in the scheduled run's credential report)",
            ignored=caller_type == "Root",
        )
    if caller.get("accountId") != account:
        return Refused(f"the calling IAM user's account {_quoted(caller.get('accountId'))} is not {account}")
    return _checked_name("userIdentity.userName", caller.get("userName"))


def _checked_name(where: str, value: Any) -> str | Refused:
    if isinstance(value, str) and USER_NAME.fullmatch(value):
        return value
    return Refused(f"{where} {_quoted(value)} is not an IAM user name")


@dataclass
class Coalesced:
    """The users a batch of events asks to re-read, once each, with the earliest event of each (its lag is
    the one that counts) and the messages that named it (they succeed or return to the queue together)."""

    first_event: dict[tuple[str, str], datetime] = field(default_factory=dict)
    messages: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    received: int = 0
    refused: int = 0
    ignored: int = 0

    def add(self, hint: UserHint | Refused, message_id: str | None = None) -> None:
        self.received += 1
        if isinstance(hint, Refused):
            self.ignored += hint.ignored
            self.refused += not hint.ignored
            log = logger.info if hint.ignored else logger.warning
            log("IAM event ignored" if hint.ignored else "IAM event rejected", extra={"reason": hint.reason})
            return
        user = (hint.account_id, hint.user_name)
        known = self.first_event.get(user)
        self.first_event[user] = hint.event_time if known is None else min(known, hint.event_time)
        if message_id is not None:
            self.messages.setdefault(user, []).append(message_id)

    def by_account(self) -> dict[str, list[str]]:
        accounts: dict[str, list[str]] = {}
        for account, user in sorted(self.first_event):
            accounts.setdefault(account, []).append(user)
        return accounts


def coalesce(events: Iterable[Any]) -> Coalesced:
    """Direct EventBridge invocations carry one event; a list is accepted for tests and replays."""
    batch = Coalesced()
    for event in events:
        batch.add(hint_of(event))
    return batch


def is_from_queue(record: Any, queue_url: str) -> bool:
    """Whether an SQS record's source ARN (arn:<partition>:sqs:<region>:<account>:<name>) is the queue of the URL."""
    source = record.get("eventSourceARN") if isinstance(record, dict) else None
    if not isinstance(source, str) or record.get("eventSource") != "aws:sqs":
        return False
    return source.split(":")[4:] == queue_url.rstrip("/").split("/")[-2:]


def coalesce_sqs(event: dict[str, Any], queue_url: str) -> Coalesced:
    """The events of an SQS batch whose messages an EventBridge rule sent (each body one event)."""
    batch = Coalesced()
    for record in event.get("Records", []):
        message_id = record.get("messageId") if isinstance(record, dict) else None
        if not is_from_queue(record, queue_url) or not isinstance(message_id, str):
            batch.add(Refused("an SQS record not from the configured event queue"))
            continue
        try:
            body = json.loads(record.get("body", ""))
        except (TypeError, ValueError, RecursionError):  # a forged body may nest deeper than the parser goes
            batch.add(Refused("an SQS message whose body is not JSON"), message_id)
            continue
        batch.add(hint_of(body), message_id)
    return batch
