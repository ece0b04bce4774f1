"""The IAM credential report: asked for, waited on, and parsed into one row per user (last use, password, MFA)."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from keyreport.deadline import current
from keyreport.errors import aws_error_code
from keyreport.log import logger
from keyreport.records import ROOT_USER

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
    slots_known: bool = True  # False when the key columns could not be read: the keys get per-key calls
    password_last_used: datetime | None = None
    password_last_changed: datetime | None = None
    created: datetime | None = None  # user_creation_time (the root user's: the account's creation)

    def slot_for(self, create_date: datetime) -> KeySlot | None:
        """The slot whose rotation time is the key's creation time; None when that is not unambiguous."""
        if not self.slots_known:
            return None
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
    problems: list[str] = field(default_factory=list)  # one line per row that could not be read whole

    def root_problem(self) -> str | None:
        """Why the root user's keys are not known from this report (only the report knows them), or None."""
        root = self.rows.get(ROOT_USER)
        if root is None:
            return f"the credential report has no {ROOT_USER} row: the root user's keys are unknown"
        if not root.slots_known:
            return "the credential report's root row is unreadable: the root user's keys are unknown"
        return None


_EMPTY_SLOT = KeySlot(
    active=False, last_rotated=None, last_used_date=None, last_used_service=None, last_used_region=None
)


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
    """The report's rows by user name, row by row: a row that cannot be read costs only its user (and is
    named in `problems`). ValueError only when the content is not the CSV AWS documents at all."""
    try:
        lines = content.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise ValueError("unreadable credential report: not UTF-8") from None
    try:
        header = _fields(lines[0]) if lines else []
    except csv.Error as error:
        raise ValueError(f"unreadable credential report: its header line: {error}") from None
    if not {"user", "arn"} <= set(header):
        raise ValueError("unreadable credential report: no header line naming the user and arn columns")
    report = CredentialReport(generated=generated, rows={})
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            row, problem = _row(header, _fields(line))
        except (csv.Error, ValueError) as error:
            report.problems.append(f"credential report line {number} skipped: {error}")
            continue
        report.rows[row.user] = row
        if problem:
            report.problems.append(f"credential report line {number} ({row.user}): {problem}")
    return report


def _fields(line: str) -> list[str]:
    """One CSV line's fields; AWS quotes fields or not, moto never does."""
    return next(csv.reader([line], strict=True), [])


def _row(header: list[str], fields: list[str]) -> tuple[ReportRow, str | None]:
    """One user's row, and what of it could not be read (its key columns) or None."""
    if len(fields) > len(header):
        fields = _realigned(header, fields)
    if len(fields) < len(header):
        raise ValueError(f"{len(fields)} of {len(header)} fields: the line is cut short")
    line = dict(zip(header, fields, strict=True))
    if not line["arn"].startswith("arn:"):
        raise ValueError("its arn column does not hold an ARN")
    try:
        slots, problem = (_slot(line, 1), _slot(line, 2)), None
    except ValueError as error:
        slots, problem = (_EMPTY_SLOT, _EMPTY_SLOT), f"key columns unreadable ({error}): keys read one by one"
    # The root user has no console password flag of its own in the report ("not_supported").
    row = ReportRow(
        user=line["user"],
        arn=line["arn"],
        password_enabled=_bool(line.get("password_enabled", "")),
        mfa_active=_bool(line.get("mfa_active", "")),
        slots=slots,
        slots_known=problem is None,
        password_last_used=_optional_date(line.get("password_last_used", "")),
        password_last_changed=_optional_date(line.get("password_last_changed", "")),
        created=_optional_date(line.get("user_creation_time", "")),
    )
    return row, problem


def _realigned(header: list[str], fields: list[str]) -> list[str]:
    """A row with more fields than the header: unquoted commas in the user name (IAM allows them) and so in
    its ARN. The ARN column is the first field that starts with `arn:` (names cannot hold a colon)."""
    if header[:2] != ["user", "arn"]:
        raise ValueError(f"{len(fields)} fields for {len(header)} columns, in an unknown column order")
    at = next((i for i, value in enumerate(fields) if i > 0 and value.startswith("arn:")), None)
    extra = len(fields) - len(header)
    if at is None or at - 1 > extra:
        raise ValueError(f"{len(fields)} fields for {len(header)} columns and no ARN to realign them by")
    arn_end = at + 1 + extra - (at - 1)
    user, arn = ",".join(fields[:at]), ",".join(fields[at:arn_end])
    if user != ROOT_USER and arn.rsplit("/", 1)[-1] != user:
        raise ValueError(f"{len(fields)} fields for {len(header)} columns, not realigned by the ARN")
    return [user, arn, *fields[arn_end:]]


def _optional_date(value: str) -> datetime | None:
    """A date that only the users' table shows: unreadable is unknown, not a reason to drop the row."""
    try:
        return _date(value)
    except ValueError:
        return None


def _slot(line: dict[str, str], n: int) -> KeySlot:
    return KeySlot(
        active=_bool(line.get(f"access_key_{n}_active", "")) is True,
        last_rotated=_date(line.get(f"access_key_{n}_last_rotated", "")),
        last_used_date=_date(line.get(f"access_key_{n}_last_used_date", "")),
        last_used_service=_text(line.get(f"access_key_{n}_last_used_service", "")),
        last_used_region=_text(line.get(f"access_key_{n}_last_used_region", "")),
    )


@dataclass
class ReportOutcome:
    """The report if it could be had, and every error the run row should count because of it."""

    report: CredentialReport | None
    errors: list[str] = field(default_factory=list)

    @property
    def root_keys_known(self) -> bool:
        return self.report is not None and self.report.root_problem() is None


def fetch_credential_report(
    iam: IAMClient,
    wait_seconds: float,
    sleep: Callable[[float], bool | None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> ReportOutcome:
    """Generate (or reuse, within AWS's 4-hour window) the credential report and read it row by row.

    Polled every POLL_SECONDS from the start of one poll to the next, so a report that becomes ready is
    seen within that time however long it took. `sleep` returning True (an Event's wait) stops the polling.
    Without the report every key costs a GetAccessKeyLastUsed call and the root user's keys are unknown:
    the outcome says why, so that the run row counts it instead of claiming a clean run.
    """
    report, why_not = _wait_for_report(iam, wait_seconds, sleep, clock)
    if report is None:
        return unusable(why_not)
    errors = list(report.problems)
    root_problem = report.root_problem()
    if root_problem:
        errors.append(root_problem)
    for error in errors:
        logger.warning("credential report degraded", extra={"problem": error})
    return ReportOutcome(report, errors)


def unusable(why: str) -> ReportOutcome:
    logger.warning("credential report unusable, falling back to per-key calls", extra={"reason": why})
    return ReportOutcome(None, [f"credential report unusable: {why}; the root user's keys are unknown"])


def _wait_for_report(
    iam: IAMClient, wait_seconds: float, sleep: Callable[[float], bool | None], clock: Callable[[], float]
) -> tuple[CredentialReport | None, str]:
    deadline = clock() + wait_seconds
    while True:
        polled = clock()
        try:
            state = iam.generate_credential_report()["State"]
            if state == "COMPLETE":
                response = iam.get_credential_report()
                return parse_credential_report(response["Content"], response["GeneratedTime"]), ""
        except ClientError as error:
            code = aws_error_code(error)
            if code not in _REPORT_NOT_READY:
                return None, f"IAM answered {code}"
        except ValueError as error:
            return None, str(error)
        if polled + POLL_SECONDS > deadline or not current().allows(POLL_SECONDS):
            return None, f"not ready after {wait_seconds:.0f} s or before the run's deadline"
        if sleep(max(0.0, polled + POLL_SECONDS - clock())):
            return None, "no longer needed: the run ended first"
