"""Users' tags: read from GetAccountAuthorizationDetails pages against the moto server over real sockets, pages and
refusals moto cannot show through botocore's Stubber, and a user's re-read with ListUserTags."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from keyreport.aws.inventory import Inventory
from keyreport.aws.user_snapshot import read_user
from keyreport.aws.user_tags import TagWatch, read_user_tags
from keyreport.records import user_row
from keyreport.tags import TagRules
from sandbox.aws import AwsSandbox
from sandbox.aws_faults import IamFaults
from sandbox.estate import Estate, exception_users, seed_estate

RULES = TagRules(("owner", "team"), 365)
T0 = datetime(2024, 3, 1, 10, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def seeded() -> Iterator[tuple[AwsSandbox, Estate]]:
    with AwsSandbox() as aws:
        aws.reset()
        yield aws, seed_estate(aws.client("iam"), users=40)


def counted_client(aws: AwsSandbox, faults: IamFaults | None = None) -> tuple[Any, Counter[str]]:
    """An IAM client of the sandbox whose calls are counted by operation (a botocore event hook)."""
    session = aws.session()
    if faults is not None:
        faults.install(session)
    calls: Counter[str] = Counter()
    session.events.register("before-call.iam", lambda model, **_: calls.update([model.name]))
    return session.client("iam", endpoint_url=aws.endpoint_url), calls


def wanted(estate: Estate, name: str) -> tuple[tuple[str, str], ...]:
    return RULES.keep({"Key": key, "Value": value} for key, value in estate.user(name).tags)


def test_a_run_reads_every_users_tags_from_one_page_not_a_call_per_user(seeded: tuple[AwsSandbox, Estate]) -> None:
    aws, estate = seeded
    client, calls = counted_client(aws)
    inventory = Inventory(client, concurrency=4, tag_rules=RULES)
    records = list(inventory.records())
    users = {user.user_name: user for user in inventory.users()}
    assert len(records) == len(estate.iam_keys) + len(estate.root_keys) and len(users) == estate.user_count
    assert (calls["GetAccountAuthorizationDetails"], calls["ListUserTags"]) == (
        1,
        0,
    )  # moto: one page whatever MaxItems
    assert inventory.tags_read and inventory.tags_not_read == ""
    assert {name: user.tags for name, user in users.items()} == {name: wanted(estate, name) for name in users}
    assert any(key == "cost-centre" for user in estate.users for key, _ in user.tags)
    assert not any(key == "cost-centre" for user in users.values() for key, _ in user.tags or ())  # never kept
    cases = exception_users(estate)
    row = user_row(users[cases["valid_key"]], run_time=estate.now, run_id="r")
    [exception] = json.loads(row["Exceptions"])
    assert exception["Problem"] == "" and exception["Key"] in users[cases["valid_key"]].key_ids  # type: ignore[operator]
    problems = {
        case: json.loads(user_row(users[name], run_time=estate.now, run_id="r")["Exceptions"])[0]["Problem"]
        for case, name in cases.items()
    }
    assert problems["valid_user"] == problems["expired"] == ""  # expired: the workspace says so, against now()
    assert problems["malformed"].startswith("unknown control 'rotation'")
    assert problems["no_expiry"] == "no expiry (until=YYYY-MM-DD)"
    assert problems["over_long"].startswith("over-long: until= is 730 days away, more than the 365 allowed")


def test_a_refused_tag_read_leaves_every_key_and_user_and_says_why(seeded: tuple[AwsSandbox, Estate]) -> None:
    aws, estate = seeded
    faults = IamFaults()
    faults.fail_always("GetAccountAuthorizationDetails", "AccessDenied")
    client, _ = counted_client(aws, faults)
    inventory = Inventory(client, concurrency=4, tag_rules=RULES)
    records = list(inventory.records())
    users = inventory.users()
    assert len(records) == len(estate.iam_keys) + len(estate.root_keys) and len(users) == estate.user_count
    assert inventory.stats.errors == [] and inventory.stats.listing_complete
    assert (inventory.tags_read, inventory.tags_not_read) == (False, "GetAccountAuthorizationDetails: AccessDenied")
    assert {user.tags for user in users} == {None}
    assert faults.injected["GetAccountAuthorizationDetails"] == 1


def test_a_user_reread_reads_its_tags_with_list_user_tags(seeded: tuple[AwsSandbox, Estate]) -> None:
    aws, estate = seeded
    client, calls = counted_client(aws)
    name = exception_users(estate)["valid_user"]
    snapshot = read_user(client, name, tag_rules=RULES)
    assert snapshot.user is not None and snapshot.user.tags == wanted(estate, name)
    assert (calls["ListUserTags"], calls["GetAccountAuthorizationDetails"], snapshot.tags_not_read) == (1, 0, "")
    assert snapshot.user.key_ids == tuple(f"{k[:4]}...{k[-4:]}" for k in estate.user(name).access_key_ids)


def test_a_refused_list_user_tags_still_makes_the_snapshot(seeded: tuple[AwsSandbox, Estate]) -> None:
    aws, estate = seeded
    faults = IamFaults()
    faults.fail_always("ListUserTags", "AccessDenied")
    client, _ = counted_client(aws, faults)
    snapshot = read_user(client, estate.users[0].name, tag_rules=RULES)
    assert snapshot.user is not None and snapshot.user.tags is None
    assert snapshot.tags_not_read == "ListUserTags: AccessDenied"


# --- what moto cannot show: pages (moto ignores MaxItems and answers one page) and a failure between pages ---


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def detail(name: str, *tags: tuple[str, str]) -> dict[str, Any]:
    user = {
        "UserName": name,
        "UserId": "AIDA" + name.upper().ljust(17, "X"),
        "Path": "/",
        "Arn": f"arn:aws:iam::123456789012:user/{name}",
        "CreateDate": T0,
    }
    return user | ({"Tags": [{"Key": k, "Value": v} for k, v in tags]} if tags else {})


def test_every_page_is_read_a_thousand_users_at_a_time(stubbed: tuple[Any, Stubber]) -> None:
    client, stub = stubbed
    first = {"Filter": ["User"], "MaxItems": 1000}
    stub.add_response(
        "get_account_authorization_details",
        {"UserDetailList": [detail("alice", ("Owner", "a@x"))], "IsTruncated": True, "Marker": "m1"},
        first,
    )
    stub.add_response(
        "get_account_authorization_details",
        {"UserDetailList": [detail("bob", ("team", "pay"), ("other", "x")), detail("carol")], "IsTruncated": False},
        first | {"Marker": "m1"},
    )
    watch = TagWatch(client, RULES)
    assert watch.tags() == {"alice": (("Owner", "a@x"),), "bob": (("team", "pay"),)}
    assert (watch.calls, watch.not_read) == (2, "")


def test_a_failure_between_pages_gives_no_user_any_tag(stubbed: tuple[Any, Stubber]) -> None:
    client, stub = stubbed
    stub.add_response(
        "get_account_authorization_details",
        {"UserDetailList": [detail("alice", ("owner", "a@x"))], "IsTruncated": True, "Marker": "m1"},
    )
    stub.add_client_error("get_account_authorization_details", "ServiceFailure", http_status_code=500)
    watch = TagWatch(client, RULES)
    assert watch.tags() is None and watch.not_read == "GetAccountAuthorizationDetails: ServiceFailure"


def test_list_user_tags_follows_its_marker(stubbed: tuple[Any, Stubber]) -> None:
    client, stub = stubbed
    stub.add_response(
        "list_user_tags",
        {"Tags": [{"Key": "owner", "Value": "a"}], "IsTruncated": True, "Marker": "m"},
        {"UserName": "u"},
    )
    stub.add_response(
        "list_user_tags",
        {"Tags": [{"Key": "keyreport-exception", "Value": "v"}, {"Key": "x", "Value": "y"}], "IsTruncated": False},
        {"UserName": "u", "Marker": "m"},
    )
    assert read_user_tags(client, "u", RULES) == (("owner", "a"), ("keyreport-exception", "v"))


def test_a_user_deleted_before_its_tags_are_read_is_gone(stubbed: tuple[Any, Stubber]) -> None:
    client, stub = stubbed
    stub.add_response("get_user", {"User": detail("u")})
    stub.add_client_error("get_login_profile", "NoSuchEntity", http_status_code=404)
    stub.add_response("list_mfa_devices", {"MFADevices": []})
    stub.add_response("list_access_keys", {"AccessKeyMetadata": []})
    stub.add_client_error("list_user_tags", "NoSuchEntity", http_status_code=404)
    assert read_user(client, "u", tag_rules=RULES, attempts=1).gone


def test_tag_pages_still_being_read_when_the_listing_ends_are_read_to_the_end(stubbed: tuple[Any, Stubber]) -> None:
    """The key listing may end before the tag pages do: the tags are still waited for, not cut short."""
    client, stub = stubbed
    stub.add_response("generate_credential_report", {"State": "COMPLETE"})
    header = "user,arn,access_key_1_active,access_key_1_last_rotated"
    stub.add_response("get_credential_report", {"Content": header.encode(), "GeneratedTime": T0})
    stub.add_response(
        "get_account_authorization_details",
        {"UserDetailList": [detail("alice", ("owner", "a@x"))], "IsTruncated": True, "Marker": "m1"},
    )
    stub.add_response("list_users", {"Users": [], "IsTruncated": False})
    stub.add_response("get_account_authorization_details", {"UserDetailList": [], "IsTruncated": False})
    listed = threading.Event()

    def second_page_after_the_listing(params: dict[str, Any], **_: Any) -> None:
        if "Marker" in params:
            listed.wait(5)  # the second page is asked for only once the listing has ended

    client.meta.events.register_first(
        "provide-client-params.iam.GetAccountAuthorizationDetails", second_page_after_the_listing
    )
    inventory = Inventory(client, concurrency=1, tag_rules=RULES)
    assert list(inventory.records()) == []
    listed.set()
    assert inventory.users() == [] and inventory.tags_read and inventory.tags_not_read == ""
