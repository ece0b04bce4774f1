"""One IAM user re-read from IAM itself (an event's hint): its keys and user record, or "gone".

What a user snapshot carries: the user (GetUser: ARN, path, creation, console sign-in), every key
(ListAccessKeys) with its last use (GetAccessKeyLastUsed), whether it has a console password
(GetLoginProfile), whether an MFA device is assigned (ListMFADevices) and its owner and exception tags
(ListUserTags; refused, the snapshot is still made, without them, and says why). What only the credential report
has, and a user snapshot therefore leaves out: when the password was last changed. The next scheduled run
(the report) fills it in again.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from keyreport.aws.inventory import ListedKey, key_record, last_use_of
from keyreport.aws.user_tags import USER_CALL, read_user_tags, why_not
from keyreport.errors import KeysChanging, UserGone, aws_error_code
from keyreport.log import logger
from keyreport.records import KeyRecord, UserRecord, mask_key_id
from keyreport.tags import TagRules, Tags

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient


@dataclass
class UserSnapshot:
    """What IAM says of one user now; `user` None means the user is gone."""

    user: UserRecord | None
    keys: list[KeyRecord] = field(default_factory=list)
    calls: int = 0
    tags_not_read: str = ""  # why the user's tags are not in `user` (IAM's error code), or "" when they are

    @property
    def gone(self) -> bool:
        return self.user is None


def read_user(iam: IAMClient, name: str, *, attempts: int = 3, tag_rules: TagRules | None = None) -> UserSnapshot:
    """The user's snapshot; NoSuchEntity for the user (deleted meanwhile) makes it gone. A key deleted between
    listing and its last-use call makes the read start over (the snapshot must be of one moment). Any other
    error (AccessDenied, throttling past the retries) is raised: no snapshot is made, but for the tags (read when
    `tag_rules` is given): without them the snapshot is still made, and says why in `tags_not_read`."""
    reader = _Reader(iam, name, tag_rules)
    for _ in range(attempts - 1):
        with contextlib.suppress(KeysChanging):
            return reader.snapshot()
    return reader.snapshot()


class _Reader:
    def __init__(self, iam: IAMClient, name: str, tag_rules: TagRules | None = None) -> None:
        self.iam = iam
        self.name = name
        self.tag_rules = tag_rules
        self.calls = 0

    def _gone_as(self, error: ClientError, gone: type[Exception]) -> Exception:
        return gone(self.name) if aws_error_code(error) == "NoSuchEntity" else error

    def snapshot(self) -> UserSnapshot:
        try:
            return self.read()
        except UserGone:
            return UserSnapshot(None, calls=self.calls)

    def read(self) -> UserSnapshot:
        self.calls += 1
        try:
            user = self.iam.get_user(UserName=self.name)["User"]
        except ClientError as error:
            raise self._gone_as(error, UserGone) from None
        password = self._has_password()
        self.calls += 1
        try:
            mfa = bool(self.iam.list_mfa_devices(UserName=self.name)["MFADevices"])
        except ClientError as error:
            raise self._gone_as(error, UserGone) from None
        keys = [self._key(listed, password, mfa) for listed in self._listed(user["Arn"])]
        tags, tags_not_read = self._tags()
        uses = [key.last_used_date for key in keys if key.last_used_date is not None]
        signed_in = user.get("PasswordLastUsed")
        if signed_in is not None:
            uses.append(signed_in)
        record = UserRecord(
            user_name=user["UserName"],
            user_arn=user["Arn"],
            path=user.get("Path", "/"),
            create_date=user.get("CreateDate"),
            password_enabled=password,
            password_last_used=signed_in,
            mfa_active=mfa,
            active_keys=sum(key.status == "Active" for key in keys),
            keys=len(keys),
            last_activity=max(uses, default=None),
            tags=tags,
            key_ids=tuple(mask_key_id(key.access_key_id) for key in keys),
        )
        return UserSnapshot(record, keys, self.calls, tags_not_read)

    def _tags(self) -> tuple[Tags | None, str]:
        """(the user's wanted tags, ""), or (None, why not): a refused tag read does not stop the re-read."""
        if self.tag_rules is None:
            return None, "not asked for"
        try:
            self.calls += 1
            return read_user_tags(self.iam, self.name, self.tag_rules), ""
        except ClientError as error:
            if aws_error_code(error) == "NoSuchEntity":
                raise UserGone(self.name) from None
            why = why_not(USER_CALL, error)
        except BotoCoreError as error:
            why = why_not(USER_CALL, error)
        logger.warning("user tags not read: no owner or exception in this re-read", extra={"why": why})
        return None, why

    def _has_password(self) -> bool:
        """Whether a login profile exists (NoSuchEntity here means no password: GetUser just found the user)."""
        self.calls += 1
        try:
            self.iam.get_login_profile(UserName=self.name)
        except ClientError as error:
            if aws_error_code(error) != "NoSuchEntity":
                raise
            return False
        return True

    def _listed(self, arn: str) -> list[ListedKey]:
        keys: list[ListedKey] = []
        marker: str | None = None
        while True:
            self.calls += 1
            try:
                page = (
                    self.iam.list_access_keys(UserName=self.name, Marker=marker)
                    if marker
                    else self.iam.list_access_keys(UserName=self.name)
                )
            except ClientError as error:
                raise self._gone_as(error, UserGone) from None
            keys.extend(
                ListedKey(self.name, arn, key["AccessKeyId"], key["Status"], key["CreateDate"])
                for key in page["AccessKeyMetadata"]
            )
            marker = page.get("Marker") if page.get("IsTruncated") else None
            if marker is None:
                return keys

    def _key(self, listed: ListedKey, password: bool, mfa: bool) -> KeyRecord:
        self.calls += 1
        try:
            last = self.iam.get_access_key_last_used(AccessKeyId=listed.key_id)["AccessKeyLastUsed"]
        except ClientError as error:
            raise self._gone_as(error, KeysChanging) from None
        return key_record(listed, last_use_of(last), password, mfa)
