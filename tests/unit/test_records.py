from __future__ import annotations

import json
import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyreport.records import (
    ROOT_USER,
    USER_SCOPE,
    KeyRecord,
    PasswordPolicy,
    RunSummary,
    UserRecord,
    account_from_arn,
    fingerprint,
    format_timestamp,
    key_row,
    mask_key_id,
    parse_timestamp,
    summary_row,
    user_row,
)
from tests import schema

RUN_TIME = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
RUN_ID = "0d7f6c1a-2b3c-4d5e-8f90-123456789abc"
ARN = "arn:aws:iam::123456789012:user/engineering/alice"
KEY = bytes(range(32))  # a deployment's fingerprint key
GUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")

key_ids = st.from_regex(r"\A(AKIA|ASIA)[A-Z2-7]{16}\Z")
moments = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.sampled_from([UTC, None])
)


def record(**changes: object) -> KeyRecord:
    fields: dict[str, object] = dict(
        user_name="alice",
        user_arn=ARN,
        access_key_id="AKIAIOSFODNN7EXAMPLE",
        status="Active",
        create_date=datetime(2026, 1, 1, tzinfo=UTC),
        last_used_date=datetime(2026, 11, 20, 8, 30, tzinfo=UTC),
        last_used_service="s3",
        last_used_region="eu-west-1",
        password_enabled=True,
        mfa_active=False,
    )
    fields.update(changes)
    return KeyRecord(**fields)  # type: ignore[arg-type]


def test_row_matches_the_contract() -> None:
    row = key_row(record(), run_time=RUN_TIME, run_id=RUN_ID, fingerprint_key=KEY)
    assert row == {
        "loggedDate": "2026-11-23T12:00:00Z",
        "account_number": "123456789012",
        "user": "alice",
        "UserArn": ARN,
        "AccessKeyId": "AKIA...MPLE",
        "KeyFingerprint": fingerprint("AKIAIOSFODNN7EXAMPLE", KEY),
        "Status": "Active",
        "CreateDate": "2026-01-01T00:00:00Z",
        "KeyAgeDays": 326,
        "LastUsedDate": "2026-11-20T08:30:00Z",
        "DaysSinceLastUse": 3,
        "ServiceName": "s3",
        "Region": "eu-west-1",
        "NeverUsed": False,
        "PasswordEnabled": True,
        "MfaActive": False,
        "RunId": RUN_ID,
    }


def test_never_used_key_omits_last_use_fields() -> None:
    row = key_row(
        record(last_used_date=None, last_used_service=None, last_used_region=None),
        run_time=RUN_TIME,
        run_id=RUN_ID,
        fingerprint_key=KEY,
    )
    assert row["NeverUsed"] is True
    assert not {"LastUsedDate", "ServiceName", "Region", "DaysSinceLastUse"} & row.keys()


def test_unknown_credential_report_flags_are_left_out() -> None:
    row = key_row(record(password_enabled=None, mfa_active=None), run_time=RUN_TIME, run_id=RUN_ID, fingerprint_key=KEY)
    assert "PasswordEnabled" not in row and "MfaActive" not in row


def test_root_key_slot_is_its_own_id_and_fingerprint_is_per_account() -> None:
    root = record(user_name="<root_account>", user_arn="arn:aws:iam::123456789012:root", access_key_id="root:1")
    other = record(user_name="<root_account>", user_arn="arn:aws:iam::210987654321:root", access_key_id="root:1")
    row = key_row(root, run_time=RUN_TIME, run_id=RUN_ID, fingerprint_key=KEY)
    assert row["AccessKeyId"] == "root:1" and row["user"] == "<root_account>"
    assert (
        row["KeyFingerprint"] != key_row(other, run_time=RUN_TIME, run_id=RUN_ID, fingerprint_key=KEY)["KeyFingerprint"]
    )


def test_fingerprint_never_looks_like_a_guid() -> None:
    value = fingerprint("AKIAIOSFODNN7EXAMPLE", KEY)
    assert value.startswith("kf2-") and not GUID.match(value)
    assert fingerprint("AKIAIOSFODNN7EXAMPLE", KEY) == value != fingerprint("AKIAIOSFODNN7EXAMPLF", KEY)


def test_timestamps_are_converted_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert format_timestamp(datetime(2026, 1, 1, 1, 0, tzinfo=plus_two)) == "2025-12-31T23:00:00Z"


def test_ages_never_go_negative_for_clock_skew() -> None:
    row = key_row(
        record(create_date=RUN_TIME + timedelta(minutes=5)), run_time=RUN_TIME, run_id=RUN_ID, fingerprint_key=KEY
    )
    assert row["KeyAgeDays"] == 0


@pytest.mark.parametrize("arn", ["", "arn:aws:iam::12345:user/x", "not-an-arn"])
def test_account_from_a_bad_arn_is_a_clear_error(arn: str) -> None:
    with pytest.raises(ValueError, match="12-digit account id"):
        account_from_arn(arn)


def test_summary_row_has_status_and_detail_only_when_errors() -> None:
    summary = RunSummary(RUN_ID, "123456789012", RUN_TIME, "0.1.0", "data_collector", users=3, keys=4, shipped=4)
    row = summary_row(summary)
    assert row["Status"] == "ok" and "ErrorDetail" not in row and row["RecordsShipped"] == 4
    summary.failed = 1
    summary.errors.append("x")
    assert summary_row(summary)["Status"] == "failed" and not summary.succeeded


@given(key_id=key_ids, create=moments, used=st.none() | moments, run=moments, user=st.text(min_size=1, max_size=64))
def test_full_key_id_never_appears_in_any_output(
    key_id: str, create: datetime, used: datetime | None, run: datetime, user: str
) -> None:
    rec = record(access_key_id=key_id, create_date=create, last_used_date=used, user_name=user)
    text = json.dumps(key_row(rec, run_time=run, run_id=str(uuid.uuid4()), fingerprint_key=KEY), ensure_ascii=False)
    assert key_id not in text
    assert key_id[4:-4] not in text  # nor its hidden middle
    assert mask_key_id(key_id) in text


@given(moment=moments)
def test_every_timestamp_parses_back_to_the_same_instant(moment: datetime) -> None:
    text = format_timestamp(moment)
    assert ISO.match(text)
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    assert parse_timestamp(text) == aware.replace(microsecond=0)


@given(create=moments, used=st.none() | moments, run=moments)
def test_all_row_timestamps_are_utc_iso(create: datetime, used: datetime | None, run: datetime) -> None:
    row = key_row(record(create_date=create, last_used_date=used), run_time=run, run_id=RUN_ID, fingerprint_key=KEY)
    for name in ("loggedDate", "CreateDate", "LastUsedDate"):
        if name in row:
            assert ISO.match(row[name])
    assert row["KeyAgeDays"] >= 0


def test_rows_carry_exactly_the_declared_fields() -> None:
    row = key_row(record(), run_time=RUN_TIME, run_id=RUN_ID, fingerprint_key=KEY)
    assert set(row) == schema.fields(schema.KEYS_TABLE)
    policy = PasswordPolicy(True, 14, 24, True, True, True, True, 90)
    summary = RunSummary(RUN_ID, "123456789012", RUN_TIME, "0.1.0", "data_collector", errors=["x"])
    summary.password_policy, summary.posture_not_read = policy, ["ListVirtualMFADevices: AccessDenied"]
    summary.scope, summary.scope_user, summary.user_deleted = USER_SCOPE, "alice", True
    assert set(summary_row(summary)) == schema.fields(schema.RUNS_TABLE)
    root = UserRecord(ROOT_USER, "arn:aws:iam::123456789012:root", "/", RUN_TIME, True, RUN_TIME, RUN_TIME, True,
                      0, 0, RUN_TIME, hardware_mfa=False)  # fmt: skip
    assert set(user_row(root, run_time=RUN_TIME, run_id=RUN_ID)) == schema.fields(schema.USERS_TABLE)


def test_an_account_without_a_password_policy_says_so_and_one_not_read_says_nothing() -> None:
    summary = RunSummary(RUN_ID, "123456789012", RUN_TIME, "0.1.0", "data_collector")
    assert not {"PasswordPolicy", "PostureNotRead"} & summary_row(summary).keys()
    summary.password_policy = PasswordPolicy(present=False)
    row = summary_row(summary)
    assert (row["PasswordPolicy"], row["MinPasswordLength"], row["PasswordReusePrevention"]) == (False, 0, 0)
    assert not any(row[name] for name in ("RequireSymbols", "RequireNumbers", "RequireUppercase", "RequireLowercase"))
    summary.password_policy = PasswordPolicy(True, 8, 0, False, False, False, False)
    row = summary_row(summary)
    assert (row["MinPasswordLength"], row["PasswordReusePrevention"], row["RequireSymbols"]) == (8, 0, False)
    assert "MaxPasswordAge" not in row, "passwords that never expire have no maximum age"


def test_an_account_run_row_says_its_scope_counts_and_whether_its_inventory_is_whole() -> None:
    summary = RunSummary(RUN_ID, "123456789012", RUN_TIME, "0.1.0", "data_collector", key_rows=4, user_rows=3)
    row = summary_row(summary)
    assert (row["Scope"], row["KeyRows"], row["UserRows"], row["InventoryComplete"]) == ("account", 4, 3, True)
    # account scope: present, empty and false, so a Data Collector workspace has the columns the functions name
    assert (row["ScopeUser"], row["UserDeleted"]) == ("", False)
    summary.users_not_read = 1  # a user left unread: the snapshot has a gap whatever arrives
    assert summary_row(summary)["InventoryComplete"] is False
    summary.users_not_read, summary.read_errors = 0, 1
    assert summary_row(summary)["InventoryComplete"] is False


def test_a_key_whose_last_use_is_unknown_claims_neither_use_nor_never_used() -> None:
    row = key_row(
        record(last_used_date=None, last_used_service=None, last_used_region=None, last_use_known=False),
        run_time=RUN_TIME,
        run_id=RUN_ID,
        fingerprint_key=KEY,
    )
    assert not {"NeverUsed", "LastUsedDate", "DaysSinceLastUse"} & row.keys()


def test_a_user_row_formats_times_and_leaves_unknowns_out() -> None:
    created = datetime(2020, 2, 3, 4, 5, 6)  # naive: taken as UTC, like botocore's
    record = UserRecord("bob", "arn:aws:iam::123456789012:user/ops/bob", "/ops/", created, active_keys=1, keys=2)
    row = user_row(record, run_time=datetime(2026, 11, 30, tzinfo=UTC), run_id="r-1")
    assert row == {
        "loggedDate": "2026-11-30T00:00:00Z",
        "account_number": "123456789012",
        "user": "bob",
        "UserArn": "arn:aws:iam::123456789012:user/ops/bob",
        "Path": "/ops/",
        "CreateDate": "2020-02-03T04:05:06Z",
        "ActiveKeys": 1,
        "Keys": 2,
        "Owner": "",
        "OwnerTags": "{}",
        "Exceptions": "[]",
        "RunId": "r-1",
    }  # no credential report: password and MFA unknown, so absent rather than false
    known = user_row(replace(record, password_enabled=False, mfa_active=False), run_time=created, run_id="r")
    assert (known["PasswordEnabled"], known["MfaActive"]) == (False, False)


def test_owner_and_exception_fields_are_on_every_user_row_compact_and_only_the_wanted_tags() -> None:
    """Always present (root row included), compact JSON; tags outside KEYREPORT_OWNER_TAGS never reach a row."""
    root = UserRecord(ROOT_USER, "arn:aws:iam::123456789012:root", "/", RUN_TIME)
    row = user_row(root, run_time=RUN_TIME, run_id=RUN_ID)
    assert (row["Owner"], row["OwnerTags"], row["Exceptions"]) == ("", "{}", "[]")
    tags = (("Team", "payments"), ("OWNER", "alice@example.com"),
            ("keyreport-exception", "CIS-2.13 until=2027-03-31 by=bob@example.com reason=SES SMTP"))  # fmt: skip
    row = user_row(UserRecord("bob", ARN, "/", RUN_TIME, tags=tags), run_time=RUN_TIME, run_id=RUN_ID)
    assert row["Owner"] == "alice@example.com"
    assert row["OwnerTags"] == '{"owner":"alice@example.com","team":"payments"}'  # named as the setting names them
    assert json.loads(row["Exceptions"]) == [
        {"Tag": "keyreport-exception", "Value": tags[2][1], "Control": "key-rotation-90-days", "Key": "",
         "Until": "2027-03-31", "ApprovedBy": "bob@example.com", "Reason": "SES SMTP", "Problem": ""}
    ]  # fmt: skip
    assert ": " not in row["Exceptions"] and ", " not in row["OwnerTags"]


def test_the_owner_follows_the_settings_order_and_an_empty_tag_names_nobody() -> None:
    from keyreport.tags import TagRules

    tags = (("owner", ""), ("team", "payments"), ("cost-centre", "42"))
    record = UserRecord("bob", ARN, "/", RUN_TIME, tags=tags)
    row = user_row(record, run_time=RUN_TIME, run_id=RUN_ID, tag_rules=TagRules(("Owner", "team")))
    assert (row["Owner"], row["OwnerTags"]) == ("payments", '{"Owner":"","team":"payments"}')
    row = user_row(record, run_time=RUN_TIME, run_id=RUN_ID, tag_rules=TagRules(()))
    assert (row["Owner"], row["OwnerTags"], row["Exceptions"]) == ("", "{}", "[]")


def test_the_run_row_says_whether_tags_were_read_and_the_longest_exception_allowed() -> None:
    summary = RunSummary(RUN_ID, "123456789012", RUN_TIME, "0.1.0", "data_collector", max_exception_days=90)
    summary.tags_not_read = "GetAccountAuthorizationDetails: AccessDenied"
    row = summary_row(summary)
    assert (row["TagsRead"], row["TagsNotRead"], row["MaxExceptionDays"]) == (False, summary.tags_not_read, 90)
    summary.tags_read = True
    row = summary_row(summary)
    assert row["TagsRead"] is True and "TagsNotRead" not in row
