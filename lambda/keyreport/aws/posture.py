"""The account's own posture, three cheap IAM calls per account and run: the root user's MFA and credentials
(GetAccountSummary), whether its MFA is a virtual device (ListVirtualMFADevices) and the password policy
(GetAccountPasswordPolicy).

Hardware MFA is inferred as AWS Config's root-account-hardware-mfa-enabled and Prowler do it: the account
summary says the root user has MFA (AccountMFAEnabled = 1) and no assigned virtual MFA device belongs to the
root user (its User.Arn is the account's root ARN). IAM lists no hardware devices of the root user, so "MFA
and no virtual device" is the only reading; a root user with both fails, as Security Hub's IAM.6 says.
Each read stands alone: one that IAM refuses (an older member role without the grant) leaves its part unknown
and says why in `not_read`, it does not fail the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from keyreport.errors import DeadlineReached, aws_error_code
from keyreport.log import logger
from keyreport.records import PasswordPolicy

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient


@dataclass
class AccountPosture:
    """None: not read (see not_read)."""

    root_mfa: bool | None = None  # AccountMFAEnabled
    root_password: bool | None = None  # AccountPasswordPresent: the root user has a console password
    root_access_keys: bool | None = None  # AccountAccessKeysPresent
    root_virtual_mfa: bool | None = None  # an assigned virtual MFA device belongs to the root user
    password_policy: PasswordPolicy | None = None
    not_read: list[str] = field(default_factory=list)

    @property
    def root_hardware_mfa(self) -> bool | None:
        if self.root_mfa is None:
            return None
        if not self.root_mfa:
            return False
        return None if self.root_virtual_mfa is None else not self.root_virtual_mfa


def read_posture(iam: IAMClient, root_arn: str) -> AccountPosture:
    posture = AccountPosture()
    summary = _read(posture, "GetAccountSummary", lambda: iam.get_account_summary()["SummaryMap"])
    if summary is not None:
        posture.root_mfa = _flag(summary, "AccountMFAEnabled")
        posture.root_password = _flag(summary, "AccountPasswordPresent")
        posture.root_access_keys = _flag(summary, "AccountAccessKeysPresent")
    if posture.root_mfa:  # without root MFA there is no device to tell apart
        posture.root_virtual_mfa = _read(posture, "ListVirtualMFADevices", lambda: _root_has_virtual(iam, root_arn))
    posture.password_policy = _read(posture, "GetAccountPasswordPolicy", lambda: _password_policy(iam))
    return posture


def _read(posture: AccountPosture, call: str, read: Any) -> Any:
    try:
        return read()
    except (ClientError, BotoCoreError, DeadlineReached) as error:
        code = aws_error_code(error) if isinstance(error, ClientError) else type(error).__name__
        posture.not_read.append(f"{call}: {code}")
        logger.warning("account posture not read", extra={"call": call, "error_code": code})
        return None


def _flag(summary: dict[str, int], name: str) -> bool | None:
    value = summary.get(name)
    return None if value is None else value > 0


def _root_has_virtual(iam: IAMClient, root_arn: str) -> bool:
    pages = iam.get_paginator("list_virtual_mfa_devices").paginate(AssignmentStatus="Assigned")
    return any(device.get("User", {}).get("Arn") == root_arn for page in pages for device in page["VirtualMFADevices"])


def _password_policy(iam: IAMClient) -> PasswordPolicy:
    """The account password policy; an account that never set one has none (IAM answers NoSuchEntity)."""
    try:
        policy = iam.get_account_password_policy()["PasswordPolicy"]
    except ClientError as error:
        if aws_error_code(error) == "NoSuchEntity":
            return PasswordPolicy(present=False)
        raise
    return PasswordPolicy(
        present=True,
        minimum_length=policy.get("MinimumPasswordLength"),
        reuse_prevention=policy.get("PasswordReusePrevention", 0),  # absent: reuse is not prevented
        require_symbols=policy.get("RequireSymbols", False),
        require_numbers=policy.get("RequireNumbers", False),
        require_uppercase=policy.get("RequireUppercaseCharacters", False),
        require_lowercase=policy.get("RequireLowercaseCharacters", False),
        max_age_days=policy.get("MaxPasswordAge"),
    )
