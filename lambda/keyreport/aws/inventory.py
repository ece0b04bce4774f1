"""AWS side: every IAM user's access keys as KeyRecords, with as few IAM calls as the credential report allows."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from keyreport.aws.credential_report import CredentialReport, ReportRow
from keyreport.aws.posture import AccountPosture
from keyreport.aws.report_watch import ReportWatch
from keyreport.aws.user_tags import TagWatch
from keyreport.deadline import current
from keyreport.errors import DeadlineReached, aws_error_code
from keyreport.log import logger
from keyreport.records import ROOT_USER, KeyRecord, UserRecord, mask_key_id
from keyreport.tags import TagRules, Tags

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_iam.type_defs import AccessKeyMetadataTypeDef

T = TypeVar("T")
R = TypeVar("R")

USERS_PER_PAGE = 1000
LastUse = tuple[datetime | None, str | None, str | None]
_ABSENT = {"N/A", "no_information", "not_supported", ""}


@dataclass(frozen=True, slots=True)
class ListedKey:
    """What listing tells of one key: all that is held of it while the credential report is generated."""

    user_name: str
    user_arn: str
    key_id: str
    status: str
    create_date: datetime


@dataclass
class _UserResult:
    """What a worker thread found for one user; only the main thread updates InventoryStats."""

    records: list[KeyRecord] = field(default_factory=list)
    waiting: list[ListedKey] = field(default_factory=list)  # listed before the report was settled
    user: dict[str, Any] | None = None  # as ListUsers gave it; None when the user was skipped
    skipped: bool = False
    errors: list[str] = field(default_factory=list)


@dataclass
class _Tally:
    """A user's keys as their records went by: counts and the latest use (the records themselves stream on)."""

    keys: int = 0
    active: int = 0
    last_use: datetime | None = None
    masked: list[str] = field(default_factory=list)  # the keys' masked ids (key= exceptions name them so)

    def add(self, record: KeyRecord) -> None:
        self.keys += 1
        self.masked.append(mask_key_id(record.access_key_id))
        self.active += record.status == "Active"
        if record.last_used_date is not None and (self.last_use is None or record.last_used_date > self.last_use):
            self.last_use = record.last_used_date


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


def _placed_in(report: CredentialReport | None, listed: ListedKey) -> tuple[ReportRow | None, LastUse | None]:
    """The user's report row, and the key's last use if the report places the key unambiguously."""
    row = report.rows.get(listed.user_name) if report else None
    slot = row.slot_for(listed.create_date) if row else None
    if slot is None:
        return row, None
    return row, (slot.last_used_date, slot.last_used_service, slot.last_used_region)


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
    """Streams KeyRecords for one account. `stats` and `users()` are complete once the iterator is exhausted."""

    def __init__(
        self,
        iam: IAMClient,
        *,
        concurrency: int = 16,
        report_wait_seconds: float = 60.0,
        sleep: Callable[[float], bool | None] | None = None,
        tag_rules: TagRules | None = None,
    ) -> None:
        """`tag_rules`: which user tags to read (keyreport.tags); None reads none (TagsRead false)."""
        self.iam = iam
        self.tag_rules = tag_rules
        self._tag_watch: TagWatch | None = None
        self._user_tags: dict[str, Tags] | None = None
        self.tags_not_read = "not asked for" if tag_rules is None else ""
        self.concurrency = concurrency
        self.report_wait_seconds = report_wait_seconds
        self.sleep = sleep
        self.stats = InventoryStats()
        self._listed_users: dict[str, dict[str, Any]] = {}
        self._tallies: dict[str, _Tally] = {}

    def records(self) -> Iterator[KeyRecord]:
        watch = self._watch = ReportWatch(self.iam, self.report_wait_seconds, self.sleep)
        tags = self._tag_watch = TagWatch(self.iam, self.tag_rules) if self.tag_rules is not None else None
        try:
            for record in self._records():
                self.stats.keys += 1
                self._tallies.setdefault(record.user_name, _Tally()).add(record)
                yield record
        except BaseException:  # stopped early (an error, the deadline, close()): no further tag page is needed
            if tags is not None:
                tags.stop()
            raise
        finally:
            watch.stop()

    @property
    def tags_read(self) -> bool:
        """Every user's tags were read (call after users()): a run row's TagsRead."""
        return self._user_tags is not None

    def _tags(self) -> dict[str, Tags] | None:
        """The users' wanted tags, once the tag read ended; None when it failed or was not asked for."""
        if self._tag_watch is not None and self._user_tags is None and not self.tags_not_read:
            self._user_tags = self._tag_watch.tags()
            self.tags_not_read = self._tag_watch.not_read
        return self._user_tags

    def _records(self) -> Iterator[KeyRecord]:
        """Users and keys are listed while the report is generated; keys listed before it is there wait
        (as ListedKey) and are placed in it once it is; those it cannot place get their own call at the end."""
        waiting: list[ListedKey] = []
        unplaced: list[ListedKey] = []
        try:
            yield from self._listed(waiting, unplaced)
        except (ClientError, BotoCoreError):
            yield from self._settled(waiting, unplaced)  # what was read before the listing failed still ships
            raise
        except DeadlineReached:
            yield from self._unresolved(waiting + unplaced)  # no time to place them: last use unknown
            raise
        try:
            yield from self._settled(waiting, unplaced)
        except DeadlineReached:
            yield from self._unresolved(waiting + unplaced)
            raise
        self.stats.errors.extend(self._watch.errors)
        self.stats.root_keys_known = self._watch.root_keys_known

    def _unresolved(self, listed: list[ListedKey]) -> Iterator[KeyRecord]:
        """Keys listed but not yet placed or looked up when the deadline came: shipped without a last use
        (never claimed unused) rather than dropped; the report places them if it is already there."""
        report = self._watch.report if self._watch.settled else None
        for key in listed:
            yield self._key_record(key, *_placed_in(report, key))
        listed.clear()

    def _listed(self, waiting: list[ListedKey], unplaced: list[ListedKey]) -> Iterator[KeyRecord]:
        if self._watch.settled:  # a fresh report was there, or none will come: the root's keys first
            yield from self._placed(waiting, unplaced)
        for result in bounded_map(self._user_keys, self._users(), self.concurrency):
            self.stats.users_skipped += result.skipped
            self.stats.users_read += 1
            self.stats.errors.extend(result.errors)
            if result.user is not None:
                self._listed_users[result.user["UserName"]] = result.user
            yield from result.records
            waiting.extend(result.waiting)
            if self._watch.settled:
                yield from self._placed(waiting, unplaced)
            if current().expired:  # stop reading: what was read is shipped, the rest counted as not read
                raise DeadlineReached("the run's deadline came before every user was read")

    def _settled(self, waiting: list[ListedKey], unplaced: list[ListedKey]) -> Iterator[KeyRecord]:
        self._watch.wait()
        yield from self._placed(waiting, unplaced)
        looked_up = 0
        try:
            for result in bounded_map(self._looked_up, unplaced, self.concurrency):
                looked_up += 1
                self.stats.errors.extend(result.errors)
                yield from result.records
        except DeadlineReached:
            del unplaced[:looked_up]  # those were yielded: the rest go out unresolved
            raise

    def _placed(self, waiting: list[ListedKey], unplaced: list[ListedKey]) -> Iterator[KeyRecord]:
        """Records of the waiting keys the settled report places (the root's keys first, once); empties `waiting`."""
        report = self._watch.report
        if not self.stats.report_used and report is not None:
            self.stats.report_used = True
            yield from self._root_keys(report)
        for listed in waiting:
            row, usage = _placed_in(report, listed)
            if usage is None:
                unplaced.append(listed)
            else:
                yield self._key_record(listed, row, usage)
        waiting.clear()

    def users(self) -> list[UserRecord]:
        """One record per user read, from what the run already fetched (ListUsers, the report, the keys)."""
        report = self._watch.report
        tags = self._tags()
        return [
            user_record(
                user,
                report.rows.get(name) if report else None,
                self._tallies.get(name, _Tally()),
                None if tags is None else tags.get(name, ()),
            )
            for name, user in self._listed_users.items()
        ]

    def root_user(self, posture: AccountPosture) -> UserRecord | None:
        """The root user's row: the credential report's root row (keys, MFA, last sign-in) and the account's
        posture (console password present, hardware MFA). None when the report had no readable root row: the
        run then says the root user's keys are unknown, and is not a complete snapshot."""
        report = self._watch.report
        row = report.rows.get(ROOT_USER) if report else None
        if row is None or not row.slots_known:
            return None
        tally = self._tallies.get(ROOT_USER, _Tally())
        uses = [moment for moment in (tally.last_use, row.password_last_used) if moment is not None]
        return UserRecord(
            user_name=ROOT_USER,
            user_arn=row.arn,
            path="/",
            create_date=row.created,
            password_enabled=posture.root_password,  # the report says "not_supported" for the root user
            password_last_used=row.password_last_used,
            mfa_active=row.mfa_active if row.mfa_active is not None else posture.root_mfa,
            active_keys=tally.active,
            keys=tally.keys,
            last_activity=max(uses, default=None),
            hardware_mfa=posture.root_hardware_mfa,
        )

    def _looked_up(self, listed: ListedKey) -> _UserResult:
        result = _UserResult()
        result.records.append(self._resolved(listed, self._watch.report, result.errors))
        return result

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
            listed = [
                ListedKey(name, user["Arn"], key["AccessKeyId"], key["Status"], key["CreateDate"])
                for key in self._access_keys(name)
            ]
        except ClientError as error:
            code = aws_error_code(error)
            result.skipped = True
            if code != "NoSuchEntity":
                result.errors.append(f"user {name}: {code}")
            logger.warning("user skipped", extra={"user": name, "error_code": code})
            return result
        result.user = user
        if not self._watch.settled:
            result.waiting = listed
            return result
        report = self._watch.report
        result.records = [self._resolved(key, report, result.errors) for key in listed]
        return result

    def _access_keys(self, name: str) -> list[AccessKeyMetadataTypeDef]:
        """The user's keys; by hand rather than with a paginator, whose machinery per user costs more CPU than
        the call itself saves (a user has at most two keys: one page)."""
        page = self.iam.list_access_keys(UserName=name)
        keys = list(page["AccessKeyMetadata"])
        while page.get("IsTruncated"):
            page = self.iam.list_access_keys(UserName=name, Marker=page["Marker"])
            keys.extend(page["AccessKeyMetadata"])
        return keys

    def _resolved(self, listed: ListedKey, report: CredentialReport | None, errors: list[str]) -> KeyRecord:
        """The key's record: last use from the report when it places the key, else from IAM."""
        row, usage = _placed_in(report, listed)
        if usage is None:
            usage = self._last_used(listed.key_id, errors)
        return self._key_record(listed, row, usage)

    @staticmethod
    def _key_record(listed: ListedKey, row: ReportRow | None, usage: LastUse | None) -> KeyRecord:
        return key_record(listed, usage, row.password_enabled if row else None, row.mfa_active if row else None)

    def _last_used(self, key_id: str, errors: list[str]) -> LastUse | None:
        """The key's last use (date, service, region), or None when IAM would not say: never "never used"."""
        try:
            last = self.iam.get_access_key_last_used(AccessKeyId=key_id)["AccessKeyLastUsed"]
        except ClientError as error:
            errors.append(f"key {mask_key_id(key_id)}: {aws_error_code(error)}")
            return None
        return last_use_of(last)


def last_use_of(answer: Mapping[str, Any]) -> LastUse:
    """GetAccessKeyLastUsed's AccessKeyLastUsed as (date, service, region); IAM's "N/A" placeholders are None."""
    service, region = answer.get("ServiceName"), answer.get("Region")
    return (
        answer.get("LastUsedDate"),
        None if service in _ABSENT else service,
        None if region in _ABSENT else region,
    )


def key_record(
    listed: ListedKey, usage: LastUse | None, password_enabled: bool | None, mfa_active: bool | None
) -> KeyRecord:
    """A listed key's record with its last use (None: IAM would not tell) and its user's password and MFA."""
    used, service, region = usage or (None, None, None)
    return KeyRecord(
        user_name=listed.user_name,
        user_arn=listed.user_arn,
        access_key_id=listed.key_id,
        status=listed.status,
        create_date=listed.create_date,
        last_used_date=used,
        last_used_service=service,
        last_used_region=region,
        password_enabled=password_enabled,
        mfa_active=mfa_active,
        last_use_known=usage is not None,
    )


def user_record(user: dict[str, Any], row: ReportRow | None, tally: _Tally, tags: Tags | None = None) -> UserRecord:
    """The user as ListUsers, its credential report row (if any), its keys and its tags (read a page of users at
    a time, None: not read) describe it: no extra call per user."""
    signed_in: datetime | None = user.get("PasswordLastUsed") or (row.password_last_used if row else None)
    uses = [moment for moment in (tally.last_use, signed_in) if moment is not None]
    return UserRecord(
        user_name=user["UserName"],
        user_arn=user["Arn"],
        path=user.get("Path", "/"),
        create_date=user.get("CreateDate"),
        password_enabled=row.password_enabled if row else None,
        password_last_used=signed_in,
        password_last_changed=row.password_last_changed if row else None,
        mfa_active=row.mfa_active if row else None,
        active_keys=tally.active,
        keys=tally.keys,
        last_activity=max(uses, default=None),
        tags=tags,
        key_ids=tuple(tally.masked),
    )
