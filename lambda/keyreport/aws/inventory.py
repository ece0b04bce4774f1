"""AWS side: every IAM user's access keys as KeyRecords, with as few IAM calls as the credential report allows."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError

from keyreport.aws.credential_report import CredentialReport, ReportRow, fetch_credential_report
from keyreport.errors import aws_error_code
from keyreport.log import logger
from keyreport.records import ROOT_USER, KeyRecord, mask_key_id

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

T = TypeVar("T")
R = TypeVar("R")

USERS_PER_PAGE = 1000
LastUse = tuple[datetime | None, str | None, str | None]
_REPORT_NOT_READY = {"ReportInProgress", "ReportNotPresent", "ReportExpired"}
_ABSENT = {"N/A", "no_information", "not_supported", ""}


@dataclass
class _UserResult:
    """What a worker thread found for one user; only the main thread updates InventoryStats."""

    records: list[KeyRecord] = field(default_factory=list)
    skipped: bool = False
    errors: list[str] = field(default_factory=list)


@dataclass
class InventoryStats:
    users: int = 0
    keys: int = 0
    users_skipped: int = 0
    users_read: int = 0  # users whose keys were read (skipped ones included): users - users_read were not
    listing_complete: bool = False
    root_keys_known: bool = True  # False: only the report knows them, and it did not say (see the run row)
    report_used: bool = False
    errors: list[str] = field(default_factory=list)


def bounded_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """Like Executor.map, but keeps at most 2 x workers calls pending: memory stays flat on any estate."""
    window = workers * 2
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="iam") as pool:
        pending: list[Future[R]] = []
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                yield pending.pop(0).result()
        for future in pending:
            yield future.result()


class Inventory:
    """Streams KeyRecords for one account. `stats` is complete once the iterator is exhausted."""

    def __init__(
        self,
        iam: IAMClient,
        *,
        concurrency: int = 16,
        report_wait_seconds: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.iam = iam
        self.concurrency = concurrency
        self.report_wait_seconds = report_wait_seconds
        self.sleep = sleep
        self.stats = InventoryStats()
        self.report: CredentialReport | None = None

    def records(self) -> Iterator[KeyRecord]:
        outcome = fetch_credential_report(self.iam, self.report_wait_seconds, self.sleep)
        self.report, self.stats.root_keys_known = outcome.report, outcome.root_keys_known
        self.stats.errors.extend(outcome.errors)
        self.stats.report_used = self.report is not None
        if self.report is not None:
            yield from self._root_keys(self.report)
        for result in bounded_map(self._user_keys, self._users(), self.concurrency):
            self.stats.users_skipped += result.skipped
            self.stats.users_read += 1
            self.stats.errors.extend(result.errors)
            self.stats.keys += len(result.records)
            yield from result.records

    def _users(self) -> Iterator[dict[str, Any]]:
        # 1,000 per page (IAM's maximum; its default is 100): 5 calls instead of 50 for 5,000 users.
        for page in self.iam.get_paginator("list_users").paginate(PaginationConfig={"PageSize": USERS_PER_PAGE}):
            for user in page["Users"]:
                self.stats.users += 1
                yield dict(user)
        self.stats.listing_complete = True

    def _root_keys(self, report: CredentialReport) -> Iterator[KeyRecord]:
        """The root user's keys exist only in the report: they have no listable id, so the slot names them."""
        root = report.rows.get(ROOT_USER)
        if root is None:
            return
        for number, slot in enumerate(root.slots, start=1):
            if slot.last_rotated is None and not slot.active:
                continue
            self.stats.keys += 1
            yield KeyRecord(
                user_name=ROOT_USER,
                user_arn=root.arn,
                access_key_id=f"root:{number}",
                status="Active" if slot.active else "Inactive",
                create_date=slot.last_rotated,
                last_used_date=slot.last_used_date,
                last_used_service=slot.last_used_service,
                last_used_region=slot.last_used_region,
                password_enabled=root.password_enabled,
                mfa_active=root.mfa_active,
            )

    def _user_keys(self, user: dict[str, Any]) -> _UserResult:
        """All keys of one user; a user deleted mid-run or unreadable is skipped and counted, not fatal."""
        name = user["UserName"]
        result = _UserResult()
        try:
            keys = [
                key
                for page in self.iam.get_paginator("list_access_keys").paginate(UserName=name)
                for key in page["AccessKeyMetadata"]
            ]
        except ClientError as error:
            code = aws_error_code(error)
            result.skipped = True
            if code != "NoSuchEntity":
                result.errors.append(f"user {name}: {code}")
            logger.warning("user skipped", extra={"user": name, "error_code": code})
            return result
        row = self.report.rows.get(name) if self.report else None
        result.records = [self._key_record(user, dict(key), row, result.errors) for key in keys]
        return result

    def _key_record(
        self, user: dict[str, Any], key: dict[str, Any], row: ReportRow | None, errors: list[str]
    ) -> KeyRecord:
        create_date: datetime = key["CreateDate"]
        slot = row.slot_for(create_date) if row else None
        if slot is not None:
            usage: LastUse | None = (slot.last_used_date, slot.last_used_service, slot.last_used_region)
        else:
            usage = self._last_used(key["AccessKeyId"], errors)
        used, service, region = usage or (None, None, None)
        return KeyRecord(
            user_name=user["UserName"],
            user_arn=user["Arn"],
            access_key_id=key["AccessKeyId"],
            status=key["Status"],
            create_date=create_date,
            last_used_date=used,
            last_used_service=service,
            last_used_region=region,
            password_enabled=row.password_enabled if row else None,
            mfa_active=row.mfa_active if row else None,
            last_use_known=usage is not None,
        )

    def _last_used(self, key_id: str, errors: list[str]) -> LastUse | None:
        """The key's last use (date, service, region), or None when IAM would not say: never "never used"."""
        try:
            last = self.iam.get_access_key_last_used(AccessKeyId=key_id)["AccessKeyLastUsed"]
        except ClientError as error:
            errors.append(f"key {mask_key_id(key_id)}: {aws_error_code(error)}")
            return None
        service = last.get("ServiceName")
        region = last.get("Region")
        return (
            last.get("LastUsedDate"),
            None if service in _ABSENT else service,
            None if region in _ABSENT else region,
        )
