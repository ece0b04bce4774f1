"""KeyRecord -> row of the contract. Pure functions: no I/O, no clock of their own."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from keyreport.tags import DEFAULT_MAX_EXCEPTION_DAYS, TagRules, Tags

Row = dict[str, Any]

ROOT_USER = "<root_account>"
UNKNOWN_ROOT_KEYS = "root:unknown"  # the slot-style id of a root row that says "the report did not tell"
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
FINGERPRINT_PREFIX = "kf2-"
ACCOUNT_SCOPE, USER_SCOPE = "account", "user"  # a run reads a whole account, or re-reads one user
ACCOUNT_ID = re.compile(r"[0-9]{12}")  # ASCII only: str.isdigit() also takes other scripts' digits


@dataclass(frozen=True)
class KeyRecord:
    """One access key as the inventory found it. `access_key_id` is the full id: it stays in memory."""

    user_name: str
    user_arn: str
    access_key_id: str
    status: str
    create_date: datetime | None
    last_used_date: datetime | None = None
    last_used_service: str | None = None
    last_used_region: str | None = None
    password_enabled: bool | None = None
    mfa_active: bool | None = None
    # False when IAM could not tell the last use: the row then claims neither a use nor "never used".
    last_use_known: bool = True

    @property
    def account_id(self) -> str:
        return account_from_arn(self.user_arn)


@dataclass(frozen=True)
class PasswordPolicy:
    """The account password policy (GetAccountPasswordPolicy); present=False: the account has none."""

    present: bool
    minimum_length: int | None = None
    reuse_prevention: int | None = None  # 0: reuse not prevented
    require_symbols: bool | None = None
    require_numbers: bool | None = None
    require_uppercase: bool | None = None
    require_lowercase: bool | None = None
    max_age_days: int | None = None  # None: passwords never expire

    def row(self) -> Row:
        """The run row's policy fields. No policy reads as nothing required (0 and false), so that each column
        exists from the first run (the Data Collector API creates a column with the first value it sees); only
        MaxPasswordAge is left out when passwords never expire."""
        fields = {
            "PasswordPolicy": self.present,
            "MinPasswordLength": self.minimum_length or 0,
            "PasswordReusePrevention": self.reuse_prevention or 0,
            "RequireSymbols": bool(self.require_symbols),
            "RequireNumbers": bool(self.require_numbers),
            "RequireUppercase": bool(self.require_uppercase),
            "RequireLowercase": bool(self.require_lowercase),
            "MaxPasswordAge": self.max_age_days,
        }
        return {name: value for name, value in fields.items() if value is not None}


@dataclass
class RunSummary:
    """What one run did for one account; becomes the AWS_Access_Key_Report_Run row."""

    run_id: str
    account_id: str
    started: datetime
    collector_version: str
    sink: str
    users: int = 0
    keys: int = 0
    users_skipped: int = 0
    users_not_read: int = 0  # listed, not read before the deadline
    shipped: int = 0
    failed: int = 0
    spilled: int = 0
    duration_seconds: float = 0.0
    inventory_complete: bool = True
    read_errors: int = 0  # users or keys that could not be read, or a read cut short: the snapshot has gaps
    key_rows: int = 0  # rows this run produced for the keys table (shipped, spilled or failed)
    user_rows: int = 0  # rows this run produced for the users table
    scope: str = ACCOUNT_SCOPE
    scope_user: str | None = None  # the user of a user-scope run
    user_deleted: bool | None = None  # a user-scope run found its user gone (NoSuchEntity)
    errors: list[str] = field(default_factory=list)
    spill_keys: list[str] = field(default_factory=list)
    password_policy: PasswordPolicy | None = None  # None: not read (the account's posture, see posture_not_read)
    posture_not_read: list[str] = field(default_factory=list)  # what of it IAM refused, and why
    tags_read: bool = False  # the owner and exception tags of every user of the scope were read
    tags_not_read: str = ""  # why not (the IAM error code), when tags_read is False
    max_exception_days: int = DEFAULT_MAX_EXCEPTION_DAYS  # KEYREPORT_MAX_EXCEPTION_DAYS of the run

    @property
    def status(self) -> str:
        """ok, partial (something delivered, something not), or failed (incomplete, lost, or nothing delivered)."""
        if self.failed or not self.inventory_complete or (self.keys and not self.shipped):
            return "failed"
        if self.spilled or self.users_skipped or self.users_not_read or self.errors:
            return "partial"
        return "ok"

    @property
    def inventory_read(self) -> bool:
        """Every user of the scope was read without error: with every announced row arrived, a snapshot."""
        return self.inventory_complete and not self.users_not_read and not self.read_errors

    @property
    def succeeded(self) -> bool:
        """Every key was read and delivered: anything less must fail the run so retries and alarms see it.

        A user deleted during the run is no error (it has no keys any more); a user that could not be read is.
        """
        complete = self.inventory_complete and not self.users_not_read
        return complete and self.failed == 0 and self.spilled == 0 and not self.errors


def account_from_arn(arn: str) -> str:
    parts = arn.split(":")
    if len(parts) < 6 or not ACCOUNT_ID.fullmatch(parts[4]):
        raise ValueError(f"not an IAM ARN with a 12-digit account id: {arn!r}")
    return parts[4]


def format_timestamp(moment: datetime) -> str:
    """UTC ISO 8601 to the second; naive datetimes are taken as UTC (botocore and moto both use UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    utc = moment.astimezone(UTC)
    return f"{utc.year:04d}{utc:-%m-%dT%H:%M:%SZ}"  # strftime's %Y drops leading zeros (year 999 -> "999")


def parse_timestamp(text: str) -> datetime:
    return datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=UTC)


def mask_key_id(key_id: str) -> str:
    """First 4 + '...' + last 4: enough to find the key in the console, never the whole id."""
    if key_id.startswith("root:"):
        return key_id
    if len(key_id) <= 12:  # too short to show 8 characters of it without showing most of it
        return "*" * len(key_id)
    return f"{key_id[:4]}...{key_id[-4:]}"


def fingerprint(key_id: str, key: bytes) -> str:
    """A stable id for joining runs: HMAC-SHA256 under the deployment's fingerprint key.

    Keyed because an access key id is guessable from what a row shows (the account id is encoded in it,
    the masked id gives 8 more characters: about 2^20 candidates); without the key no guess can be checked.
    The `kf2-` prefix keeps Azure from typing it as a GUID and tells it apart from the unkeyed `kf1-`.
    """
    digest = hmac.new(key, key_id.encode(), hashlib.sha256).hexdigest()
    return f"{FINGERPRINT_PREFIX}{digest[:40]}"


def whole_days(later: datetime, earlier: datetime) -> int:
    return max(0, (_aware(later) - _aware(earlier)).days)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def key_row(record: KeyRecord, *, run_time: datetime, run_id: str, fingerprint_key: bytes) -> Row:
    """The contract's record; fields that do not apply are left out (Azure drops nulls anyway)."""
    key_identity = record.access_key_id
    if key_identity.startswith("root:"):
        key_identity = f"{record.account_id}:{key_identity}"
    row: Row = {
        "loggedDate": format_timestamp(run_time),
        "account_number": record.account_id,
        "user": record.user_name,
        "UserArn": record.user_arn,
        "AccessKeyId": mask_key_id(record.access_key_id),
        "KeyFingerprint": fingerprint(key_identity, fingerprint_key),
        "Status": record.status,
    }
    if record.create_date is not None:
        row["CreateDate"] = format_timestamp(record.create_date)
        row["KeyAgeDays"] = whole_days(run_time, record.create_date)
    if record.last_used_date is not None:
        row["LastUsedDate"] = format_timestamp(record.last_used_date)
        row["DaysSinceLastUse"] = whole_days(run_time, record.last_used_date)
        if record.last_used_service:
            row["ServiceName"] = record.last_used_service
        if record.last_used_region:
            row["Region"] = record.last_used_region
    if record.last_use_known:
        row["NeverUsed"] = record.last_used_date is None
    if record.password_enabled is not None:
        row["PasswordEnabled"] = record.password_enabled
    if record.mfa_active is not None:
        row["MfaActive"] = record.mfa_active
    row["RunId"] = run_id
    return row


def summary_row(summary: RunSummary) -> Row:
    return (
        {
            "loggedDate": format_timestamp(summary.started),
            "account_number": summary.account_id,
            "RunId": summary.run_id,
            "Status": summary.status,
            "Sink": summary.sink,
            "Users": summary.users,
            "Keys": summary.keys,
            "UsersSkipped": summary.users_skipped,
            "UsersNotRead": summary.users_not_read,
            "RecordsShipped": summary.shipped,
            "RecordsSpilled": summary.spilled,
            "RecordsFailed": summary.failed,
            "Errors": len(summary.errors),
            "DurationSeconds": round(summary.duration_seconds, 3),
            "CollectorVersion": summary.collector_version,
            "Scope": summary.scope,
            "InventoryComplete": summary.inventory_read,
            "KeyRows": summary.key_rows,
            "UserRows": summary.user_rows,
            # Always present (empty for an account-wide run), so the state functions can name the columns in a
            # Data Collector workspace that never received a user's re-read.
            "ScopeUser": summary.scope_user or "",
            "UserDeleted": bool(summary.user_deleted),
        }
        | _optional(
            ErrorDetail="; ".join(summary.errors)[:4000] if summary.errors else None,
        )
        | _posture_fields(summary)
        | _tag_fields(summary)
    )


def _optional(**fields: Any) -> Row:
    """The fields that apply (Azure drops nulls anyway; leaving them out keeps rows small)."""
    return {name: value for name, value in fields.items() if value is not None}


def _posture_fields(summary: RunSummary) -> Row:
    """The account's password policy (absent: not read) and what of its posture IAM would not tell."""
    fields = summary.password_policy.row() if summary.password_policy else {}
    if summary.posture_not_read:
        fields["PostureNotRead"] = "; ".join(summary.posture_not_read)[:1000]
    return fields


def _tag_fields(summary: RunSummary) -> Row:
    """Whether the users' tags were read (else why not: their Owner and Exceptions are empty for want of them),
    and the longest exception the run allowed."""
    fields: Row = {"TagsRead": summary.tags_read, "MaxExceptionDays": summary.max_exception_days}
    if not summary.tags_read:
        fields["TagsNotRead"] = (summary.tags_not_read or "not read: no user was read")[:1000]
    return fields


@dataclass(frozen=True)
class UserRecord:
    """One IAM user as ListUsers, the credential report and its own key listing found it."""

    user_name: str
    user_arn: str
    path: str
    create_date: datetime | None
    password_enabled: bool | None = None  # None without a credential report: unknown, not "no password"
    password_last_used: datetime | None = None
    password_last_changed: datetime | None = None
    mfa_active: bool | None = None
    active_keys: int = 0
    keys: int = 0
    last_activity: datetime | None = None  # the latest of the console sign-in and every key's last use
    hardware_mfa: bool | None = None  # the root user's row only: MFA and no virtual MFA device (aws/posture.py)
    tags: Tags | None = None  # its owner and keyreport tags only (keyreport.tags); None: not read
    key_ids: tuple[str, ...] | None = None  # masked ids of its current keys, for key= exceptions; None: unknown

    @property
    def account_id(self) -> str:
        return account_from_arn(self.user_arn)


def user_row(record: UserRecord, *, run_time: datetime, run_id: str, tag_rules: TagRules | None = None) -> Row:
    """The AWS_Access_Key_Report_Users row; unknown fields are left out, like the key row's, but for Owner,
    OwnerTags and Exceptions, always there (empty when the user has none, or its tags were not read: the run
    row's TagsRead says which). Exceptions are checked as of the run's UTC date."""
    times = {
        "CreateDate": record.create_date,
        "PasswordLastUsed": record.password_last_used,
        "PasswordLastChanged": record.password_last_changed,
        "LastActivity": record.last_activity,
    }
    flags = {
        "PasswordEnabled": record.password_enabled,
        "MfaActive": record.mfa_active,
        "HardwareMfa": record.hardware_mfa,
    }
    return {
        "loggedDate": format_timestamp(run_time),
        "account_number": record.account_id,
        "user": record.user_name,
        "UserArn": record.user_arn,
        "Path": record.path,
        **{name: format_timestamp(moment) for name, moment in times.items() if moment is not None},
        **{name: flag for name, flag in flags.items() if flag is not None},
        "ActiveKeys": record.active_keys,
        "Keys": record.keys,
        **(tag_rules or TagRules()).row_fields(record.tags, _aware(run_time).astimezone(UTC).date(), record.key_ids),
        "RunId": run_id,
    }
