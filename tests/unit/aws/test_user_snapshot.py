"""One user re-read from IAM: what each answer of IAM makes of the snapshot (botocore's Stubber plays IAM)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from keyreport.aws.user_snapshot import read_user
from keyreport.errors import KeysChanging

ARN = "arn:aws:iam::123456789012:user/ops/alice"
CREATED = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
USED = datetime(2026, 12, 1, 8, 0, 0, tzinfo=UTC)
SIGNED_IN = datetime(2026, 12, 6, 9, 0, 0, tzinfo=UTC)
KEY_1, KEY_2 = "AKIAEXAMPLEKEY000001", "AKIAEXAMPLEKEY000002"


def iam() -> tuple[Any, Stubber]:
    client = boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def user(**extra: Any) -> dict[str, Any]:
    found = {"UserName": "alice", "UserId": "AIDAEXAMPLEUSERID0001", "Arn": ARN, "Path": "/ops/", "CreateDate": CREATED}
    return {"User": found | extra}


def key(key_id: str, status: str = "Active") -> dict[str, Any]:
    return {"UserName": "alice", "AccessKeyId": key_id, "Status": status, "CreateDate": CREATED}


def login(stub: Stubber, present: bool) -> None:
    if present:
        profile = {"UserName": "alice", "CreateDate": CREATED, "PasswordResetRequired": False}
        stub.add_response("get_login_profile", {"LoginProfile": profile}, {"UserName": "alice"})
    else:
        stub.add_client_error("get_login_profile", "NoSuchEntity", http_status_code=404)


def mfa(stub: Stubber, devices: int) -> None:
    listed = [
        {"UserName": "alice", "SerialNumber": f"arn:aws:iam::123456789012:mfa/a{i}", "EnableDate": CREATED}
        for i in range(devices)
    ]
    stub.add_response("list_mfa_devices", {"MFADevices": listed}, {"UserName": "alice"})


def last_used(stub: Stubber, key_id: str, used: datetime | None) -> None:
    if used is None:
        answer = {"ServiceName": "N/A", "Region": "N/A"}
    else:
        answer = {"LastUsedDate": used, "ServiceName": "s3", "Region": "eu-west-1"}
    stub.add_response(
        "get_access_key_last_used", {"UserName": "alice", "AccessKeyLastUsed": answer}, {"AccessKeyId": key_id}
    )


def test_a_user_with_a_password_mfa_and_two_keys() -> None:
    client, stub = iam()
    stub.add_response("get_user", user(PasswordLastUsed=SIGNED_IN), {"UserName": "alice"})
    login(stub, True)
    mfa(stub, 1)
    stub.add_response(
        "list_access_keys", {"AccessKeyMetadata": [key(KEY_1), key(KEY_2, "Inactive")]}, {"UserName": "alice"}
    )
    last_used(stub, KEY_1, USED)
    last_used(stub, KEY_2, None)
    with stub:
        snapshot = read_user(client, "alice")
    stub.assert_no_pending_responses()
    assert snapshot.user is not None and snapshot.calls == 6
    assert (snapshot.user.path, snapshot.user.password_enabled, snapshot.user.mfa_active) == ("/ops/", True, True)
    assert (snapshot.user.keys, snapshot.user.active_keys, snapshot.user.last_activity) == (2, 1, SIGNED_IN)
    assert snapshot.user.password_last_changed is None  # only the credential report has it
    first, second = snapshot.keys
    assert (first.last_used_date, first.last_used_service, first.last_used_region) == (USED, "s3", "eu-west-1")
    assert (second.status, second.last_used_date, second.last_use_known) == ("Inactive", None, True)
    assert first.password_enabled is True and first.mfa_active is True


def test_no_such_user_is_a_user_gone() -> None:
    client, stub = iam()
    stub.add_client_error("get_user", "NoSuchEntity", http_status_code=404)
    with stub:
        snapshot = read_user(client, "alice")
    assert snapshot.gone and snapshot.keys == [] and snapshot.calls == 1


def test_a_user_deleted_during_the_read_is_gone() -> None:
    client, stub = iam()
    stub.add_response("get_user", user(), {"UserName": "alice"})
    login(stub, False)
    stub.add_client_error("list_mfa_devices", "NoSuchEntity", http_status_code=404)
    with stub:
        assert read_user(client, "alice").gone


def test_a_key_deleted_between_listing_and_last_use_makes_the_read_start_over() -> None:
    client, stub = iam()
    for keys in ([key(KEY_1), key(KEY_2)], [key(KEY_2)]):
        stub.add_response("get_user", user(), {"UserName": "alice"})
        login(stub, False)
        mfa(stub, 0)
        stub.add_response("list_access_keys", {"AccessKeyMetadata": keys}, {"UserName": "alice"})
        if len(keys) == 2:
            stub.add_client_error("get_access_key_last_used", "NoSuchEntity", http_status_code=404)
    last_used(stub, KEY_2, USED)
    with stub:
        snapshot = read_user(client, "alice")
    assert snapshot.user is not None and [k.access_key_id for k in snapshot.keys] == [KEY_2]
    assert (snapshot.user.password_enabled, snapshot.user.mfa_active) == (False, False)


def test_keys_changing_at_every_attempt_and_access_denied_are_raised_not_guessed() -> None:
    client, stub = iam()
    for _ in range(3):
        stub.add_response("get_user", user(), {"UserName": "alice"})
        login(stub, False)
        mfa(stub, 0)
        stub.add_response("list_access_keys", {"AccessKeyMetadata": [key(KEY_1)]}, {"UserName": "alice"})
        stub.add_client_error("get_access_key_last_used", "NoSuchEntity", http_status_code=404)
    with stub, pytest.raises(KeysChanging):
        read_user(client, "alice")
    client, stub = iam()
    stub.add_response("get_user", user(), {"UserName": "alice"})
    stub.add_client_error("get_login_profile", "AccessDenied", http_status_code=403)
    with stub, pytest.raises(ClientError):
        read_user(client, "alice")
