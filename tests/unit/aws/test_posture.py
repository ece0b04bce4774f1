"""aws/posture.py: the root user's MFA, hardware MFA and password, and the password policy, through botocore's Stubber
(IAM's own response shapes validate every answer)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from keyreport.aws.posture import read_posture
from keyreport.records import PasswordPolicy
from tests.unit.fakes import stubbed_client

ACCOUNT = "123456789012"
ROOT_ARN = f"arn:aws:iam::{ACCOUNT}:root"
WHEN = datetime(2026, 1, 2, tzinfo=UTC)


def summary(mfa: int, password: int = 1, keys: int = 0) -> dict[str, Any]:
    return {
        "SummaryMap": {"AccountMFAEnabled": mfa, "AccountPasswordPresent": password, "AccountAccessKeysPresent": keys}
    }


def device(arn: str, name: str) -> dict[str, Any]:
    user = {"Path": "/", "UserName": name, "UserId": "AIDAEXAMPLEEXAMPLE1", "Arn": arn, "CreateDate": WHEN}
    return {"SerialNumber": f"arn:aws:iam::{ACCOUNT}:mfa/{name}", "EnableDate": WHEN, "User": user}


def devices(*found: dict[str, Any], marker: str | None = None) -> dict[str, Any]:
    page: dict[str, Any] = {"VirtualMFADevices": list(found), "IsTruncated": marker is not None}
    return page | ({"Marker": marker} if marker else {})


ALICE = device(f"arn:aws:iam::{ACCOUNT}:user/alice", "alice")
ROOT = device(ROOT_ARN, "root-account-mfa-device")
ASSIGNED = {"AssignmentStatus": "Assigned"}
STRONG = {
    "MinimumPasswordLength": 14, "RequireSymbols": True, "RequireNumbers": True, "RequireUppercaseCharacters": True,
    "RequireLowercaseCharacters": True, "AllowUsersToChangePassword": True, "ExpirePasswords": True,
    "MaxPasswordAge": 90, "PasswordReusePrevention": 24,
}  # fmt: skip


@pytest.mark.parametrize(
    ("pages", "hardware"),
    [
        ([devices(ALICE)], True),  # MFA on, no virtual device of the root user: hardware
        ([devices(ALICE, ROOT)], False),
        ([devices(ALICE, marker="m1"), devices(ROOT)], False),  # found on the second page
    ],
)
def test_root_mfa_is_hardware_when_no_virtual_device_is_the_roots(pages: list[dict[str, Any]], hardware: bool) -> None:
    with stubbed_client("iam") as (iam, stub):
        stub.add_response("get_account_summary", summary(mfa=1))
        for number, page in enumerate(pages):
            stub.add_response("list_virtual_mfa_devices", page, ASSIGNED | ({"Marker": "m1"} if number else {}))
        stub.add_response("get_account_password_policy", {"PasswordPolicy": STRONG})
        posture = read_posture(iam, ROOT_ARN)
    assert (posture.root_mfa, posture.root_password, posture.root_access_keys) == (True, True, False)
    assert posture.root_hardware_mfa is hardware and posture.not_read == []
    assert posture.password_policy == PasswordPolicy(True, 14, 24, True, True, True, True, 90)


def test_without_root_mfa_no_device_is_listed_and_hardware_mfa_is_false() -> None:
    with stubbed_client("iam") as (iam, stub):
        stub.add_response("get_account_summary", summary(mfa=0, password=0, keys=1))
        stub.add_client_error("get_account_password_policy", "NoSuchEntity", http_status_code=404)
        posture = read_posture(iam, ROOT_ARN)
    assert (posture.root_mfa, posture.root_hardware_mfa, posture.root_password, posture.root_access_keys) == (
        False, False, False, True
    )  # fmt: skip
    assert posture.password_policy == PasswordPolicy(present=False), "NoSuchEntity: the account has no policy"


def test_a_policy_that_leaves_settings_out_reads_them_as_off() -> None:
    with stubbed_client("iam") as (iam, stub):
        stub.add_response("get_account_summary", summary(mfa=0))
        stub.add_response("get_account_password_policy", {"PasswordPolicy": {"MinimumPasswordLength": 8}})
        policy = read_posture(iam, ROOT_ARN).password_policy
    assert policy == PasswordPolicy(True, 8, 0, False, False, False, False, None)


def test_each_read_iam_refuses_is_unknown_and_named_not_fatal() -> None:
    with stubbed_client("iam") as (iam, stub):
        stub.add_client_error("get_account_summary", "AccessDenied", http_status_code=403)
        stub.add_client_error("get_account_password_policy", "AccessDenied", http_status_code=403)
        posture = read_posture(iam, ROOT_ARN)
    assert (posture.root_mfa, posture.root_hardware_mfa, posture.password_policy) == (None, None, None)
    assert posture.not_read == ["GetAccountSummary: AccessDenied", "GetAccountPasswordPolicy: AccessDenied"]


def test_a_refused_device_listing_leaves_only_hardware_mfa_unknown() -> None:
    with stubbed_client("iam") as (iam, stub):
        stub.add_response("get_account_summary", summary(mfa=1))
        stub.add_client_error("list_virtual_mfa_devices", "AccessDenied", http_status_code=403)
        stub.add_response("get_account_password_policy", {"PasswordPolicy": STRONG})
        posture = read_posture(iam, ROOT_ARN)
    assert (posture.root_mfa, posture.root_hardware_mfa) == (True, None)
    assert posture.not_read == ["ListVirtualMFADevices: AccessDenied"]
    assert posture.password_policy is not None and posture.password_policy.present
