"""Inventory paths moto cannot show (pagination markers, report states), driven through botocore's Stubber."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from keyreport.aws.credential_report import parse_credential_report
from keyreport.aws.inventory import Inventory
from keyreport.records import KeyRecord

T0 = datetime(2024, 3, 1, 10, 0, 0, tzinfo=UTC)
T1 = datetime(2025, 6, 2, 11, 0, 0, tzinfo=UTC)
USED = datetime(2026, 11, 1, 9, 0, 0, tzinfo=UTC)
HEADER = (
    "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,"
    "password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,"
    "access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,"
    "access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,"
    "access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated"
)
ROOT = (
    "<root_account>,arn:aws:iam::123456789012:root,2020-01-01T00:00:00+00:00,not_supported,N/A,not_supported,"
    "not_supported,true,true,2021-05-05T05:05:05+00:00,2026-11-20T00:00:00+00:00,us-east-1,iam,"
    "false,N/A,N/A,N/A,N/A,false,N/A,false,N/A"
)


def user_line(name: str, key1: tuple[datetime, datetime | None] | None, key2: tuple[datetime, None] | None) -> str:
    def slot(key: tuple[datetime, datetime | None] | None) -> str:
        if key is None:
            return "false,N/A,N/A,N/A,N/A"
        used = key[1].isoformat() if key[1] else "N/A"
        return f"true,{key[0].isoformat()},{used},{'eu-west-1' if key[1] else 'N/A'},{'s3' if key[1] else 'N/A'}"

    return (
        f"{name},arn:aws:iam::123456789012:user/{name},2020-01-01T00:00:00+00:00,true,N/A,N/A,N/A,false,"
        f"{slot(key1)},{slot(key2)},false,N/A,false,N/A"
    )


def user(name: str) -> dict[str, object]:
    return {
        "UserName": name,
        "UserId": "AIDA" + name.upper().ljust(17, "X"),
        "Path": "/",
        "Arn": f"arn:aws:iam::123456789012:user/{name}",
        "CreateDate": T0,
    }


def key(name: str, key_id: str, created: datetime, status: str = "Active") -> dict[str, object]:
    return {"UserName": name, "AccessKeyId": key_id, "Status": status, "CreateDate": created}


@pytest.fixture
def iam() -> Iterator[tuple[object, Stubber]]:
    client = boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def report(stubber: Stubber, lines: list[str]) -> None:
    stubber.add_response("generate_credential_report", {"State": "COMPLETE"})
    content = "\n".join([HEADER, *lines]).encode()
    stubber.add_response("get_credential_report", {"Content": content, "ReportFormat": "text/csv", "GeneratedTime": T1})


def collect(client: object) -> tuple[list[KeyRecord], Inventory]:
    inventory = Inventory(client, concurrency=1, sleep=lambda _: None)  # type: ignore[arg-type]
    return list(inventory.records()), inventory


def test_pages_users_and_keys_and_takes_last_use_from_the_report(iam: tuple[object, Stubber]) -> None:
    client, stub = iam
    report(stub, [ROOT, user_line("alice", (T0, USED), (T1, None)), user_line("bob", None, None)])
    stub.add_response("list_users", {"Users": [user("alice")], "IsTruncated": True, "Marker": "m1"}, {"MaxItems": 1000})
    stub.add_response(
        "list_access_keys",
        {"AccessKeyMetadata": [key("alice", "AKIAAAAAAAAAAAAAAAA1", T0)], "IsTruncated": True, "Marker": "k1"},
        {"UserName": "alice"},
    )
    stub.add_response(
        "list_access_keys",
        {"AccessKeyMetadata": [key("alice", "AKIAAAAAAAAAAAAAAAA2", T1)], "IsTruncated": False},
        {"UserName": "alice", "Marker": "k1"},
    )
    stub.add_response("list_users", {"Users": [user("bob")], "IsTruncated": False}, {"Marker": "m1", "MaxItems": 1000})
    stub.add_response("list_access_keys", {"AccessKeyMetadata": [], "IsTruncated": False}, {"UserName": "bob"})

    records, inventory = collect(client)

    assert [(r.user_name, r.access_key_id) for r in records] == [
        ("<root_account>", "root:1"),
        ("alice", "AKIAAAAAAAAAAAAAAAA1"),
        ("alice", "AKIAAAAAAAAAAAAAAAA2"),
    ]
    root, first, second = records
    assert root.status == "Active" and root.create_date == datetime(2021, 5, 5, 5, 5, 5, tzinfo=UTC)
    assert root.last_used_service == "iam" and root.mfa_active is True and root.password_enabled is None
    assert (first.last_used_date, first.last_used_service, first.last_used_region) == (USED, "s3", "eu-west-1")
    assert second.last_used_date is None and first.password_enabled is True and first.mfa_active is False
    assert (inventory.stats.users, inventory.stats.keys, inventory.stats.users_skipped) == (2, 3, 0)
    assert inventory.stats.report_used
    alice, bob = inventory.users()  # one per user, from what was already read: no call of its own
    assert (alice.user_name, alice.path, alice.create_date, alice.keys, alice.active_keys) == ("alice", "/", T0, 2, 2)
    assert (alice.password_enabled, alice.mfa_active, alice.last_activity) == (True, False, USED)
    assert alice.password_last_used is None and alice.password_last_changed is None
    assert (bob.keys, bob.active_keys, bob.last_activity) == (0, 0, None)


def test_keys_are_listed_while_the_report_is_in_progress(iam: tuple[object, Stubber]) -> None:
    client, stub = iam
    listed = threading.Event()
    client.meta.events.register("after-call.iam.ListAccessKeys", lambda **_: listed.set())  # type: ignore[attr-defined]
    stub.add_response("generate_credential_report", {"State": "STARTED"})
    stub.add_response("list_users", {"Users": [user("alice")], "IsTruncated": False})
    stub.add_response("list_access_keys", {"AccessKeyMetadata": [key("alice", "AKIAAAAAAAAAAAAAAAA1", T0)]})
    stub.add_response("generate_credential_report", {"State": "INPROGRESS"})
    stub.add_response("generate_credential_report", {"State": "COMPLETE"})
    stub.add_client_error("get_credential_report", "ReportInProgress", http_status_code=404)
    report(stub, [user_line("alice", (T0, USED), None)])
    # The report's poll waits for the listing: the Stubber's answers then come in exactly this order.
    inventory = Inventory(client, concurrency=1, sleep=lambda _: listed.wait(5) and None)  # type: ignore[arg-type]
    records = list(inventory.records())
    assert records[0].last_used_date == USED and records[0].mfa_active is False and inventory.stats.report_used


def test_without_the_report_last_use_comes_per_key(iam: tuple[object, Stubber]) -> None:
    client, stub = iam
    stub.add_client_error("generate_credential_report", "AccessDenied", http_status_code=403)
    stub.add_response("list_users", {"Users": [user("alice")], "IsTruncated": False})
    stub.add_response("list_access_keys", {"AccessKeyMetadata": [key("alice", "AKIAAAAAAAAAAAAAAAA1", T0)]})
    stub.add_response(
        "get_access_key_last_used",
        {"UserName": "alice", "AccessKeyLastUsed": {"LastUsedDate": USED, "ServiceName": "sts", "Region": "us-east-1"}},
        {"AccessKeyId": "AKIAAAAAAAAAAAAAAAA1"},
    )
    records, inventory = collect(client)
    assert (records[0].last_used_date, records[0].last_used_service) == (USED, "sts")
    assert records[0].password_enabled is None and not inventory.stats.report_used


def test_a_key_newer_than_the_report_is_looked_up(iam: tuple[object, Stubber]) -> None:
    client, stub = iam
    fresh = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    report(stub, [user_line("alice", (T0, USED), None)])
    stub.add_response("list_users", {"Users": [user("alice")], "IsTruncated": False})
    stub.add_response(
        "list_access_keys",
        {"AccessKeyMetadata": [key("alice", "AKIAAAAAAAAAAAAAAAA1", T0), key("alice", "AKIAAAAAAAAAAAAAAAA9", fresh)]},
    )
    stub.add_response(
        "get_access_key_last_used",
        {"AccessKeyLastUsed": {"ServiceName": "N/A", "Region": "N/A"}},
        {"AccessKeyId": "AKIAAAAAAAAAAAAAAAA9"},
    )
    records, _ = collect(client)
    assert records[1].last_used_date is None and records[1].last_used_service is None


def test_user_deleted_mid_run_is_skipped_and_counted(iam: tuple[object, Stubber]) -> None:
    client, stub = iam
    report(stub, [ROOT, user_line("alice", (T0, USED), None)])
    stub.add_response("list_users", {"Users": [user("gone"), user("alice"), user("locked")], "IsTruncated": False})
    stub.add_client_error("list_access_keys", "NoSuchEntity", http_status_code=404)
    stub.add_response("list_access_keys", {"AccessKeyMetadata": [key("alice", "AKIAAAAAAAAAAAAAAAA1", T0)]})
    stub.add_client_error("list_access_keys", "AccessDenied", http_status_code=403)
    records, inventory = collect(client)
    assert [r.user_name for r in records] == ["<root_account>", "alice"]
    assert inventory.stats.users == 3 and inventory.stats.users_skipped == 2
    assert inventory.stats.errors == ["user locked: AccessDenied"]  # a deletion is not an error
    assert [u.user_name for u in inventory.users()] == ["alice"]  # no row for a user that could not be read


def test_a_users_sign_in_counts_as_activity_and_the_report_gives_password_times(iam: tuple[object, Stubber]) -> None:
    client, stub = iam
    line = user_line("carol", (T0, USED), None).replace(
        "true,N/A,N/A,N/A,false", "true,N/A,2025-01-01T00:00:00+00:00,N/A,true"
    )
    report(stub, [line])
    signed_in = datetime(2026, 11, 25, 8, 0, 0, tzinfo=UTC)
    stub.add_response("list_users", {"Users": [{**user("carol"), "PasswordLastUsed": signed_in}], "IsTruncated": False})
    stub.add_response("list_access_keys", {"AccessKeyMetadata": [key("carol", "AKIAAAAAAAAAAAAAAAA1", T0, "Inactive")]})
    _, inventory = collect(client)
    [carol] = inventory.users()
    assert (carol.password_last_used, carol.last_activity) == (signed_in, signed_in)
    assert carol.password_last_changed == datetime(2025, 1, 1, tzinfo=UTC) and carol.mfa_active is True
    assert (carol.keys, carol.active_keys) == (1, 0)


def test_two_keys_created_in_the_same_second_fall_back_to_per_key_calls() -> None:
    content = "\n".join([HEADER, user_line("alice", (T0, USED), (T0, None))]).encode()
    row = parse_credential_report(content, T1).rows["alice"]
    assert row.slot_for(T0) is None  # ambiguous: never guess which slot is which key
    assert row.slot_for(T1) is None


def test_a_failed_last_use_lookup_is_an_error_not_never_used(iam: tuple[object, Stubber]) -> None:
    client, stub = iam
    stub.add_client_error("generate_credential_report", "AccessDenied", http_status_code=403)
    stub.add_response("list_users", {"Users": [user("alice")], "IsTruncated": False})
    stub.add_response("list_access_keys", {"AccessKeyMetadata": [key("alice", "AKIAAAAAAAAAAAAAAAA1", T0)]})
    stub.add_client_error("get_access_key_last_used", "AccessDenied", http_status_code=403)
    records, inventory = collect(client)
    assert records[0].last_use_known is False and records[0].last_used_date is None
    assert inventory.stats.errors == [
        "key AKIA...AAA1: AccessDenied",
        "credential report unusable: IAM answered AccessDenied; the root user's keys are unknown",
    ]
