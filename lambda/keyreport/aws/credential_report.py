"""The IAM credential report: asked for, waited on, and parsed into one row per user (last use, password, MFA)."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from keyreport.errors import aws_error_code
from keyreport.log import logger

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

_REPORT_NOT_READY = {"ReportInProgress", "ReportNotPresent", "ReportExpired"}
_ABSENT = {"N/A", "no_information", "not_supported", ""}
# A report that becomes ready is noticed within this long; one cheap IAM call per poll.
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class KeySlot:
    """One of the two access-key columns of the credential report."""

    active: bool
    last_rotated: datetime | None
    last_used_date: datetime | None
    last_used_service: str | None
    last_used_region: str | None


@dataclass(frozen=True)
class ReportRow:
    user: str
    arn: str
    password_enabled: bool | None
    mfa_active: bool | None
    slots: tuple[KeySlot, KeySlot]
    password_last_used: datetime | None = None
    password_last_changed: datetime | None = None

    def slot_for(self, create_date: datetime) -> KeySlot | None:
        """The slot whose rotation time is the key's creation time; None when that is not unambiguous."""
        matches = [
            s
            for s in self.slots
            if s.last_rotated is not None and abs((s.last_rotated - create_date).total_seconds()) < 1
        ]
        return matches[0] if len(matches) == 1 else None


@dataclass(frozen=True)
class CredentialReport:
    generated: datetime
    rows: dict[str, ReportRow]


def _bool(value: str) -> bool | None:
    return {"true": True, "false": False}.get(value.strip().lower())


def _date(value: str) -> datetime | None:
    value = value.strip()
    if value in _ABSENT:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _text(value: str) -> str | None:
    value = value.strip()
    return None if value in _ABSENT else value


def parse_credential_report(content: bytes, generated: datetime) -> CredentialReport:
    """The report's rows by user name; ValueError when it is not the CSV AWS documents."""
    try:
        return CredentialReport(generated=generated, rows=_report_rows(content))
    except (csv.Error, UnicodeDecodeError, KeyError) as error:
        raise ValueError(f"unreadable credential report: {error}") from None


def _report_rows(content: bytes) -> dict[str, ReportRow]:
    rows: dict[str, ReportRow] = {}
    for line in csv.DictReader(io.StringIO(content.decode("utf-8"), newline="")):
        slots = tuple(
            KeySlot(
                active=_bool(line.get(f"access_key_{n}_active", "")) is True,
                last_rotated=_date(line.get(f"access_key_{n}_last_rotated", "")),
                last_used_date=_date(line.get(f"access_key_{n}_last_used_date", "")),
                last_used_service=_text(line.get(f"access_key_{n}_last_used_service", "")),
                last_used_region=_text(line.get(f"access_key_{n}_last_used_region", "")),
            )
            for n in (1, 2)
        )
        user = line.get("user", "")
        # The root user has no console password flag of its own in the report ("not_supported").
        rows[user] = ReportRow(
            user=user,
            arn=line.get("arn", ""),
            password_enabled=_bool(line.get("password_enabled", "")),
            mfa_active=_bool(line.get("mfa_active", "")),
            slots=(slots[0], slots[1]),
            password_last_used=_date(line.get("password_last_used", "")),
            password_last_changed=_date(line.get("password_last_changed", "")),
        )
    return rows


def fetch_credential_report(
    iam: IAMClient,
    wait_seconds: float,
    sleep: Callable[[float], bool | None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> CredentialReport | None:
    """Generate (or reuse, within AWS's 4-hour window) the credential report; None if it cannot be had.

    Polled every POLL_SECONDS from the start of one poll to the next, so a report that becomes ready is
    seen within that time however long it took. `sleep` returning True (an Event's wait) stops the polling.
    """
    deadline = clock() + wait_seconds
    while True:
        polled = clock()
        try:
            state = iam.generate_credential_report()["State"]
            if state == "COMPLETE":
                response = iam.get_credential_report()
                return parse_credential_report(response["Content"], response["GeneratedTime"])
        except ClientError as error:
            code = aws_error_code(error)
            if code not in _REPORT_NOT_READY:
                logger.warning(
                    "credential report unavailable, falling back to per-key calls", extra={"error_code": code}
                )
                return None
        except ValueError as error:
            logger.warning("credential report unreadable, falling back to per-key calls", extra={"error": str(error)})
            return None
        if polled + POLL_SECONDS > deadline:
            logger.warning("credential report not ready in time, falling back to per-key calls")
            return None
        if sleep(max(0.0, polled + POLL_SECONDS - clock())):
            return None
