"""One test per fault, against the sandbox over real sockets. Each asserts the exact outcome and that every
record read was shipped, spilled for replay, or (only when even the spill bucket fails) logged as undelivered."""

from __future__ import annotations

import time

import boto3
import pytest

from keyreport import pipeline
from keyreport.deadline import Deadline
from keyreport.errors import RunFailed
from keyreport.records import RunSummary
from keyreport.settings import Settings
from keyreport.spill.bucket import SpillBucket
from keyreport.spill.replay import replay
from keyreport.wiring import Wiring
from sandbox.aws_faults import IamFaults
from sandbox.stack import SPILL_BUCKET
from tests.integration.conftest import World


def spill_bucket(world: World) -> SpillBucket:
    spill = Wiring(Settings.from_env(), boto3.Session()).spill
    assert spill is not None
    return spill


def invoke_failing(world: World, timeout_seconds: float = 900) -> RunSummary:
    with pytest.raises(RunFailed) as failed:
        world.invoke(timeout_seconds)
    return failed.value.summary


def accounted(summary: RunSummary, world: World) -> None:
    """Nothing lost: every key read is shipped, spilled or (last resort) failed, and the counts add up."""
    assert summary.keys == world.estate.key_count
    assert summary.shipped + summary.spilled + summary.failed == summary.keys


def stored_fingerprints(world: World, run_id: str) -> set[str]:
    return {row["KeyFingerprint_s"] for row in world.rows(run_id)}


def run_with_iam_faults(faults: IamFaults) -> pipeline.RunResult:
    settings = Settings.from_env()
    session = faults.install(boto3.Session())
    wiring = Wiring(settings, session)
    key = wiring.deployment_key.fingerprint
    return pipeline.run(settings, wiring.aws, wiring.sink, Deadline(), fingerprint_key=key, spill=wiring.spill)


# -- Azure side ---------------------------------------------------------------------------------------


def test_key_vault_down_spills_everything(world: World) -> None:
    world.stack.keyvault.drop_next(100)
    summary = invoke_failing(world)
    accounted(summary, world)
    assert summary.spilled == world.estate.key_count and summary.shipped == 0
    batch = spill_bucket(world).load(summary.spill_keys[0])
    assert "from Key Vault" in batch.reason and batch.run_id == summary.run_id


def test_entra_down_spills_everything(world: World) -> None:
    world.stack.entra.fail_next(503, 100)
    summary = invoke_failing(world)
    accounted(summary, world)
    assert summary.spilled == world.estate.key_count
    assert "ClientAuthenticationError" in spill_bucket(world).load(summary.spill_keys[0]).reason


def test_rejected_signature_is_spilled_with_the_reason(world: World) -> None:
    from sandbox.stack import make_workspace_key

    world.stack.collector.set_key(make_workspace_key("another workspace"))
    summary = invoke_failing(world)
    accounted(summary, world)
    batch = spill_bucket(world).load(summary.spill_keys[0])
    assert "403" in batch.reason and any(attempt.startswith("403") for attempt in batch.attempts)


def test_404_too_large_splits_the_batch_and_delivers_it(world: World) -> None:
    posted = len(world.stack.collector.posts)
    world.stack.collector.fail_next(404)
    summary = world.invoke()
    assert summary["Status"] == "ok"
    assert len(stored_fingerprints(world, summary["RunId"])) == world.estate.key_count
    assert len(world.stack.collector.posts) - posted == 4  # two halves of the keys, the users, then the run row


def test_429_storm_past_the_attempts_spills_one_batch_and_replay_delivers_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEYREPORT_BATCH_MAX_BYTES", "8192")
    world.stack.collector.fail_next(429, 6, retry_after=0)  # the sink tries a batch 6 times
    summary = invoke_failing(world)
    accounted(summary, world)
    assert 0 < summary.spilled < world.estate.key_count and summary.failed == 0
    assert len(stored_fingerprints(world, summary.run_id)) == summary.shipped

    outcome = replay(
        spill_bucket(world), Wiring(Settings.from_env(), boto3.Session()).sink, Deadline(), read_only=False
    )

    assert outcome.succeeded and outcome.delivered_rows == summary.spilled
    assert len(stored_fingerprints(world, summary.run_id)) == world.estate.key_count
    assert list(spill_bucket(world).object_keys()) == []


def test_500_and_503_bursts_are_retried(world: World) -> None:
    world.stack.collector.fail_next(500, 2)
    world.stack.collector.fail_next(503, 2, retry_after=0)
    summary = world.invoke()
    assert summary["Status"] == "ok"
    assert len(stored_fingerprints(world, summary["RunId"])) == world.estate.key_count


def test_dropped_connections_are_retried(world: World) -> None:
    world.stack.collector.drop_next(2)
    summary = world.invoke()
    assert summary["Status"] == "ok"
    assert len(stored_fingerprints(world, summary["RunId"])) == world.estate.key_count


def test_garbled_error_pages_are_retried_and_reported(world: World) -> None:
    world.stack.collector.garble_next(502, b"<html><body>Bad Gateway</body></html>", 6)
    summary = invoke_failing(world)
    accounted(summary, world)
    batch = spill_bucket(world).load(summary.spill_keys[0])
    assert batch.attempts[0].startswith("502") and "html" not in batch.reason.lower()


def test_slow_answers_past_the_deadline_are_spilled_in_time(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYREPORT_DEADLINE_MARGIN_SECONDS", "2")
    world.invoke()  # warm: the key and the token are cached, so only the slow POSTs count
    world.stack.collector.slow_next(20, 3)
    summary = invoke_failing(world, timeout_seconds=8)
    accounted(summary, world)
    assert summary.spilled == world.estate.key_count
    assert "ReadTimeout" in spill_bucket(world).load(summary.spill_keys[0]).attempts[0]


def test_spill_bucket_unavailable_logs_every_record_as_undelivered(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.stack.aws.client("s3").delete_bucket(Bucket=SPILL_BUCKET)
    world.stack.collector.fail_next(400, 5)
    summary = invoke_failing(world)
    accounted(summary, world)
    assert summary.failed == world.estate.key_count and summary.spilled == 0
    assert any("cannot write s3://keyreport-spill-sandbox/" in error for error in summary.errors)
    logged = capsys.readouterr().err
    undelivered = world.estate.key_count + world.estate.user_count + 2  # keys, users, root user, run row
    assert logged.count('"message":"undelivered record"') == undelivered
    for key_id in world.full_key_ids():
        assert key_id not in logged


# -- AWS side -----------------------------------------------------------------------------------------


def test_iam_throttling_slows_the_run_but_ships_everything(world: World) -> None:
    faults = IamFaults()
    faults.fail("ListUsers", "Throttling", 2)
    faults.fail("ListAccessKeys", "Throttling", 5)
    result = run_with_iam_faults(faults)
    accounted(result.summary, world)
    assert result.summary.succeeded and result.summary.shipped == world.estate.key_count
    assert faults.injected == {"ListUsers": 2, "ListAccessKeys": 5}


def test_iam_throttled_beyond_retries_skips_that_user_and_ships_the_rest(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEYREPORT_IAM_CONCURRENCY", "1")
    monkeypatch.setenv("KEYREPORT_AWS_MAX_ATTEMPTS", "3")
    first = world.stack.aws.client("iam").list_users()["Users"][0]["UserName"]
    faults = IamFaults()
    faults.fail("ListAccessKeys", "Throttling", 3)
    result = run_with_iam_faults(faults)
    summary = result.summary
    assert summary.users_skipped == 1 and summary.errors == [f"user {first}: Throttling"]
    assert summary.shipped == world.estate.key_count - len(world.estate.keys_of(first))
    assert not summary.succeeded and summary.status == "partial"


def test_transient_iam_errors_are_retried(world: World) -> None:
    faults = IamFaults()
    faults.fail("ListUsers", "ServiceUnavailable", 2)
    faults.fail("GetCredentialReport", "ServiceFailure", 1)
    result = run_with_iam_faults(faults)
    assert result.summary.succeeded and result.summary.shipped == world.estate.key_count


def test_no_credential_report_falls_back_to_per_key_calls(world: World) -> None:
    faults = IamFaults()
    faults.fail_always("GenerateCredentialReport", "AccessDenied")
    result = run_with_iam_faults(faults)
    summary = result.summary
    root_keys = len(world.estate.root_keys)  # the root user's keys exist only in the report
    # Every IAM key shipped, plus one row saying the root user's keys are unknown; the run says why.
    assert summary.shipped == world.estate.key_count - root_keys + 1 and summary.status == "partial"
    assert summary.errors == ["credential report unusable: IAM answered AccessDenied; the root user's keys are unknown"]
    assert faults.calls["GetAccessKeyLastUsed"] == world.estate.key_count - root_keys
    stored = world.rows(summary.run_id)
    (root,) = [row for row in stored if row["user_s"] == "<root_account>"]
    assert (root["AccessKeyId_s"], root["Status_s"]) == ("root:unknown", "Unknown") and "NeverUsed_b" not in root
    assert all("PasswordEnabled_b" not in row for row in stored)
    by_fingerprint = {row["KeyFingerprint_s"]: row for row in stored}
    for key in world.estate.iam_keys:
        assert by_fingerprint[world.key_fingerprint(key.access_key_id)]["NeverUsed_b"] is (key.never_used)


def test_access_denied_listing_users_fails_the_run_but_ships_what_was_read(world: World) -> None:
    faults = IamFaults()
    faults.fail_always("ListUsers", "AccessDenied")
    result = run_with_iam_faults(faults)
    summary = result.summary
    assert not summary.inventory_complete and summary.status == "failed" and not summary.succeeded
    assert summary.shipped == len(world.estate.root_keys)  # read from the report before ListUsers failed
    assert "AccessDenied" in summary.errors[0]
    [run_row] = world.rows(summary.run_id, "AWS_Access_Key_Report_Run_CL")
    assert run_row["Status_s"] == "failed"


@pytest.mark.parametrize("endpoint", ["keyvault", "entra"])
def test_malformed_answers_from_azure_identity_and_key_vault_fail_cleanly(world: World, endpoint: str) -> None:
    emulator = getattr(world.stack, endpoint)
    emulator.garble_next(200, b"<html><body>Sign in to continue</body></html>", 100)
    summary = invoke_failing(world)
    accounted(summary, world)
    assert summary.spilled == world.estate.key_count
    reason = spill_bucket(world).load(summary.spill_keys[0]).reason
    assert reason.startswith("cannot read secret 'la-workspace-key' from Key Vault")
    assert "Traceback" not in reason


def test_a_key_vault_asking_to_wait_a_day_is_not_waited_for(world: World) -> None:
    """azure-core sleeps whatever Retry-After says; keyreport's Key Vault client ignores a wait past its cap."""
    earlier = len(world.stack.keyvault.history)
    world.stack.keyvault.fail_next(429, 2, retry_after=86_400)
    started = time.monotonic()
    summary = world.invoke()
    assert summary["Status"] == "ok" and summary["RecordsShipped"] == world.estate.key_count
    assert time.monotonic() - started < 120
    assert [e.status for e in world.stack.keyvault.history[earlier:]][:2] == [429, 429]  # both were answered


def test_a_refused_tag_read_ships_every_key_and_user_without_owners_and_the_run_says_why(world: World) -> None:
    """An older member role without iam:GetAccountAuthorizationDetails: the run is the same snapshot, ok, with no
    owner and no exception on its user rows, TagsRead_b false and TagsNotRead_s the IAM error code."""
    faults = IamFaults()
    faults.fail_always("GetAccountAuthorizationDetails", "AccessDenied")
    summary = run_with_iam_faults(faults).summary
    assert (summary.status, summary.succeeded, summary.errors) == ("ok", True, [])
    [run_row] = world.rows(summary.run_id, "AWS_Access_Key_Report_Run_CL")
    assert (run_row["TagsRead_b"], run_row["TagsNotRead_s"]) == (False, "GetAccountAuthorizationDetails: AccessDenied")
    assert len(world.rows(summary.run_id)) == world.estate.key_count
    users = world.rows(summary.run_id, "AWS_Access_Key_Report_Users_CL")
    assert len(users) == world.estate.user_count + 1
    assert {(row["Owner_s"], row["OwnerTags_s"], row["Exceptions_s"]) for row in users} == {("", "{}", "[]")}
