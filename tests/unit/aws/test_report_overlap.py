"""Keys are listed while the credential report is generated (moto in process, the report held back on the wire)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from moto import mock_aws
from moto.iam.models import iam_backends

from keyreport.aws.inventory import Inventory
from keyreport.records import KeyRecord
from sandbox.estate import Estate, EstateKey, read_estate, seed_estate

USERS = 40
AWS_ENV = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}


class SlowReport:
    """Answers GenerateCredentialReport with INPROGRESS until `ready` (moto answers after); counts IAM calls.

    `ready` is set once `open_after` users' keys have been listed; None keeps the report in progress forever.
    """

    def __init__(self, client: Any, open_after: int | None) -> None:
        self.open_after = open_after
        self.ready = threading.Event()
        self.calls: Counter[str] = Counter()
        self.listed_before_ready = 0
        self._lock = threading.Lock()
        client.meta.events.register("before-call.iam", self._count)
        client.meta.events.register_first("before-call.iam.GenerateCredentialReport", self._generate)
        client.meta.events.register("after-call.iam.ListAccessKeys", self._listed)

    def _count(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1

    def _generate(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if self.ready.is_set():
            return None
        return AWSResponse("https://iam.amazonaws.com/", 200, HTTPHeaders(), None), {"State": "INPROGRESS"}

    def _listed(self, **_: Any) -> None:
        with self._lock:
            if not self.ready.is_set():
                self.listed_before_ready += 1
            if self.open_after is not None and self.listed_before_ready >= self.open_after:
                self.ready.set()


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Estate]]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("iam")
        yield client, seed_estate(client, users=USERS, seed=11, root_keys=1)


def truth(client: Any, *, root: bool = True) -> dict[str, EstateKey]:
    """Every key as moto holds it now; the root's keys exist only in the report."""
    return {key.access_key_id: key for key in read_estate(client).keys if root or not key.is_root}


def assert_records_are_the_estate(records: list[KeyRecord], keys: dict[str, EstateKey], *, from_report: bool) -> None:
    assert sorted(record.access_key_id for record in records) == sorted(keys)
    for record in records:
        key = keys[record.access_key_id]
        assert (record.user_name, record.status, record.create_date) == (key.user_name, key.status, key.create_date)
        used = (record.last_used_date, record.last_used_service, record.last_used_region)
        assert used == (key.last_used_date, key.last_used_service, key.last_used_region), record.access_key_id
        if from_report:
            assert (record.password_enabled, record.mfa_active) == (key.password_enabled, key.mfa_active)


def test_every_key_is_listed_before_the_report_is_ready_and_then_placed_in_it(account: tuple[Any, Estate]) -> None:
    client, estate = account
    slow = SlowReport(client, open_after=USERS)  # ready only once every user's keys were listed
    inventory = Inventory(client, concurrency=4, report_wait_seconds=30)

    records = list(inventory.records())

    assert slow.listed_before_ready == USERS and inventory.stats.report_used
    assert_records_are_the_estate(records, truth(client), from_report=True)
    assert slow.calls["GetAccessKeyLastUsed"] == 0  # the report placed every key
    assert inventory.stats.keys == len(records) == estate.key_count and not inventory.stats.errors


def test_a_report_ready_midway_places_the_waiting_keys_and_the_rest_inline(account: tuple[Any, Estate]) -> None:
    client, _ = account
    slow = SlowReport(client, open_after=USERS // 4)
    inventory = Inventory(client, concurrency=2, report_wait_seconds=30)

    records = list(inventory.records())

    assert USERS // 4 <= slow.listed_before_ready < USERS
    assert_records_are_the_estate(records, truth(client), from_report=True)
    assert slow.calls["GetAccessKeyLastUsed"] == 0 and inventory.stats.report_used


def test_keys_the_report_cannot_place_get_their_own_call(account: tuple[Any, Estate]) -> None:
    client, estate = account
    name = estate.users_with_two_active_keys()[0]
    first, second = iam_backends[estate.account_id]["aws"].users[name].access_keys
    second.create_date = first.create_date  # same second: which slot is which key is not knowable
    slow = SlowReport(client, open_after=USERS)
    inventory = Inventory(client, concurrency=4, report_wait_seconds=30)

    records = list(inventory.records())

    assert slow.calls["GetAccessKeyLastUsed"] == 2 and inventory.stats.report_used
    assert_records_are_the_estate(records, truth(client), from_report=True)


def test_no_report_in_time_every_waiting_key_gets_its_own_call(account: tuple[Any, Estate]) -> None:
    client, estate = account
    slow = SlowReport(client, open_after=None)
    inventory = Inventory(client, concurrency=4, report_wait_seconds=1)

    records = list(inventory.records())

    assert not inventory.stats.report_used and slow.calls["GetAccessKeyLastUsed"] == len(estate.iam_keys)
    assert slow.calls["GenerateCredentialReport"] <= 3  # polled every 0.5 s, not in a busy loop
    assert_records_are_the_estate(records, truth(client, root=False), from_report=False)
    assert all(record.password_enabled is None and record.mfa_active is None for record in records)


def test_an_inventory_that_fails_stops_polling_the_report(account: tuple[Any, Estate]) -> None:
    client, _ = account
    slow = SlowReport(client, open_after=None)

    def refuse(**_: Any) -> None:
        raise RuntimeError("listing broke")

    client.meta.events.register("before-call.iam.ListUsers", refuse)
    inventory = Inventory(client, concurrency=2, report_wait_seconds=60)
    with pytest.raises(RuntimeError, match="listing broke"):
        list(inventory.records())
    polling = [thread for thread in threading.enumerate() if thread.name == "credential-report"]
    for thread in polling:
        thread.join(timeout=2)
    assert not any(thread.is_alive() for thread in polling)
    assert slow.calls["GenerateCredentialReport"] <= 2
