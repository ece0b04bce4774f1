"""`keyreport check` over real sockets: it passes on a correct sandbox, ships no row, and for each way a
deployment goes wrong names the hop, the likely cause and the fix."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

import keyreport.handler
from keyreport.check import Hop, Report, run_checks
from keyreport.settings import Settings
from keyreport.wiring import Wiring
from sandbox.aws_faults import IamFaults, deny
from sandbox.cloudtrail import IAM_EVENT_PATTERN, deploy_event_path
from sandbox.lambda_context import LocalLambdaContext
from sandbox.stack import CLIENT_ID, DCR_ID, TENANT_ID, WORKSPACE_KEY_SECRET, make_workspace_key
from tests.integration.conftest import World
from tests.integration.test_cli import keyreport as cli

OTHER_CLIENT_ID = "0d3c6a2b-9e1f-4b7a-8c5d-2f4e6a8b0c1d"


def check(session: boto3.Session | None = None, **options: Any) -> Report:
    return run_checks(Wiring(Settings.from_env(), session or boto3.Session()), timeout=20, **options)


def first_failure(report: Report) -> Hop:
    failed = [hop for hop in report.hops if not hop.passed]
    assert failed, "\n".join(report.lines())
    return failed[0]


def stored(world: World) -> dict[str, int]:
    return {**world.stack.collector.tables(), **{f"li:{k}": v for k, v in world.stack.ingestion.tables().items()}}


def assert_no_secret(world: World, text: str) -> None:
    for secret in [*world.secrets(), base64.b64decode(world.stack.workspace_key).hex()]:
        assert secret not in text


# -- passing ----------------------------------------------------------------------------------------------


def test_a_correct_sandbox_passes_every_hop_and_stores_no_row(world: World) -> None:
    before, posts = stored(world), len(world.stack.collector.posts)
    report = check(query_token=True)
    assert report.passed, "\n".join(report.lines())
    names = [hop.name for hop in report.hops]
    assert names == [
        "aws identity",
        "iam:ListUsers",
        "iam:ListAccessKeys",
        "iam:GetAccessKeyLastUsed",
        "iam:GetAccountAuthorizationDetails",
        "credential report",
        "fingerprint key",
        "spill bucket",
        "clock",
        "token for Key Vault",
        "token for Log Analytics query (keyreport query)",
        "key vault: workspace key",
        "data collector",
    ]
    assert all(hop.milliseconds >= 0 and hop.detail for hop in report.hops)
    assert f"tenant {TENANT_ID}, app {CLIENT_ID}" in report.hops[9].detail
    assert stored(world) == before, "a check must leave no row in any table"
    assert len(world.stack.collector.posts) == posts + 1 and world.stack.collector.posts[-1].records == 0
    assert not list(world.stack.aws.client("s3").list_objects_v2(Bucket="keyreport-spill-sandbox").get("Contents", []))
    assert_no_secret(world, json.dumps(report.as_dict()))


def test_logs_ingestion_sink_passes_every_stream(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.configure(monkeypatch, world.stack.env(sink="logs_ingestion"))
    before = stored(world)
    report = check()
    assert report.passed, "\n".join(report.lines())
    assert [hop.name for hop in report.hops][-4:] == [
        "token for Logs Ingestion",
        "logs ingestion: Custom-AWS_Access_Key_Report_CL",
        "logs ingestion: Custom-AWS_Access_Key_Report_Run_CL",
        "logs ingestion: Custom-AWS_Access_Key_Report_Users_CL",
    ]
    assert stored(world) == before


def test_a_rule_without_the_users_stream_fails_the_check_and_says_to_redeploy(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A rule deployed before the user rows existed: its streams do not include the one the run now sends to.
    world.configure(monkeypatch, world.stack.env(sink="logs_ingestion") | {"KEYREPORT_USERS_STREAM": "Custom-Old_CL"})
    report = check()
    assert not report.passed
    [failed] = [hop for hop in report.hops if hop.status != "pass"]
    assert failed.name == "logs ingestion: Custom-Old_CL"
    assert "404" in failed.detail and "deploy azure/logs-ingestion.json again" in " ".join(report.lines())


def test_federated_shows_what_the_federated_credential_must_say(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.configure(monkeypatch, world.stack.env(auth="federated"))
    report = check()
    assert report.passed, "\n".join(report.lines())
    [sts] = [hop for hop in report.hops if hop.name == "sts:GetWebIdentityToken"]
    modes = world.stack.auth_modes
    assert modes is not None
    assert f"issuer {modes.issuer.url}, subject {modes.role_arn}, audience api://AzureADTokenExchange" in sts.detail


@pytest.mark.parametrize("auth", ["certificate", "kms", "default"])
def test_every_other_sign_in_mode_passes(world: World, monkeypatch: pytest.MonkeyPatch, auth: str) -> None:
    world.configure(monkeypatch, world.stack.env(auth=auth))
    report = check()
    assert report.passed, "\n".join(report.lines())
    assert not [hop for hop in report.hops if hop.name == "sts:GetWebIdentityToken"]


# -- AWS side ---------------------------------------------------------------------------------------------


def test_iam_action_denied_names_the_statement_to_add(world: World) -> None:
    faults = IamFaults()
    faults.fail_always("ListAccessKeys", "AccessDenied")
    hop = first_failure(check(faults.install(boto3.Session())))
    assert hop.name == "iam:ListAccessKeys" and "AccessDenied" in hop.detail
    account = world.estate.account_id
    assert f'{{"Effect": "Allow", "Action": "iam:ListAccessKeys", "Resource": "arn:aws:iam::{account}:user/*"}}' in (
        hop.fix
    )


def test_a_role_without_the_tag_read_fails_the_check_and_names_the_statement(world: World) -> None:
    """A run without it still ships every key (TagsRead false), but owners and exceptions are lost: check says so."""
    faults = IamFaults()
    faults.fail_always("GetAccountAuthorizationDetails", "AccessDenied")
    report = check(faults.install(boto3.Session()))
    hop = first_failure(report)
    assert hop.name == "iam:GetAccountAuthorizationDetails" and "AccessDenied" in hop.detail
    assert '{"Effect": "Allow", "Action": "iam:GetAccountAuthorizationDetails", "Resource": "*"}' in hop.fix
    assert [h.name for h in report.hops if h.status != "pass"] == ["iam:GetAccountAuthorizationDetails"]


@pytest.mark.parametrize("action", ["GenerateCredentialReport", "GetCredentialReport"])
def test_credential_report_denied(world: World, action: str) -> None:
    faults = IamFaults()
    faults.fail_always(action, "AccessDenied")
    report = check(faults.install(boto3.Session()))
    hop = first_failure(report)
    assert (hop.name, hop.cause) == ("credential report", f"the function's role may not call iam:{action}")
    assert f'"Action": "iam:{action}", "Resource": "*"' in hop.fix
    assert sum(not h.passed for h in report.hops) == 1


def test_fingerprint_secret_not_a_fingerprint_key(world: World) -> None:
    world.stack.aws.client("secretsmanager").put_secret_value(
        SecretId=world.env["KEYREPORT_FINGERPRINT_SECRET_ARN"], SecretString="short"
    )
    hop = first_failure(check())
    assert hop.name == "fingerprint key" and "holds 5 characters" in hop.detail
    assert "secretsmanager:GetSecretValue" in hop.fix


def test_spill_bucket_denied(world: World) -> None:
    hop = first_failure(check(deny(boto3.Session(), "s3", "PutObject")))
    assert hop.name == "spill bucket" and "s3:PutObject answered AccessDenied" in hop.detail
    assert '"Action": "s3:PutObject", "Resource": "arn:aws:s3:::keyreport-spill-sandbox/*"' in hop.fix


def test_spill_probe_not_deletable_says_where_it_was_left(world: World) -> None:
    hop = first_failure(check(deny(boto3.Session(), "s3", "DeleteObject")))
    assert "was written but not deleted" in hop.detail and "keyreport/check/" in hop.detail
    assert '"Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::keyreport-spill-sandbox/keyreport/check/*"' in (
        hop.fix
    )


@pytest.fixture
def organization(world: World, monkeypatch: pytest.MonkeyPatch) -> str:
    org = world.stack.aws.client("organizations")
    org.create_organization(FeatureSet="ALL")
    member = org.create_account(Email="member@example.com", AccountName="member")["CreateAccountStatus"]["AccountId"]
    queue = world.stack.aws.client("sqs").create_queue(QueueName="keyreport-accounts")["QueueUrl"]
    monkeypatch.setenv("KEYREPORT_MODE", "organization")
    monkeypatch.setenv("KEYREPORT_QUEUE_URL", queue)
    monkeypatch.setenv("KEYREPORT_EXTERNAL_ID", "keyreport-sandbox-external-id")
    return str(member)


def test_organization_mode_lists_accounts_and_assumes_the_member_role(world: World, organization: str) -> None:
    report = check()
    assert report.passed, "\n".join(report.lines())
    [queue] = [hop for hop in report.hops if hop.name == "account queue"]
    assert queue.detail == "keyreport-accounts is reachable, 0 message(s) waiting"
    [member] = [hop for hop in report.hops if hop.name == "member role"]
    assert member.detail == f"assumed arn:aws:iam::{organization}:role/keyreport-member with the external id"


def test_member_role_not_assumable(world: World, organization: str) -> None:
    faults = IamFaults("sts")
    faults.fail_when("AssumeRole", "AccessDenied", organization)
    hop = first_failure(check(faults.install(boto3.Session()), member_account=organization))
    assert (
        hop.name == "member role" and f"cannot assume arn:aws:iam::{organization}:role/keyreport-member" in hop.detail
    )
    assert "ExternalId" in hop.cause and "member-role.yaml" in hop.fix


# -- Azure side -------------------------------------------------------------------------------------------


def test_wrong_client_secret(world: World) -> None:
    world.stack.aws.client("secretsmanager").put_secret_value(
        SecretId=world.env["KEYREPORT_AZURE_CLIENT_SECRET_ARN"], SecretString="kr~not-the-secret"
    )
    hop = first_failure(check())
    assert hop.name == "token for Key Vault" and hop.detail.endswith("AADSTS7000215")
    assert hop.cause.startswith("wrong client secret") and "KEYREPORT_AZURE_CLIENT_SECRET_ARN" in hop.fix


def test_federated_credential_mismatch_shows_both_sides(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    modes = world.stack.auth_modes
    assert modes is not None
    world.stack.entra.register_app(TENANT_ID, OTHER_CLIENT_ID)
    world.stack.entra.add_federated_credential(
        TENANT_ID,
        OTHER_CLIENT_ID,
        issuer=modes.issuer.url,
        subject=f"arn:aws:iam::{world.estate.account_id}:role/some-other-role",
        key=modes.issuer.public_key,
    )
    world.configure(monkeypatch, world.stack.env(auth="federated") | {"AZURE_CLIENT_ID": OTHER_CLIENT_ID})
    hop = first_failure(check())
    assert hop.name == "token for Key Vault" and hop.detail.endswith("AADSTS70021")
    assert "no federated credential of the app matches" in hop.cause
    assert f"issuer {modes.issuer.url}, subject {modes.role_arn}, audience api://AzureADTokenExchange" in hop.fix


def test_sts_refusing_the_web_identity_token(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    modes = world.stack.auth_modes
    assert modes is not None
    world.configure(monkeypatch, world.stack.env(auth="federated"))
    modes.issuer.denied.add(modes.role_arn)
    try:
        hop = first_failure(check())
    finally:
        modes.issuer.denied.discard(modes.role_arn)
    assert hop.name == "sts:GetWebIdentityToken" and "may not call sts:GetWebIdentityToken" in hop.detail
    assert "AWS side" in hop.cause


def test_client_secret_gone_from_secrets_manager(world: World) -> None:
    world.stack.aws.client("secretsmanager").delete_secret(
        SecretId=world.env["KEYREPORT_AZURE_CLIENT_SECRET_ARN"], ForceDeleteWithoutRecovery=True
    )
    hop = first_failure(check())
    assert hop.name == "token for Key Vault" and "ResourceNotFoundException" in hop.detail
    assert "AWS side" in hop.cause


def test_key_vault_secret_missing(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.configure(monkeypatch, world.env | {"KEYREPORT_WORKSPACE_KEY_SECRET": "no-such-secret"})
    report = check()
    hop = first_failure(report)
    assert (hop.name, hop.detail) == (
        "key vault: workspace key",
        f"no secret 'no-such-secret' in {world.stack.keyvault.url}",
    )
    assert "az keyvault secret set" in hop.fix
    assert report.hops[-1].detail.startswith("not checked: needs key vault: workspace key")


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        (base64.b64encode(b"sixteen byte key").decode(), "the secret decodes to 16 bytes, a workspace key has 64"),
        ("5a2c9e1f-7b4d-4c3a-8e6f-1b9d2a7c4e0f", "the secret is not base64"),
    ],
    ids=["short", "not-base64"],
)
def test_key_vault_secret_not_a_workspace_key(world: World, value: str, detail: str) -> None:
    world.stack.keyvault.set_secret(WORKSPACE_KEY_SECRET, value)
    hop = first_failure(check())
    assert (hop.name, hop.detail) == ("key vault: workspace key", detail)
    assert value not in json.dumps(check().as_dict())


def test_wrong_workspace_key_is_the_403_of_the_data_collector(world: World) -> None:
    world.stack.collector.set_key(make_workspace_key("another workspace"))
    before = stored(world)
    hop = first_failure(check())
    assert hop.name == "data collector" and "answered 403 InvalidAuthorization" in hop.detail
    assert hop.cause.startswith("wrong workspace key") and stored(world) == before


def test_a_skewed_clock_is_named_as_the_cause_of_the_403(world: World) -> None:
    collector = world.stack.collector
    collector.clock = lambda: datetime.now(UTC) + timedelta(minutes=20)  # the service's clock, 20 min ahead
    try:
        hop = first_failure(check())
    finally:
        collector.clock = lambda: datetime.now(UTC)
    assert hop.name == "data collector" and "403" in hop.detail
    assert hop.cause.startswith("clock skew") and "NTP" in hop.fix


def test_dcr_role_missing_is_the_403_of_the_logs_ingestion_api(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.configure(monkeypatch, world.stack.env(sink="logs_ingestion"))
    app = world.stack.entra.register_app(TENANT_ID, CLIENT_ID)
    world.stack.ingestion.revoke_publisher(DCR_ID, app.object_id)
    try:
        report = check()
    finally:
        world.stack.ingestion.assign_publisher(DCR_ID, app.object_id)
    hop = first_failure(report)
    assert hop.name == "logs ingestion: Custom-AWS_Access_Key_Report_CL" and "answered 403" in hop.detail
    assert hop.cause.startswith("DCR role missing") and "Monitoring Metrics Publisher" in hop.fix


def test_a_silent_hop_is_reported_not_waited_on(world: World) -> None:
    world.stack.collector.slow_next(8)
    report = run_checks(Wiring(Settings.from_env(), boto3.Session()), timeout=3)
    # Found by name: on a loaded machine an earlier hop may also pass its 3 s, which is not what this is about.
    [hop] = [hop for hop in report.hops if hop.name == "data collector"]
    # Either the call was cut off inside the hop's time (the usual case) or the hop's own wait ended first.
    assert not hop.passed and hop.detail.startswith("no answer"), hop.detail
    assert "did not answer" in hop.cause or "silent" in hop.cause, hop.cause
    assert hop.milliseconds < 6000


# -- the command and the Lambda test event -----------------------------------------------------------------


def test_cli_prints_the_checklist_and_exits_0(world: World) -> None:
    done = cli(world, "check")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("✓ aws identity: account ") and lines[-1] == "keyreport check: every hop passed"
    assert_no_secret(world, done.stdout + done.stderr)


def test_cli_json_and_exit_1_on_a_failure(world: World) -> None:
    done = cli(world, "check", "--json", KEYREPORT_WORKSPACE_KEY_SECRET="no-such-secret")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["passed"] is False
    failed = [hop for hop in report["hops"] if hop["status"] == "fail"]
    assert failed[0]["name"] == "key vault: workspace key" and failed[0]["fix"]


def test_cli_configuration_error_exits_2_with_every_problem(world: World) -> None:
    done = cli(world, "check", KEYREPORT_SINK="bogus", KEYREPORT_WORKSPACE_ID="not-a-guid")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "KEYREPORT_SINK='bogus'" in done.stderr and "KEYREPORT_WORKSPACE_ID='not-a-guid'" in done.stderr


def test_cli_refuses_a_malformed_account(world: World) -> None:
    done = cli(world, "check", "--account", "12345")
    assert done.returncode == 2 and "not a 12-digit AWS account id" in done.stderr


def test_lambda_test_event_returns_the_checklist(world: World) -> None:
    before = stored(world)
    result = keyreport.handler.lambda_handler({"keyreport": "check"}, LocalLambdaContext(900))  # type: ignore[arg-type]
    assert result["passed"] is True and result["hops"][0]["name"] == "aws identity"
    assert stored(world) == before


# -- the event path (KEYREPORT_EVENT_QUEUE_URL) ------------------------------------------------------------

EVENT_HOPS = ["cloudtrail: management events in us-east-1", "iam events rule", "iam event queue trigger"]


def event_hops(report: Report) -> dict[str, Hop]:
    return {hop.name: hop for hop in report.hops if hop.name in EVENT_HOPS}


def test_the_event_path_proves_trail_rule_queue_policy_and_trigger(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEYREPORT_EVENT_QUEUE_URL", deploy_event_path(world.stack.aws))
    report = check()
    assert report.passed, "\n".join(report.lines())
    hops = event_hops(report)
    assert list(hops) == EVENT_HOPS
    assert "trail management logs management events" in hops[EVENT_HOPS[0]].detail
    assert "keyreport-IamEventRule sends IAM's events" in hops[EVENT_HOPS[1]].detail
    assert "invokes arn:aws:lambda:" in hops[EVENT_HOPS[2]].detail


@pytest.mark.parametrize(
    ("missing", "hop", "says"),
    [
        ("trail", EVENT_HOPS[0], "create a multi-region trail that logs management events"),
        ("queue_policy", EVENT_HOPS[1], "IamEventQueuePolicy"),
        ("trigger", EVENT_HOPS[2], "IamEventTrigger"),
    ],
)
def test_each_missing_part_of_the_event_path_fails_its_hop_with_the_fix(
    world: World, monkeypatch: pytest.MonkeyPatch, missing: str, hop: str, says: str
) -> None:
    monkeypatch.setenv("KEYREPORT_EVENT_QUEUE_URL", deploy_event_path(world.stack.aws, **{missing: False}))
    failed = first_failure(check())
    assert failed.name == hop and says in failed.fix, failed


def test_a_trail_of_read_events_only_or_stopped_does_not_count(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYREPORT_EVENT_QUEUE_URL", deploy_event_path(world.stack.aws))
    cloudtrail = world.stack.aws.client("cloudtrail")
    cloudtrail.put_event_selectors(
        TrailName="management", EventSelectors=[{"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True}]
    )
    assert first_failure(check()).name == EVENT_HOPS[0]
    cloudtrail.put_event_selectors(
        TrailName="management", EventSelectors=[{"ReadWriteType": "All", "IncludeManagementEvents": True}]
    )
    cloudtrail.stop_logging(Name="management")
    assert first_failure(check()).name == EVENT_HOPS[0]


def test_a_stack_outside_us_east_1_needs_the_forwarder(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The queue and rule in eu-west-1: passes only once a us-east-1 rule forwards IAM's events to its bus."""
    aws = world.stack.aws
    url = deploy_event_path(aws, region="eu-west-1")
    monkeypatch.setenv("KEYREPORT_EVENT_QUEUE_URL", url)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    failed = first_failure(check())
    assert failed.name == EVENT_HOPS[1] and "iam-events-forwarder.yaml" in failed.fix
    bus = f"arn:aws:events:eu-west-1:{world.estate.account_id}:event-bus/default"
    forward = aws.client("events")
    forward.put_rule(Name="keyreport-forward", EventPattern=json.dumps(IAM_EVENT_PATTERN))
    forward.put_targets(Rule="keyreport-forward", Targets=[{"Id": "bus", "Arn": bus}])
    hop = event_hops(check())[EVENT_HOPS[1]]
    assert hop.passed and "(us-east-1) forwards IAM's events to eu-west-1" in hop.detail, hop
