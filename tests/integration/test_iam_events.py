"""The event path end to end: the real handler takes CloudTrail IAM events as EventBridge delivers them (a rule
target, and batched through SQS), re-reads each named user from IAM (moto) and ships one user-scope run per
user to the workspace emulator. A forged or malformed event changes nothing."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

import keyreport.handler
from keyreport import queries
from keyreport.deadline import Deadline
from keyreport.errors import ConfigError, RunFailed
from keyreport.records import mask_key_id
from keyreport.settings import Settings
from keyreport.spill.replay import replay
from keyreport.wiring import Wiring
from sandbox.aws_faults import IamFaults
from sandbox.cloudtrail import iam_event, queue_arn, sqs_batch
from sandbox.estate import read_estate
from sandbox.lambda_context import LocalLambdaContext
from sandbox.local_kql import LocalWorkspace, StoredTable
from tests.integration.conftest import KEYS_TABLE, RUNS_TABLE, USERS_TABLE, World
from tests.integration.test_organization import member_iam, organization  # noqa: F401 (a fixture)


@pytest.fixture
def queued(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The event queue (the stack's IamEventQueue) and the function configured with it."""
    url = world.stack.aws.client("sqs").create_queue(QueueName="keyreport-iam-events")["QueueUrl"]
    world.configure(monkeypatch, world.env | {"KEYREPORT_EVENT_QUEUE_URL": url})
    yield url


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = keyreport.handler.lambda_handler(event, LocalLambdaContext(300))  # type: ignore[arg-type]
    return result


def user_runs(world: World, since: set[str]) -> dict[str, dict[str, Any]]:
    """The user-scope run rows shipped after `since` (run ids seen before), by user name."""
    rows = [r for r in world.stack.collector.rows(RUNS_TABLE) if r["RunId_g"] not in since]
    assert all(r.get("Scope_s") == "user" for r in rows), rows
    by_user = {r["ScopeUser_s"]: r for r in rows}
    assert len(by_user) == len(rows), "one run per user"
    return by_user


def seen_runs(world: World) -> set[str]:
    return {r["RunId_g"] for r in world.stack.collector.rows(RUNS_TABLE)}


def test_events_direct_and_through_sqs_reread_exactly_the_changed_users(world: World, queued: str) -> None:
    world.invoke()  # the scheduled run: the full snapshot
    before = seen_runs(world)
    iam = world.stack.aws.client("iam")
    account = world.estate.account_id
    truth = world.estate
    with_key = next(u for u in truth.users if len(truth.keys_of(u.name)) == 1)
    to_deactivate = next(
        u for u in truth.users if u.name != with_key.name and any(k.active for k in truth.keys_of(u.name))
    )
    to_delete = next(u for u in truth.users if u.name not in {with_key.name, to_deactivate.name})
    without_password = next(
        u for u in truth.users if not u.password_enabled and u.name not in {with_key.name, to_delete.name}
    )

    iam.create_access_key(UserName=with_key.name)
    active = next(k for k in truth.keys_of(to_deactivate.name) if k.active)
    iam.update_access_key(UserName=to_deactivate.name, AccessKeyId=active.access_key_id, Status="Inactive")
    for key in truth.keys_of(to_delete.name):
        iam.delete_access_key(UserName=to_delete.name, AccessKeyId=key.access_key_id)
    delete_leftovers(iam, to_delete.name)
    iam.delete_user(UserName=to_delete.name)
    iam.create_login_profile(UserName=without_password.name, Password="Sandbox-Passw0rd!x")

    direct = invoke(iam_event("CreateAccessKey", account, with_key.name))
    assert direct["users_reread"] == 1 and direct["events_received"] == 1
    arn = queue_arn(queued)
    batch = sqs_batch(
        [
            iam_event("UpdateAccessKey", account, to_deactivate.name),
            iam_event("DeleteAccessKey", account, to_delete.name),
            iam_event("DeleteUser", account, to_delete.name),
            iam_event("CreateLoginProfile", account, without_password.name),
            iam_event("CreateAccessKey", "210987654321", "mallory"),  # an account keyreport does not read
            iam_event("CreateAccessKey", account, "../../etc"),  # not a user name
        ],
        arn,
    )
    assert invoke(batch) == {"batchItemFailures": []}

    runs = user_runs(world, before)
    assert set(runs) == {with_key.name, to_deactivate.name, to_delete.name, without_password.name}
    now = read_estate(world.stack.aws)
    for name, run in runs.items():
        assert run["Status_s"] == "ok" and run["account_number_s"] == account
        keys = world.rows(run["RunId_g"], KEYS_TABLE)
        users = world.rows(run["RunId_g"], USERS_TABLE)
        assert (run["KeyRows_d"], run["UserRows_d"]) == (len(keys), len(users))
        if name == to_delete.name:
            assert run["UserDeleted_b"] is True and keys == [] and users == []
            continue
        assert run["UserDeleted_b"] is False
        expected = {(mask_key_id(k.access_key_id), k.status) for k in now.keys_of(name)}
        assert {(r["AccessKeyId_s"], r["Status_s"]) for r in keys} == expected
        [user] = users
        assert user["PasswordEnabled_b"] is now.user(name).password_enabled
        assert user["Keys_d"] == len(now.keys_of(name))
    assert runs[with_key.name]["KeyRows_d"] == 2
    assert world.rows(runs[without_password.name]["RunId_g"], USERS_TABLE)[0]["PasswordEnabled_b"] is True

    # The workbook's freshness tile: the account's newest snapshot is a user snapshot, newer than the run.
    # The session's collector may hold other tests' accounts too: this account's row.
    [fresh] = [
        row for row in library_query(world, seen_runs(world), "ingestion-freshness") if row["Account"] == account
    ]
    assert fresh["UserSnapshots"] == 4
    assert fresh["LastSnapshot"] == fresh["LastUserSnapshot"] >= fresh["LastRun"]
    assert fresh["MinutesAgo"] < 1


def delete_leftovers(iam: Any, name: str) -> None:
    for device in iam.list_mfa_devices(UserName=name)["MFADevices"]:
        iam.deactivate_mfa_device(UserName=name, SerialNumber=device["SerialNumber"])
    with contextlib.suppress(iam.exceptions.NoSuchEntityException):
        iam.delete_login_profile(UserName=name)


def test_a_forged_or_malformed_event_ships_nothing_and_raises_no_traceback(
    world: World, queued: str, caplog: pytest.LogCaptureFixture
) -> None:
    before = seen_runs(world)
    account = world.estate.account_id
    forged = [
        iam_event("CreateAccessKey", "210987654321", "mallory"),
        iam_event("CreateAccessKey", account, "a b"),
        iam_event("CreateAccessKey", account, "alice", error_code="AccessDenied"),
        {"detail-type": "AWS API Call via CloudTrail", "source": "aws.iam", "detail": []},
    ]
    for event in forged:
        assert invoke(event)["users_reread"] == 0
    wrong_queue = sqs_batch([iam_event("CreateUser", account, world.estate.users[0].name)], queue_arn(queued) + "x")
    wrong_queue["Records"][0]["body"] = "not json"
    assert invoke(sqs_batch([iam_event("TagUser", account, "x y")], queue_arn(queued))) == {"batchItemFailures": []}
    with pytest.raises(ConfigError):  # an SQS batch of no queue keyreport knows, in account mode
        invoke(wrong_queue)
    assert seen_runs(world) == before
    assert "Traceback" not in caplog.text


def test_a_reread_iam_refuses_fails_the_direct_event_and_ships_a_failed_run_row(world: World) -> None:
    """A direct event whose user cannot be read raises (Lambda retries it, then its dead-letter queue), and the
    user's run row says failed: nothing is guessed, and the dashboards keep the user's last snapshot."""
    before = seen_runs(world)
    faults = IamFaults()
    faults.fail_always("ListMFADevices", "AccessDenied")
    session = faults.install(boto3.Session())
    name = world.estate.users[0].name
    event = iam_event("TagUser", world.estate.account_id, name)
    with pytest.raises(RunFailed):
        keyreport.handler.handle(event, LocalLambdaContext(300), session)  # type: ignore[arg-type]
    [run] = user_runs(world, before).values()
    assert (run["Status_s"], run["ScopeUser_s"], run["KeyRows_d"], run["UserRows_d"]) == ("failed", name, 0, 0)
    assert "AccessDenied" in run["ErrorDetail_s"]


def test_organization_mode_rereads_members_through_the_member_role_and_only_the_organizations_accounts(
    world: World,
    organization: dict[str, Any],  # noqa: F811 (the fixture imported above)
) -> None:
    before = seen_runs(world)
    member = next(account for account in organization["estates"] if account != world.estate.account_id)
    estate = organization["estates"][member]
    name = next(u.name for u in estate.users if len(estate.keys_of(u.name)) == 1)
    member_iam(world, member).create_access_key(UserName=name)
    assert invoke(iam_event("CreateAccessKey", member, name))["users_reread"] == 1
    assert invoke(iam_event("CreateAccessKey", "999999999999", name))["events_refused"] == 1
    [run] = user_runs(world, before).values()
    assert (run["account_number_s"], run["ScopeUser_s"], run["KeyRows_d"]) == (member, name, 2)
    keys = world.rows(run["RunId_g"], KEYS_TABLE)
    assert {r["account_number_s"] for r in keys} == {member} and len(keys) == 2


def workspace_of(world: World, run_ids: set[str]) -> LocalWorkspace:
    collector = world.stack.collector
    return LocalWorkspace(
        StoredTable(name, collector.columns(name), [r for r in collector.rows(name) if r["RunId_g"] in run_ids])
        for name in collector.tables()
    )


def library_query(world: World, run_ids: set[str], query_id: str) -> list[dict[str, Any]]:
    workspace = workspace_of(world, run_ids)
    try:
        return workspace.run(queries.library()[query_id].text, now=datetime.now(UTC)).records()
    finally:
        workspace.close()


def current(world: World, run_ids: set[str], function: str) -> set[tuple[Any, ...]]:
    """KeyReport_CurrentKeys / CurrentUsers (the shipped functions, on duckdb-kql) over these runs' rows."""
    workspace = workspace_of(world, run_ids)
    try:
        if function == "KeyReport_CurrentKeys":
            columns = "user_s, AccessKeyId_s, Status_s"
        else:
            columns = "user_s, PasswordEnabled_b, Keys_d"
        # This test's account only: the organization test before it leaves a member's re-reads in the workspace.
        mine = f"account_number_s == '{world.estate.account_id}' and user_s != '<root_account>'"
        query = f"{function}() | where {mine} | project {columns}"
        return {tuple(row) for row in workspace.run(query).rows}
    finally:
        workspace.close()


def truth(world: World) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    """The estate as moto has it now, in the functions' terms."""
    estate = read_estate(world.stack.aws)
    keys = {(k.user_name, mask_key_id(k.access_key_id), k.status) for k in estate.iam_keys}
    users = {(u.name, u.password_enabled, float(len(estate.keys_of(u.name)))) for u in estate.users}
    return keys, users


def test_after_the_events_the_current_state_functions_show_exactly_the_new_estate(world: World, queued: str) -> None:
    """A full run, then a key created, a key deactivated, a user deleted and a password added, each followed by
    its events (direct and through SQS): KeyReport_CurrentKeys and KeyReport_CurrentUsers equal moto's estate;
    a forged event afterwards changes nothing."""
    world.invoke()
    runs = seen_runs(world)
    assert (current(world, runs, "KeyReport_CurrentKeys"), current(world, runs, "KeyReport_CurrentUsers")) == truth(
        world
    )
    iam, account, estate = world.stack.aws.client("iam"), world.estate.account_id, world.estate
    names = [u.name for u in estate.users]
    created, deactivated, deleted, console = (
        next(n for n in names if len(estate.keys_of(n)) == 1),
        next(n for n in names if any(k.active for k in estate.keys_of(n)) and len(estate.keys_of(n)) == 2),
        next(n for n in names if len(estate.keys_of(n)) == 2 and not estate.user(n).mfa_active),
        next(n for n in names if not estate.user(n).password_enabled and len(estate.keys_of(n)) == 0),
    )
    assert len({created, deactivated, deleted, console}) == 4
    time.sleep(1.05)  # runs are ordered by their start, to the second: the re-reads start after the full run
    iam.create_access_key(UserName=created)
    invoke(iam_event("CreateAccessKey", account, created))
    active = next(k for k in estate.keys_of(deactivated) if k.active)
    iam.update_access_key(UserName=deactivated, AccessKeyId=active.access_key_id, Status="Inactive")
    for key in estate.keys_of(deleted):
        iam.delete_access_key(UserName=deleted, AccessKeyId=key.access_key_id)
    delete_leftovers(iam, deleted)
    iam.delete_user(UserName=deleted)
    iam.create_login_profile(UserName=console, Password="Sandbox-Passw0rd!x")
    events = [
        iam_event("UpdateAccessKey", account, deactivated),
        *(iam_event("DeleteAccessKey", account, deleted) for _ in estate.keys_of(deleted)),
        iam_event("DeleteUser", account, deleted),
        iam_event("CreateLoginProfile", account, console),
    ]
    assert invoke(sqs_batch(events, queue_arn(queued))) == {"batchItemFailures": []}
    runs = seen_runs(world)
    keys, users = truth(world)
    assert current(world, runs, "KeyReport_CurrentKeys") == keys
    assert current(world, runs, "KeyReport_CurrentUsers") == users
    assert deleted not in {u for u, *_ in users} and (console, True, 0.0) in users

    invoke(iam_event("CreateAccessKey", "210987654321", created))  # forged: another account
    invoke(forged_account_mismatch(account, created))
    assert seen_runs(world) == runs


def forged_account_mismatch(account: str, user: str) -> dict[str, Any]:
    event = iam_event("DeleteUser", account, user)
    event["account"] = "210987654321"  # the envelope of another account than the call's
    return event


def test_a_workspace_refusing_the_rows_spills_each_users_run_under_its_own_id_and_replay_delivers_them(
    world: World, queued: str
) -> None:
    """The users of one batch share POSTs; a failed POST is split back into its runs: each is spilled under its
    own run id (replay's checks hold), the messages go back to the queue, and `replay` completes every run."""
    before = seen_runs(world)
    names = [u.name for u in world.estate.users if world.estate.keys_of(u.name)][:3]
    events = [iam_event("TagUser", world.estate.account_id, name) for name in names]
    batch = sqs_batch(events, queue_arn(queued))
    world.stack.collector.fail_next(400, 1000)
    answer = invoke(batch)
    world.stack.collector.faults.clear()
    assert sorted(f["itemIdentifier"] for f in answer["batchItemFailures"]) == sorted(
        r["messageId"] for r in batch["Records"]
    )
    assert seen_runs(world) == before  # nothing stored: every row, run rows included, is in the bucket
    wiring = Wiring(Settings.from_env(), boto3.Session())
    assert wiring.spill is not None
    spilled = list(wiring.spill.object_keys())
    run_ids = {wiring.spill.load(key).rows[0]["RunId"] for key in spilled}
    assert len(run_ids) == len(names) and all(any(run_id in key for key in spilled) for run_id in run_ids)
    outcome = replay(wiring.spill, wiring.sink, Deadline(), read_only=False)
    assert outcome.succeeded, outcome
    runs = user_runs(world, before)
    assert set(runs) == set(names)
    for run in runs.values():
        assert run["Status_s"] == "failed"  # nothing was delivered by the run itself: all came through the bucket
        assert len(world.rows(run["RunId_g"], KEYS_TABLE)) == run["KeyRows_d"] > 0
        assert len(world.rows(run["RunId_g"], USERS_TABLE)) == run["UserRows_d"] == 1


def test_a_tag_user_event_rereads_the_user_with_its_new_owner_and_exception(world: World) -> None:
    """TagUser and UntagUser re-read the user (ListUserTags): its row carries the tags as they are now."""
    before = seen_runs(world)
    iam = world.stack.aws.client("iam")
    account = world.estate.account_id
    user = next(u for u in world.estate.users if len(world.estate.keys_of(u.name)) == 1)
    masked = mask_key_id(world.estate.keys_of(user.name)[0].access_key_id)
    exception = f"IAM.3 key={masked} until=2099-01-01 by=sec@example.com reason=far off"
    iam.tag_user(
        UserName=user.name,
        Tags=[
            {"Key": "owner", "Value": "new.owner@example.com"},
            {"Key": "keyreport-exception-tagged", "Value": exception},
            {"Key": "secret-project", "Value": "never-shipped"},
        ],
    )
    assert invoke(iam_event("TagUser", account, user.name))["users_reread"] == 1
    [run] = user_runs(world, before).values()
    [row] = world.rows(run["RunId_g"], USERS_TABLE)
    assert (run["Status_s"], run["TagsRead_b"], run["MaxExceptionDays_d"]) == ("ok", True, 365)
    assert row["Owner_s"] == "new.owner@example.com"
    [parsed] = json.loads(row["Exceptions_s"])
    assert (parsed["Tag"], parsed["Key"], parsed["Control"]) == (
        "keyreport-exception-tagged",
        masked,
        "key-rotation-90-days",
    )
    assert parsed["Problem"].startswith("over-long: until= is ")  # 2099: far beyond 365 days
    assert "never-shipped" not in json.dumps(row)

    before = seen_runs(world)
    iam.untag_user(UserName=user.name, TagKeys=["owner", "keyreport-exception-tagged", "secret-project"])
    assert invoke(iam_event("UntagUser", account, user.name))["users_reread"] == 1
    [run] = user_runs(world, before).values()
    [row] = world.rows(run["RunId_g"], USERS_TABLE)
    assert row["Owner_s"] == dict(user.tags).get("Team", "")  # owner untagged: the next owner tag, if any
    assert "keyreport-exception-tagged" not in row["Exceptions_s"]
