"""The AWS sandbox: moto on a free loopback port, seeded with an estate that boto3 reads back exactly."""

from __future__ import annotations

import csv
import io
import os
import re
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from sandbox.aws import AwsSandbox
from sandbox.estate import REPORT_COLUMNS, ROOT_USER, Estate, read_estate, seed_client_secret, seed_estate

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
REPORT_DATE = "%Y-%m-%dT%H:%M:%S+00:00"


@pytest.fixture(scope="module")
def aws() -> Iterator[AwsSandbox]:
    with AwsSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def fresh(aws: AwsSandbox) -> AwsSandbox:
    aws.reset()  # moto's state is per process, not per sandbox: start every test from empty
    return aws


def credential_report(iam: Any) -> tuple[dict[str, dict[str, str]], dict[str, Any]]:
    iam.generate_credential_report()
    response = iam.get_credential_report()
    rows = list(csv.DictReader(io.StringIO(response["Content"].decode())))
    assert rows and tuple(rows[0]) == REPORT_COLUMNS
    return {row["user"]: row for row in rows}, response


def report_date(when: datetime | None) -> str:
    return "N/A" if when is None else when.strftime(REPORT_DATE)


# -- the server --------------------------------------------------------------------------------------


def test_starts_on_a_free_port_and_env_reaches_it(aws: AwsSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", aws.endpoint_url)
    with AwsSandbox() as other:
        assert other.port != aws.port
    env = aws.env()
    assert env["AWS_ENDPOINT_URL"] == aws.endpoint_url
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # A client built from the environment alone, as the Lambda handler builds its own.
    identity = boto3.session.Session().client("sts").get_caller_identity()
    assert identity["Account"] == aws.account_id == "123456789012"


def test_env_over_a_base_drops_what_would_override_it(aws: AwsSandbox) -> None:
    base = {"PATH": "/bin", "AWS_PROFILE": "prod", "AWS_ENDPOINT_URL_IAM": "https://iam.amazonaws.com"}
    merged = aws.env(base)
    assert merged["PATH"] == "/bin"
    assert "AWS_PROFILE" not in merged and "AWS_ENDPOINT_URL_IAM" not in merged
    assert merged["AWS_ENDPOINT_URL"] == aws.endpoint_url


def test_stop_releases_the_port() -> None:
    sandbox = AwsSandbox().start()
    port = sandbox.port
    sandbox.stop()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


# -- what boto3 reads back over HTTP -----------------------------------------------------------------


def test_http_reads_back_exactly_the_estate(fresh: AwsSandbox) -> None:
    estate = seed_estate(fresh, users=80, seed=11, now=NOW)
    assert estate == read_estate(fresh, now=NOW)
    iam = fresh.client("iam")

    listed = iam.get_paginator("list_users").paginate().build_full_result()["Users"]
    assert [(u["UserName"], u["Arn"], u["Path"], u["UserId"], u["CreateDate"]) for u in listed] == [
        (u.name, u.arn, u.path, u.user_id, u.create_date) for u in estate.users
    ]

    report, response = credential_report(iam)
    for user in estate.users:
        keys = iam.list_access_keys(UserName=user.name)["AccessKeyMetadata"]
        assert [k["AccessKeyId"] for k in keys] == list(user.access_key_ids)
        row = report[user.name]
        assert row["arn"] == user.arn
        assert row["password_enabled"] == str(user.password_enabled).lower()
        assert row["mfa_active"] == str(user.mfa_active).lower()
        if not user.password_enabled:
            assert row["password_last_used"] == row["password_last_changed"] == "N/A"
        elif user.password_last_used is not None:
            assert row["password_last_used"] == report_date(user.password_last_used)
        for slot, listed_key in enumerate(keys, start=1):
            truth = estate.key(listed_key["AccessKeyId"])
            assert truth.slot == slot
            assert (listed_key["Status"], listed_key["CreateDate"]) == (truth.status, truth.create_date)
            used = iam.get_access_key_last_used(AccessKeyId=truth.access_key_id)["AccessKeyLastUsed"]
            if truth.never_used:
                assert used == {"ServiceName": "N/A", "Region": "N/A"}  # no LastUsedDate, as in AWS
            else:
                assert (used["LastUsedDate"], used["ServiceName"], used["Region"]) == (
                    truth.last_used_date,
                    truth.last_used_service,
                    truth.last_used_region,
                )
            # moto fills the report's key columns from the same objects, slot N = list position N.
            prefix = f"access_key_{slot}_"
            assert row[prefix + "active"] == str(truth.active).lower()
            assert row[prefix + "last_rotated"] == report_date(truth.create_date)
            assert row[prefix + "last_used_date"] == report_date(truth.last_used_date)
            assert row[prefix + "last_used_service"] == (truth.last_used_service or "N/A")
            assert row[prefix + "last_used_region"] == (truth.last_used_region or "N/A")
        for slot in range(len(keys) + 1, 3):
            assert row[f"access_key_{slot}_active"] == "false"
            assert row[f"access_key_{slot}_last_rotated"] == "N/A"

    # The root user: a report row only, first, with the seeded key in slot 1.
    assert next(iter(report)) == ROOT_USER
    root, (root_key,) = report[ROOT_USER], estate.root_keys
    assert root["arn"] == f"arn:aws:iam::{estate.account_id}:root"
    assert root["password_enabled"] == "not_supported"
    assert (root["access_key_1_active"], root["access_key_2_active"]) == ("true", "false")
    assert root["access_key_1_last_rotated"] == report_date(root_key.create_date)
    assert root["access_key_1_last_used_date"] == report_date(root_key.last_used_date)
    assert root["access_key_1_last_used_service"] == root_key.last_used_service
    assert len(report) == estate.user_count + 1
    assert response["GeneratedTime"] == datetime(2015, 2, 2, 20, 2, 2, tzinfo=UTC)  # moto's fixed time


def test_moto_report_style_keeps_motos_own_report(fresh: AwsSandbox) -> None:
    with pytest.raises(ValueError, match="root"):
        seed_estate(fresh, users=5, now=NOW, credential_report="moto")
    fresh.reset()
    estate = seed_estate(fresh, users=40, now=NOW, root_keys=0, credential_report="moto")
    assert estate.root_keys == () and estate.credential_report == "moto"
    iam = fresh.client("iam")
    with pytest.raises(iam.exceptions.CredentialReportNotPresentException):
        iam.get_credential_report()
    assert iam.generate_credential_report()["State"] == "STARTED"  # then COMPLETE: poll, as with AWS
    report, _ = credential_report(iam)
    assert ROOT_USER not in report and len(report) == estate.user_count
    used = next(k for k in estate.keys if not k.never_used)
    row = report[used.user_name]
    slot = f"access_key_{used.slot}_"
    assert row[slot + "last_used_date"] == report_date(used.last_used_date)  # dates: adjusted
    assert row[slot + "last_used_service"] == row[slot + "last_used_region"] == "not_supported"
    # moto renders the report when asked, not when generated: a later user is already in it.
    iam.create_user(UserName="late-arrival")
    assert "late-arrival" in credential_report(iam)[0]


# -- the estate itself -------------------------------------------------------------------------------


def test_same_seed_and_now_give_the_same_estate(fresh: AwsSandbox) -> None:
    first = seed_estate(fresh, users=60, seed=3, now=NOW)
    fresh.reset()
    again = seed_estate(fresh, users=60, seed=3, now=NOW)
    assert first == again  # ids, names, dates, last uses: everything
    fresh.reset()
    other = seed_estate(fresh, users=60, seed=4, now=NOW)
    assert [u.name for u in other.users] != [u.name for u in first.users]


def test_seeding_twice_needs_a_reset(fresh: AwsSandbox) -> None:
    seed_estate(fresh, users=10, now=NOW)
    with pytest.raises(RuntimeError, match="reset"):
        seed_estate(fresh, users=10, now=NOW)


def test_interesting_cases_are_all_there(fresh: AwsSandbox) -> None:
    started = time.perf_counter()
    estate = seed_estate(fresh, users=300, now=NOW)
    assert time.perf_counter() - started < 5
    assert estate.user_count == 300
    assert estate.key_count == len(estate.iam_keys) + 1

    handful = 3
    old_active = estate.keys_older_than(90, active_only=True)
    assert len(old_active) >= handful
    assert sum(1 for k in estate.never_used() if k.age(NOW) > timedelta(days=90)) >= handful
    assert sum(1 for k in estate.never_used() if k.age(NOW) < timedelta(days=30)) >= handful
    assert len(estate.unused_for(90)) >= handful
    assert len(estate.inactive()) >= handful
    assert len(estate.users_with_two_active_keys()) >= handful
    keyless_console = [u for u in estate.users if not u.access_key_ids and u.password_enabled and u.mfa_active]
    assert len(keyless_console) >= handful
    assert {len(u.access_key_ids) for u in estate.users} == {0, 1, 2}
    assert any(k.is_root and k.active for k in estate.keys)

    ages = [k.age(NOW) for k in estate.iam_keys]
    assert min(ages) >= timedelta(days=1)
    assert max(ages) > timedelta(days=5 * 365)
    assert {k.last_used_service for k in estate.keys} >= {"s3", "ec2", "sts", "iam", "lambda", "dynamodb"}
    assert {u.path for u in estate.users} >= {"/", "/engineering/", "/service-accounts/"}
    assert any(set(u.name) & set("+=,@") for u in estate.users)
    assert any(len(u.name) == 64 for u in estate.users)
    # Keys just either side of 90 days, well clear of the boundary so a later run time cannot flip them.
    near = sorted(a for a in ages if timedelta(days=89) < a < timedelta(days=91))
    assert timedelta(days=89, hours=12) in near and timedelta(days=90, hours=12) in near


def assert_consistent(estate: Estate) -> None:
    names = [u.name.casefold() for u in estate.users]
    assert len(names) == len(set(names))  # IAM names are unique case-insensitively
    assert all(re.fullmatch(r"[\w+=,.@-]{1,64}", u.name, re.ASCII) for u in estate.users)
    assert len({k.access_key_id for k in estate.keys}) == estate.key_count
    for user in estate.users:
        keys = estate.keys_of(user.name)
        assert [k.access_key_id for k in keys] == list(user.access_key_ids)
        assert all(user.create_date <= k.create_date for k in keys)
        assert [k.create_date for k in keys] == sorted(k.create_date for k in keys)  # slot 1 is older
        if user.password_last_used is not None:
            assert user.password_enabled and user.create_date <= user.password_last_used <= estate.now
    for key in estate.keys:
        assert key.create_date.tzinfo is UTC and key.create_date.microsecond == 0
        assert key.create_date <= estate.now
        assert key.is_root or re.fullmatch(r"AKIA[A-Z2-7]{16}", key.access_key_id)
        if key.last_used_date is not None:
            assert key.create_date <= key.last_used_date <= estate.now
            assert key.last_used_service and key.last_used_region


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), users=st.integers(0, 40), root_keys=st.integers(0, 2))
def test_any_seed_gives_a_consistent_estate(aws: AwsSandbox, seed: int, users: int, root_keys: int) -> None:
    aws.reset()
    estate = seed_estate(aws, users=users, seed=seed, now=NOW, root_keys=root_keys)
    assert estate.user_count == users and len(estate.root_keys) == root_keys
    assert_consistent(estate)


def test_five_thousand_users_seed_in_seconds(fresh: AwsSandbox) -> None:
    started = time.perf_counter()
    estate = seed_estate(fresh, users=5000, now=NOW)
    assert time.perf_counter() - started < 15
    assert estate.user_count == 5000
    assert_consistent(estate)


def test_seeds_an_in_process_mock_aws_client_too() -> None:
    with mock_aws():  # note: mock_aws resets every backend in the process when it starts and stops
        iam = boto3.client("iam", region_name="us-east-1")
        estate = seed_estate(iam, users=20, now=NOW)
        assert len(iam.list_users()["Users"]) == 20
        assert read_estate(iam, now=NOW) == estate


# -- Secrets Manager -----------------------------------------------------------------------------------


def test_client_secret_is_the_secret_string(fresh: AwsSandbox) -> None:
    arn = seed_client_secret(fresh, "keyreport/azure-client-secret", "s3cr3t~value")
    secrets = fresh.client("secretsmanager")
    assert arn.startswith(f"arn:aws:secretsmanager:us-east-1:{fresh.account_id}:secret:")
    assert secrets.get_secret_value(SecretId=arn)["SecretString"] == "s3cr3t~value"
    assert seed_client_secret(fresh, "keyreport/azure-client-secret", "rotated") == arn
    assert secrets.get_secret_value(SecretId=arn)["SecretString"] == "rotated"
