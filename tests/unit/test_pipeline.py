"""pipeline.run and report_unreachable_account: IAM through botocore's Stubber, a fake sink, spill on moto's S3."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import Stubber

from keyreport.deadline import Deadline
from keyreport.pipeline import RunResult, report_unreachable_account, run
from keyreport.records import Row, format_timestamp
from keyreport.settings import Settings
from keyreport.sinks.base import Delivery, FailedBatch, OnFailed, Table
from keyreport.spill.bucket import SpillBucket
from tests.unit.fakes import BUCKET, FakeSink, moto_spill_bucket, stubbed_client

ACCOUNT = "123456789012"
NOW = datetime(2026, 11, 30, 1, 0, 0, tzinfo=UTC)
NOW_TEXT = "2026-11-30T01:00:00Z"
CREATED = datetime(2026, 1, 30, 1, 0, 0, tzinfo=UTC)
USED = datetime(2026, 11, 20, 9, 0, 0, tzinfo=UTC)
# Three keys: the sink's batches of two make the third one a batch of its own.
KEYS = {"alice": ["AKIAALICE00000000001", "AKIAALICE00000000002"], "bob": ["AKIABOB0000000000003"]}
KEY = bytes(range(32))  # the deployment's fingerprint key
SETTINGS = Settings.from_env({"KEYREPORT_SINK": "stdout", "KEYREPORT_IAM_CONCURRENCY": "1"})


class FakeSts:
    def get_caller_identity(self) -> dict[str, str]:
        return {"Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:role/keyreport", "UserId": "AROAEXAMPLE"}


class FakeAccount:
    """What `run` asks of AwsClients: who the credentials belong to, and an IAM client."""

    def __init__(self, iam: Any) -> None:
        self.iam = iam

    def sts(self) -> FakeSts:
        return FakeSts()

    def client(self, service: str) -> Any:
        assert service == "iam", f"run asked for a {service} client"
        return self.iam


@pytest.fixture
def iam() -> Iterator[tuple[Any, Stubber]]:
    with stubbed_client("iam") as client_and_stub:
        yield client_and_stub


@pytest.fixture
def spill() -> Iterator[SpillBucket]:
    with moto_spill_bucket() as bucket:
        yield bucket


TAGS = {
    "alice": [
        {"Key": "Owner", "Value": "alice@example.com"},
        {"Key": "cost-centre", "Value": "4711"},  # not wanted: never leaves AWS
        {"Key": "keyreport-exception", "Value": "IAM.3 key=AKIA...0002 until=2027-01-31 by=carol reason=vendor"},
    ]
}


def stub_tags(stub: Stubber, tags: dict[str, list[dict[str, str]]] | None = None, error: str | None = None) -> None:
    """Every user's tags: one GetAccountAuthorizationDetails page of users (or IAM's refusal)."""
    expected = {"Filter": ["User"], "MaxItems": 1000}
    if error is not None:
        stub.add_client_error(
            "get_account_authorization_details", error, http_status_code=403, expected_params=expected
        )
        return
    details = [
        {"UserName": name, "UserId": f"AIDA{name.upper():X<17}", "Path": "/", "Arn": arn(name), "CreateDate": CREATED}
        | ({"Tags": (tags or {})[name]} if name in (tags or {}) else {})
        for name in KEYS
    ]
    stub.add_response("get_account_authorization_details", {"UserDetailList": details, "IsTruncated": False}, expected)


def stub_inventory(stub: Stubber, keys: dict[str, list[str]], *, tags_error: str | None = None) -> None:
    """A credential report with only the root user (no keys), every user's tags, one page of users, each key's
    last use asked for; then the account's posture: root MFA on a virtual device, a console password, no password
    policy."""
    report = (
        f"user,arn,access_key_1_active,access_key_1_last_rotated\n<root_account>,arn:aws:iam::{ACCOUNT}:root,false,N/A"
    )
    stub.add_response("generate_credential_report", {"State": "COMPLETE"})
    stub.add_response("get_credential_report", {"Content": report.encode(), "GeneratedTime": NOW})
    stub_tags(stub, TAGS, tags_error)  # asked for before listing starts; later pages would overlap the listing
    users = [
        {"UserName": name, "UserId": f"AIDA{name.upper():X<17}", "Path": "/", "Arn": arn(name), "CreateDate": CREATED}
        for name in keys
    ]
    stub.add_response("list_users", {"Users": users, "IsTruncated": False})
    for name, ids in keys.items():
        metadata = [{"UserName": name, "AccessKeyId": i, "Status": "Active", "CreateDate": CREATED} for i in ids]
        stub.add_response("list_access_keys", {"AccessKeyMetadata": metadata, "IsTruncated": False}, {"UserName": name})
        for key_id in ids:
            last_use = {"LastUsedDate": USED, "ServiceName": "s3", "Region": "eu-west-1"}
            stub.add_response("get_access_key_last_used", {"AccessKeyLastUsed": last_use}, {"AccessKeyId": key_id})
    stub_posture(stub)


def stub_posture(stub: Stubber) -> None:
    summary = {"AccountMFAEnabled": 1, "AccountPasswordPresent": 1, "AccountAccessKeysPresent": 0}
    stub.add_response("get_account_summary", {"SummaryMap": summary})
    root = {"Path": "/", "UserName": ACCOUNT, "UserId": f"{ACCOUNT}0000", "Arn": f"arn:aws:iam::{ACCOUNT}:root"}
    device = {
        "SerialNumber": f"arn:aws:iam::{ACCOUNT}:mfa/root-account-mfa-device",
        "EnableDate": CREATED,
        "User": root | {"CreateDate": CREATED},
    }
    stub.add_response(
        "list_virtual_mfa_devices",
        {"VirtualMFADevices": [device], "IsTruncated": False},
        {"AssignmentStatus": "Assigned"},
    )
    stub.add_client_error("get_account_password_policy", "NoSuchEntity", http_status_code=404)


def arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


def run_once(iam: Any, sink: FakeSink, spill: SpillBucket | None) -> RunResult:
    account = FakeAccount(iam)
    return run(SETTINGS, account, sink, Deadline(), fingerprint_key=KEY, spill=spill, clock=lambda: NOW)  # type: ignore[arg-type]


def run_over_keys(iam: tuple[Any, Stubber], sink: FakeSink, spill: SpillBucket | None) -> RunResult:
    """One run over the account holding KEYS."""
    client, stub = iam
    stub_inventory(stub, KEYS)
    return run_once(client, sink, spill)


def log_lines(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def full_key_ids() -> list[str]:
    return [key_id for ids in KEYS.values() for key_id in ids]


def test_everything_delivered_makes_an_ok_run_row(iam: tuple[Any, Stubber], spill: SpillBucket) -> None:
    sink = FakeSink()

    result = run_over_keys(iam, sink, spill)

    summary = result.summary
    assert (summary.status, summary.succeeded, result.failed_batches) == ("ok", True, [])
    assert [row["AccessKeyId"] for row in sink.delivered[Table.KEYS]] == ["AKIA...0001", "AKIA...0002", "AKIA...0003"]
    first = sink.delivered[Table.KEYS][0]
    assert (first["account_number"], first["user"], first["UserArn"]) == (ACCOUNT, "alice", arn("alice"))
    assert (first["loggedDate"], first["KeyAgeDays"], first["DaysSinceLastUse"]) == (NOW_TEXT, 304, 9)
    assert {row["RunId"] for row in sink.delivered[Table.KEYS]} == {summary.run_id}
    [run_row] = sink.delivered[Table.RUNS]
    assert run_row["RunId"] == summary.run_id and run_row["Status"] == "ok" and run_row["Sink"] == "fake"
    assert (run_row["Users"], run_row["Keys"], run_row["UsersSkipped"]) == (2, 3, 0)
    assert (run_row["RecordsShipped"], run_row["RecordsSpilled"], run_row["RecordsFailed"]) == (3, 0, 0)
    assert run_row["Errors"] == 0 and "ErrorDetail" not in run_row
    # What the workspace checks the snapshot against: the rows it produced for each table, and its scope.
    assert (run_row["KeyRows"], run_row["UserRows"]) == (3, 3)  # alice, bob and the root user
    assert (run_row["Scope"], run_row["InventoryComplete"]) == ("account", True)
    assert (run_row["ScopeUser"], run_row["UserDeleted"]) == ("", False)
    assert sink.calls == [Table.KEYS, Table.USERS, Table.RUNS]  # the run row goes last, once the counts are known
    users = {row["user"]: row for row in sink.delivered[Table.USERS]}
    assert set(users) == {*KEYS, "<root_account>"} and {row["RunId"] for row in users.values()} == {summary.run_id}
    root = users["<root_account>"]
    assert (root["PasswordEnabled"], root["MfaActive"], root["HardwareMfa"], root["Keys"]) == (True, True, False, 0)
    assert (run_row["PasswordPolicy"], run_row["MinPasswordLength"], "PostureNotRead" in run_row) == (False, 0, False)
    assert (users["alice"]["Keys"], users["alice"]["ActiveKeys"], users["alice"]["Path"]) == (2, 2, "/")
    assert users["alice"]["LastActivity"] == format_timestamp(USED)
    assert "PasswordEnabled" not in users["alice"], "no credential report: unknown, not false"
    assert list(spill.object_keys()) == []
    sent = json.dumps(list(sink.delivered.values()))
    assert not any(key_id in sent for key_id in full_key_ids())


def test_a_failed_batch_is_spilled_and_counted(iam: tuple[Any, Stubber], spill: SpillBucket) -> None:
    sink = FakeSink(refuse={(Table.KEYS, 1)})

    result = run_over_keys(iam, sink, spill)

    summary = result.summary
    assert result.failed_batches == []  # parked, so not lost
    assert (summary.shipped, summary.spilled, summary.failed) == (2, 1, 0)
    assert summary.status == "partial" and not summary.succeeded
    [key] = summary.spill_keys
    assert key == f"keyreport/spill/{ACCOUNT}/{summary.run_id}/keys-00000.json"
    assert list(spill.object_keys()) == [key]
    parked = spill.load(key)
    assert [row["AccessKeyId"] for row in parked.rows] == ["AKIA...0003"]
    assert (parked.table, parked.run_id, parked.account_id) == (Table.KEYS, summary.run_id, ACCOUNT)
    assert parked.sink == "fake"
    assert parked.reason == "HTTP 503 on keys batch 1" and len(parked.attempts) == 2
    [run_row] = sink.delivered[Table.RUNS]
    assert (run_row["Status"], run_row["RecordsShipped"], run_row["RecordsSpilled"]) == ("partial", 2, 1)
    # The spilled row is still one the run produced: once replayed, the snapshot is complete.
    assert (run_row["KeyRows"], run_row["UserRows"], run_row["InventoryComplete"]) == (3, 3, True)


def test_when_spilling_fails_the_rows_are_logged_and_returned(
    iam: tuple[Any, Stubber], capsys: pytest.CaptureFixture[str]
) -> None:
    sink = FakeSink(refuse={(Table.KEYS, 0), (Table.RUNS, 0)})

    with moto_spill_bucket(create=False) as missing:
        result = run_over_keys(iam, sink, missing)

    summary = result.summary
    assert [(batch.table, len(batch.rows)) for batch in result.failed_batches] == [(Table.KEYS, 2), (Table.RUNS, 1)]
    assert (summary.shipped, summary.spilled, summary.failed, summary.status) == (1, 0, 2, "failed")
    assert summary.spill_keys == []
    first_key = f"keyreport/spill/{ACCOUNT}/{summary.run_id}/keys-00000.json"
    cannot_write = f"cannot write s3://{BUCKET}/{first_key}: NoSuchBucket"
    assert summary.errors[0] == cannot_write
    assert "run summary row not delivered" in summary.errors
    logs = log_lines(capsys.readouterr().err)
    undelivered = [line for line in logs if line["message"] == "undelivered record"]
    assert [(line["table"], line["reason"]) for line in undelivered] == [
        ("keys", "HTTP 503 on keys batch 0"),
        ("keys", "HTTP 503 on keys batch 0"),
        ("runs", "HTTP 503 on runs batch 0"),
    ]
    assert [line["record"]["AccessKeyId"] for line in undelivered[:2]] == ["AKIA...0001", "AKIA...0002"]
    # The run row that could not be parked tells why, so the log alone explains the loss.
    assert cannot_write in undelivered[2]["record"]["ErrorDetail"]
    assert not any(key_id in json.dumps(logs) for key_id in full_key_ids())


def test_without_a_spill_bucket_failed_rows_are_logged_and_returned(
    iam: tuple[Any, Stubber], capsys: pytest.CaptureFixture[str]
) -> None:

    result = run_over_keys(iam, FakeSink(refuse={(Table.KEYS, 1)}), None)

    assert [batch.rows[0]["AccessKeyId"] for batch in result.failed_batches] == ["AKIA...0003"]
    assert (result.summary.failed, result.summary.spilled, result.summary.status) == (1, 0, "failed")
    logged = [line["record"]["AccessKeyId"] for line in log_lines(capsys.readouterr().err) if "record" in line]
    assert logged == ["AKIA...0003"]


def test_inventory_stopped_by_an_aws_error_ships_what_was_read_and_fails_the_run(
    iam: tuple[Any, Stubber], spill: SpillBucket
) -> None:
    client, stub = iam
    # A credential report holding only the root user's key: it is read before any user is listed.
    report = "user,arn,access_key_1_active,access_key_1_last_rotated\n"
    report += f"<root_account>,arn:aws:iam::{ACCOUNT}:root,true,2021-05-05T05:05:05+00:00"
    stub.add_response("generate_credential_report", {"State": "COMPLETE"})
    stub.add_response("get_credential_report", {"Content": report.encode(), "GeneratedTime": NOW})
    stub.add_client_error("list_users", "ServiceUnavailable", "IAM is having a moment", http_status_code=503)
    sink = FakeSink()

    result = run_once(client, sink, spill)

    summary = result.summary
    assert [row["AccessKeyId"] for row in sink.delivered[Table.KEYS]] == ["root:1"]
    assert not summary.inventory_complete and summary.status == "failed" and not summary.succeeded
    assert summary.errors == [
        "inventory stopped: ClientError: An error occurred (ServiceUnavailable) when calling the ListUsers "
        "operation: IAM is having a moment"
    ]
    [run_row] = sink.delivered[Table.RUNS]
    assert (run_row["Status"], run_row["Keys"], run_row["RecordsShipped"]) == ("failed", 1, 1)
    assert run_row["ErrorDetail"] == summary.errors[0]
    assert (run_row["KeyRows"], run_row["UserRows"], run_row["InventoryComplete"]) == (1, 0, False)


def test_a_run_row_not_delivered_is_an_error_and_is_spilled(iam: tuple[Any, Stubber], spill: SpillBucket) -> None:
    sink = FakeSink(refuse={(Table.RUNS, 0)})

    result = run_over_keys(iam, sink, spill)

    summary = result.summary
    assert result.failed_batches == [] and len(sink.delivered[Table.KEYS]) == 3
    assert summary.errors == ["run summary row not delivered"] and not summary.succeeded
    [key] = summary.spill_keys
    assert key.endswith(f"/{summary.run_id}/runs-00000.json")
    [row] = spill.load(key).rows
    assert (row["RunId"], row["RecordsShipped"], row["account_number"]) == (summary.run_id, 3, ACCOUNT)


def test_an_unreachable_account_gets_a_failed_run_row() -> None:
    sink = FakeSink()
    reason = "cannot assume arn:aws:iam::210987654321:role/keyreport-member: AccessDenied"

    result = report_unreachable_account("210987654321", reason, sink, Deadline(), clock=lambda: NOW)

    assert result.failed_batches == [] and sink.delivered[Table.KEYS] == []
    [row] = sink.delivered[Table.RUNS]
    assert (row["account_number"], row["RunId"], row["loggedDate"]) == ("210987654321", result.summary.run_id, NOW_TEXT)
    assert (row["Status"], row["Keys"], row["Errors"], row["ErrorDetail"]) == ("failed", 0, 1, reason)
    assert (row["Scope"], row["KeyRows"], row["UserRows"], row["InventoryComplete"]) == ("account", 0, 0, False)


def test_an_unreachable_accounts_row_is_spilled_when_the_sink_refuses_it(spill: SpillBucket) -> None:
    sink = FakeSink(refuse={(Table.RUNS, 0)})

    result = report_unreachable_account("210987654321", "AccessDenied", sink, Deadline(), spill=spill)

    assert result.failed_batches == [] and sink.delivered[Table.RUNS] == []
    [key] = result.summary.spill_keys
    assert key.startswith("keyreport/spill/210987654321/")
    [row] = spill.load(key).rows
    assert (row["account_number"], row["Status"], row["ErrorDetail"]) == ("210987654321", "failed", "AccessDenied")


def test_user_rows_not_delivered_are_spilled_and_make_the_run_partial(
    iam: tuple[Any, Stubber], spill: SpillBucket
) -> None:
    sink = FakeSink(refuse={(Table.USERS, 0)})

    result = run_over_keys(iam, sink, spill)

    assert result.summary.status == "partial" and not result.summary.succeeded
    assert result.failed_batches == [] and result.summary.errors == ["2 user rows not delivered"]
    [spilled] = [spill.load(key) for key in spill.object_keys()]
    assert spilled.table is Table.USERS and {row["user"] for row in spilled.rows} == set(KEYS)
    [run_row] = sink.delivered[Table.RUNS]
    assert run_row["Status"] == "partial" and run_row["RecordsShipped"] == 3
    assert (run_row["KeyRows"], run_row["UserRows"], run_row["InventoryComplete"]) == (3, 3, True)


class OneRowBatches(FakeSink):
    """Sends each key row as a batch of its own and refuses them all, noting how many spill objects
    existed when each batch was sent: a failed batch must be spilled before the next one goes."""

    def __init__(self, spill: SpillBucket) -> None:
        super().__init__(batch_size=1)
        self.spill = spill
        self.spilled_when_sent: list[int] = []

    def send(
        self, table: Table, rows: Iterable[Row], deadline: Deadline, on_failed: OnFailed | None = None
    ) -> Delivery:
        delivery = Delivery(on_failed=on_failed)
        for row in rows:
            if table is not Table.KEYS:
                delivery.shipped += 1
                continue
            self.spilled_when_sent.append(len(list(self.spill.object_keys())))
            delivery.fail(FailedBatch(table, [row], "refused"))
        return delivery


def test_each_failed_batch_is_spilled_before_the_next_is_sent(iam: tuple[Any, Stubber], spill: SpillBucket) -> None:
    sink = OneRowBatches(spill)

    result = run_over_keys(iam, sink, spill)

    assert sink.spilled_when_sent == [0, 1, 2]  # spilled as they fail, not after the whole send
    assert (result.summary.spilled, result.summary.shipped, result.failed_batches) == (3, 0, [])


def test_past_the_deadline_the_run_row_is_spilled_without_an_attempt(
    iam: tuple[Any, Stubber], spill: SpillBucket
) -> None:
    client, stub = iam
    stub_inventory(stub, KEYS)
    sink = FakeSink()
    ended = Deadline(lambda: 500, margin_seconds=20)  # half a second to the end, the margin long spent

    result = run(SETTINGS, FakeAccount(client), sink, ended, fingerprint_key=KEY, spill=spill, clock=lambda: NOW)  # type: ignore[arg-type]

    assert sink.delivered[Table.RUNS] == []
    [run_key] = [key for key in result.summary.spill_keys if "/runs-" in key]
    [row] = spill.load(run_key).rows
    assert row["RunId"] == result.summary.run_id and spill.load(run_key).reason.startswith("deadline:")


def test_owner_and_exception_tags_travel_on_the_user_rows_and_no_other_tag(
    iam: tuple[Any, Stubber], spill: SpillBucket
) -> None:
    sink = FakeSink()
    result = run_over_keys(iam, sink, spill)
    users = {row["user"]: row for row in sink.delivered[Table.USERS]}
    assert (users["alice"]["Owner"], users["alice"]["OwnerTags"]) == (
        "alice@example.com",
        '{"owner":"alice@example.com"}',
    )
    [exception] = json.loads(users["alice"]["Exceptions"])
    assert (exception["Control"], exception["Key"], exception["Problem"]) == ("key-rotation-90-days", "AKIA...0002", "")
    assert (users["bob"]["Owner"], users["bob"]["OwnerTags"], users["bob"]["Exceptions"]) == ("", "{}", "[]")
    assert "4711" not in json.dumps(sink.delivered[Table.USERS])
    [run_row] = sink.delivered[Table.RUNS]
    assert (run_row["TagsRead"], "TagsNotRead" in run_row, run_row["MaxExceptionDays"]) == (True, False, 365)
    assert result.summary.status == "ok"


def test_a_refused_tag_read_ships_every_key_and_user_without_owners_and_says_why(
    iam: tuple[Any, Stubber], spill: SpillBucket, capsys: pytest.CaptureFixture[str]
) -> None:
    client, stub = iam
    stub_inventory(stub, KEYS, tags_error="AccessDenied")
    sink = FakeSink()
    result = run_once(client, sink, spill)
    assert len(sink.delivered[Table.KEYS]) == 3 and len(sink.delivered[Table.USERS]) == 3
    assert {(row["Owner"], row["OwnerTags"], row["Exceptions"]) for row in sink.delivered[Table.USERS]} == {
        ("", "{}", "[]")
    }
    [run_row] = sink.delivered[Table.RUNS]
    assert (run_row["TagsRead"], run_row["TagsNotRead"]) == (False, "GetAccountAuthorizationDetails: AccessDenied")
    # Like a posture read IAM refuses: the keys' snapshot is whole, so the run is ok and its errors are the keys'.
    assert (result.summary.status, result.summary.succeeded, run_row["Errors"]) == ("ok", True, 0)
    err = capsys.readouterr().err
    assert "user tags not read" in err and "Traceback" not in err
