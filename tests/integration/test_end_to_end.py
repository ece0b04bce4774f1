"""The Lambda handler against the sandbox over real sockets and TLS: what arrives is what the estate holds."""

from __future__ import annotations

import json
import time

import pytest

from keyreport.errors import RunFailed
from keyreport.records import format_timestamp, mask_key_id
from keyreport.settings import ConfigError
from sandbox.estate import exception_users
from sandbox.stack import make_workspace_key
from tests import schema
from tests.integration.conftest import KEYS_TABLE, RUNS_TABLE, USERS_TABLE, World, dumps


def test_handler_ships_every_key_exactly_as_the_estate_holds_it(world: World) -> None:
    summary = world.invoke()

    assert summary["Status"] == "ok"
    assert summary["Keys"] == summary["RecordsShipped"] == world.estate.key_count
    assert summary["Users"] == world.estate.user_count and summary["RecordsFailed"] == 0
    rows = world.rows_by_fingerprint(summary["RunId"])
    assert len(rows) == world.estate.key_count
    for key in world.estate.keys:
        row = rows[world.key_fingerprint(key.access_key_id)]
        assert row["AccessKeyId_s"] == mask_key_id(key.access_key_id)
        assert (row["user_s"], row["UserArn_s"], row["Status_s"]) == (key.user_name, key.user_arn, key.status)
        assert row["account_number_s"] == world.estate.account_id
        assert row["CreateDate_t"] == format_timestamp(key.create_date)
        assert row["NeverUsed_b"] is key.never_used
        if key.last_used_date is not None:
            assert row["LastUsedDate_t"] == format_timestamp(key.last_used_date)
            assert (row["ServiceName_s"], row["Region_s"]) == (key.last_used_service, key.last_used_region)
        else:
            assert "LastUsedDate_t" not in row and "DaysSinceLastUse_d" not in row
        assert row.get("PasswordEnabled_b") == key.password_enabled
        assert row["MfaActive_b"] == key.mfa_active
        assert row["TimeGenerated"] == row["loggedDate_t"]  # time-generated-field took effect


def test_stored_columns_are_exactly_the_contract(world: World) -> None:
    summary = world.invoke()
    assert world.stack.collector.columns(KEYS_TABLE) == schema.columns(KEYS_TABLE)
    stored_runs = world.stack.collector.columns(RUNS_TABLE)
    declared_runs = schema.columns(RUNS_TABLE)
    assert stored_runs == {name: declared_runs[name] for name in stored_runs}  # ErrorDetail only with errors
    # The collector is the session's: ErrorDetail_s exists once any test's run reported an error; the user-scope
    # columns once a run re-read one user (an account-wide run leaves them out).
    # The last two: a refused read (posture, users' tags); both left out when the read succeeded.
    optional = {"ErrorDetail_s", "ScopeUser_s", "UserDeleted_b", "PostureNotRead_s", "TagsNotRead_s"}
    assert set(declared_runs) - set(stored_runs) <= optional and summary["Errors"] == 0
    assert (summary["Scope"], summary["InventoryComplete"]) == ("account", True)
    stored = (len(world.rows(summary["RunId"])), len(world.rows(summary["RunId"], USERS_TABLE)))
    users = world.estate.user_count + (world.estate.root is not None)  # the root user has a row too
    assert (summary["KeyRows"], summary["UserRows"]) == stored == (world.estate.key_count, users)
    assert world.stack.collector.columns(USERS_TABLE) == schema.columns(USERS_TABLE)


def test_one_user_row_per_iam_user_from_what_the_run_already_read(world: World) -> None:
    summary = world.invoke()
    rows = {row["user_s"]: row for row in world.rows(summary["RunId"], USERS_TABLE)}
    estate = world.estate
    assert len(rows) == len(world.rows(summary["RunId"], USERS_TABLE)) == estate.user_count + 1
    root = rows.pop("<root_account>")  # from the report's root row and GetAccountSummary
    assert (root["Keys_d"], root["MfaActive_b"], root["HardwareMfa_b"]) == (len(estate.root_keys), True, True)
    for user in estate.users:
        row, keys = rows[user.name], estate.keys_of(user.name)
        assert (row["UserArn_s"], row["Path_s"], row["account_number_s"]) == (user.arn, user.path, estate.account_id)
        assert row["CreateDate_t"] == format_timestamp(user.create_date)
        assert (row["PasswordEnabled_b"], row["MfaActive_b"]) == (user.password_enabled, user.mfa_active)
        assert (row["Keys_d"], row["ActiveKeys_d"]) == (len(keys), sum(key.active for key in keys))
        uses = [key.last_used_date for key in keys] + [user.password_last_used]
        latest = max((moment for moment in uses if moment is not None), default=None)
        assert row.get("LastActivity_t") == (None if latest is None else format_timestamp(latest))
        if user.password_last_used is not None:
            assert row["PasswordLastUsed_t"] == format_timestamp(user.password_last_used)
        assert row["RunId_g"] == summary["RunId"] and row["TimeGenerated"] == row["loggedDate_t"]


def test_run_summary_row_is_shipped_to_its_own_table(world: World) -> None:
    summary = world.invoke()
    [run] = world.rows(summary["RunId"], RUNS_TABLE)
    assert run["Status_s"] == "ok" and run["RecordsShipped_d"] == world.estate.key_count
    assert run["Users_d"] == world.estate.user_count and run["CollectorVersion_s"]
    posts = world.stack.collector.posts
    assert {post.log_type for post in posts} == {
        "AWS_Access_Key_Report",
        "AWS_Access_Key_Report_Run",
        "AWS_Access_Key_Report_Users",
    }


def test_no_full_key_id_or_secret_is_stored(world: World) -> None:
    summary = world.invoke()
    stored = dumps(
        world.rows(summary["RunId"])
        + world.rows(summary["RunId"], RUNS_TABLE)
        + world.rows(summary["RunId"], USERS_TABLE)
    )
    for secret in world.secrets():
        assert secret not in stored


def test_429_500_503_are_retried_and_nothing_is_lost(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYREPORT_BATCH_MAX_BYTES", "8192")  # several batches
    collector = world.stack.collector
    seen, posted = len(collector.history), len(collector.posts)
    collector.fail_next(429, 2, retry_after=0)
    collector.fail_next(500)
    collector.fail_next(503, retry_after=0)

    summary = world.invoke()

    assert summary["Status"] == "ok" and summary["RecordsShipped"] == world.estate.key_count
    assert len(world.rows(summary["RunId"])) == world.estate.key_count
    statuses = [exchange.status for exchange in collector.history[seen:] if exchange.target.startswith("/api/logs")]
    assert statuses[:4] == [429, 429, 500, 503]
    assert statuses.count(200) == len(collector.posts) - posted > 2


def test_a_wrong_workspace_key_fails_the_run_clearly(world: World) -> None:
    world.stack.collector.set_key(make_workspace_key("another workspace"))  # the workspace now expects another key
    reads_before = world.stack.keyvault.reads

    with pytest.raises(RunFailed) as failed:
        world.invoke()

    assert failed.value.summary.shipped == 0 and failed.value.summary.spilled == world.estate.key_count
    assert "403" in failed.value.summary.errors[0] or "spilled" in str(failed.value)
    # one read for the run, then exactly one fresh read per rejected batch (keys, users, then the run row)
    assert world.stack.keyvault.reads - reads_before == 4
    assert not world.rows(failed.value.summary.run_id)


def test_a_rotated_workspace_key_is_read_again_once(world: World) -> None:
    world.invoke()  # warm: the old key is cached
    rotated = make_workspace_key("rotated")
    world.stack.collector.set_key(rotated)
    world.stack.keyvault.set_secret("la-workspace-key", rotated)
    reads_before = world.stack.keyvault.reads

    summary = world.invoke()

    assert summary["Status"] == "ok" and len(world.rows(summary["RunId"])) == world.estate.key_count
    assert world.stack.keyvault.reads - reads_before == 1


def test_a_wrong_client_secret_fails_clearly_without_echoing_it(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    from sandbox.estate import seed_client_secret
    from sandbox.stack import CLIENT_SECRET_NAME

    wrong = "kr~not-the-registered-secret-0123456789"
    seed_client_secret(world.stack.aws, CLIENT_SECRET_NAME, wrong)

    with pytest.raises(RunFailed) as failed:
        world.invoke()

    output = capsys.readouterr()
    assert "cannot read secret 'la-workspace-key' from Key Vault" in output.err
    assert "ClientAuthenticationError" in output.err
    assert wrong not in output.err + output.out + str(failed.value)
    assert world.stack.client_secret not in output.err + output.out


def test_logs_carry_no_secret_token_or_key_id(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.invoke()
    output = capsys.readouterr()
    logged = output.out + output.err
    assert '"run finished"' in logged  # the structured log was captured at all
    for secret in world.secrets():
        assert secret not in logged
    assert "eyJ" not in logged  # no JWT (Entra token) in any log line


def test_retries_stop_before_the_lambda_deadline(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYREPORT_DEADLINE_MARGIN_SECONDS", "2")
    world.stack.collector.fail_next(503, 1000, retry_after=3)  # a storm that outlasts the invocation
    started = time.monotonic()

    with pytest.raises(RunFailed) as failed:
        world.invoke(timeout_seconds=8)

    assert time.monotonic() - started < 8  # gave up in time, never ran into Lambda's hard stop
    assert failed.value.summary.spilled == world.estate.key_count and failed.value.summary.shipped == 0


def test_azure_resource_id_is_sent_when_configured(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    resource = "/subscriptions/0000/resourceGroups/sec/providers/Microsoft.OperationalInsights/workspaces/keys"
    monkeypatch.setenv("KEYREPORT_AZURE_RESOURCE_ID", resource)
    posted = len(world.stack.collector.posts)
    world.invoke()
    headers = [post.headers for post in world.stack.collector.posts[posted:]]
    assert headers and all(h.get("x-ms-AzureResourceId") == resource for h in headers)


def test_handler_rejects_bad_configuration_with_every_problem(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KEYREPORT_WORKSPACE_ID", "workspace-1")
    monkeypatch.setenv("KEYREPORT_SINK", "datacollector")
    with pytest.raises(ConfigError) as error:
        world.invoke()
    assert len(error.value.problems) == 2
    assert '"configuration error"' in capsys.readouterr().err


def test_owner_and_exception_tags_arrive_on_the_user_rows_and_no_other_tag(world: World) -> None:
    summary = world.invoke()
    [run] = world.rows(summary["RunId"], RUNS_TABLE)
    assert (run["TagsRead_b"], run["MaxExceptionDays_d"], "TagsNotRead_s" in run) == (True, 365, False)
    rows = {row["user_s"]: row for row in world.rows(summary["RunId"], USERS_TABLE)}
    for user in world.estate.users:
        tags = {key.casefold(): value for key, value in user.tags}
        owners = {name: tags[name] for name in ("owner", "team") if name in tags}
        row = rows[user.name]
        assert row["Owner_s"] == next(iter(owners.values()), "")
        assert json.loads(row["OwnerTags_s"]) == owners
        exceptions = json.loads(row["Exceptions_s"])
        assert [item["Tag"] for item in exceptions] == [k for k, _ in user.tags if k.startswith("keyreport-")]
    assert "cost-centre" not in json.dumps(list(rows.values())) and "cc-0" not in json.dumps(list(rows.values()))
    assert rows["<root_account>"]["Exceptions_s"] == "[]"
    cases = exception_users(world.estate)
    problems = {case: json.loads(rows[name]["Exceptions_s"])[0]["Problem"] for case, name in cases.items()}
    valid = {case for case, problem in problems.items() if not problem}
    assert valid == {"valid_user", "valid_key", "expired"} & set(cases)
