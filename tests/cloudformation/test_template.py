"""cloudformation/template.yaml read line by line, the way a security reviewer would, against the code it deploys."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from collections import defaultdict
from contextlib import redirect_stdout
from dataclasses import fields, is_dataclass
from typing import Any

import pytest

from keyreport import deployment_key
from keyreport.clouds import CLOUDS
from keyreport.identity import federation, kms_key
from keyreport.metrics import publish_run
from keyreport.records import RunSummary
from keyreport.settings import AUTH_MODES, SINKS, VARIABLES, ConfigError, Settings
from keyreport.spill.bucket import LEDGER_PREFIX, PREFIX, QUARANTINE_PREFIX
from scripts import package_lambda
from tests.cloudformation import aws_calls
from tests.cloudformation.cfn import MEMBER_ROLE, TEMPLATE, Scenario, as_list, load, strings
from tests.cloudformation.expected import ALWAYS, FOR_EVENTS, FOR_MODE, FOR_ORGANIZATION, UNSCOPED, sample

ROLE = "FunctionRole"
TEMPLATE_DATA = load(TEMPLATE)
PARAMETERS = TEMPLATE_DATA["Parameters"]
ENVIRONMENT = TEMPLATE_DATA["Resources"]["Function"]["Properties"]["Environment"]["Variables"]
FINGERPRINT_SECRET = {"Ref": "FingerprintSecret"}

# Settings the code reads that the function is not given, each with the reason.
NOT_FOR_THE_FUNCTION = {
    "KEYREPORT_LOGS_QUERY_ENDPOINT": "read only by `keyreport query`, which runs on a workstation",
}
# Environment values that come from the stack's own resources instead of a parameter.
FROM_THE_STACK = {
    "KEYREPORT_SPILL_BUCKET": "SpillBucket",
    "KEYREPORT_FINGERPRINT_SECRET_ARN": "FingerprintSecret",
    "KEYREPORT_QUEUE_URL": "AccountQueue",
    "KEYREPORT_EVENT_QUEUE_URL": "IamEventQueue",
    "KEYREPORT_METRICS_NAMESPACE": "AWS::StackName",
}

# Actions the code calls that the function never needs, each with the reason.
NOT_CALLED_BY_THE_FUNCTION = {
    "s3:ListBucket": "keyreport replay, on a workstation with the operator's credentials",
    "s3:GetObject": "keyreport replay, on a workstation with the operator's credentials",
    "s3:CopyObject": "keyreport replay moves a rejected object to the quarantine prefix, on a workstation",
    "sts:GetCallerIdentity": "needs no permission: any principal may ask who it is",
}
# Actions Lambda itself performs with the function's role (not keyreport's code).
USED_BY_LAMBDA = {
    "logs:CreateLogStream": "the function's log streams",
    "logs:PutLogEvents": "the function's log lines",
    "sqs:SendMessage": "failed asynchronous runs to the dead-letter queue",
    "sqs:ReceiveMessage": "the event source mappings of the IAM event queue and the account queue",
    "sqs:DeleteMessage": "the event source mappings of the IAM event queue and the account queue",
    "sqs:GetQueueAttributes": "the event source mappings of the IAM event queue and the account queue",
}


def scenario(**overrides: str) -> Scenario:
    return Scenario.of(TEMPLATE_DATA, **{**sample(), **overrides})


def function_environment(chosen: Scenario) -> dict[str, str]:
    """The function's environment in a scenario, with the stack's own resources given physical names."""
    physical = {
        "SpillBucket": "keyreport-spillbucket-1a2b3c",
        "AccountQueue": "https://sqs.eu-west-1.amazonaws.com/111122223333/keyreport-AccountQueue-1a2b3c",
        "IamEventQueue": "https://sqs.eu-west-1.amazonaws.com/111122223333/keyreport-IamEventQueue-1a2b3c",
        "FingerprintSecret": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:FingerprintSecret-a1b2c3-AbCdEf",
    }
    environment = {}
    for name, value in chosen.resolve(ENVIRONMENT).items():
        if isinstance(value, dict) and "Fn::Sub" in value:
            value = value["Fn::Sub"].replace("${AWS::StackName}", "keyreport")
        elif isinstance(value, dict):
            value = physical[value["Ref"]]
        environment[name] = value
    return environment


def parameter_refs(value: Any) -> set[str]:
    """Every Ref inside a value, including those of the conditions its Fn::If choose by."""
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return {value["Ref"]}
        if set(value) == {"Condition"}:
            return parameter_refs(TEMPLATE_DATA["Conditions"][value["Condition"]])
        if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            return set(re.findall(r"\$\{([A-Za-z0-9:]+)", value["Fn::Sub"]))
        if set(value) == {"Fn::If"}:
            condition, *branches = value["Fn::If"]
            return parameter_refs({"Condition": condition}) | parameter_refs(branches)
        return {ref for item in value.values() for ref in parameter_refs(item)}
    if isinstance(value, list):
        return {ref for item in value for ref in parameter_refs(item)}
    return set()


# --- settings <-> environment ------------------------------------------------------------------------------


def test_the_function_environment_is_exactly_the_settings_the_code_reads() -> None:
    expected = set(VARIABLES) - set(NOT_FOR_THE_FUNCTION)
    missing, extra = sorted(expected - set(ENVIRONMENT)), sorted(set(ENVIRONMENT) - expected)
    assert (missing, extra) == ([], []), (
        f"cloudformation/template.yaml (Function.Environment.Variables) is out of step with "
        f"keyreport.settings.VARIABLES: add a parameter and a variable for {missing}, remove {extra} "
        "(or list a setting the function must not get in NOT_FOR_THE_FUNCTION, with the reason)"
    )


def test_every_setting_has_its_parameter_documented_under_the_variable_name() -> None:
    for variable, value in ENVIRONMENT.items():
        refs = parameter_refs(value)
        parameters = {ref for ref in refs if ref in PARAMETERS}
        if variable in FROM_THE_STACK:
            assert FROM_THE_STACK[variable] in refs, variable
            continue
        assert parameters, f"{variable} is set from no parameter"
        assert any(PARAMETERS[p]["Description"].startswith(f"{variable}.") for p in parameters), (
            f"the parameter behind {variable} should say so: Description: '{variable}. ...'"
        )


@pytest.mark.parametrize("mode", sorted(FOR_MODE))
def test_every_auth_mode_deploys_a_configuration_the_code_accepts(mode: str) -> None:
    Settings.from_env(function_environment(scenario(AzureAuth=mode)))


@pytest.mark.parametrize(
    "overrides",
    [
        {"Sink": "logs_ingestion", "DceEndpoint": "https://dce.eastus-1.ingest.monitor.azure.com",
         "DcrImmutableId": "dcr-" + "0123456789abcdef" * 2},
        {"Sink": "stdout"},
        {"OrganizationMode": "true"},
        {"AzureCloud": "usgov", "KeyVaultUrl": "https://kv-keyreport.vault.usgovcloudapi.net"},
        {"AzureCloud": "china", "KeyVaultUrl": "https://kv-keyreport.vault.azure.cn"},
    ],
    ids=["logs_ingestion", "stdout", "organization", "usgov", "china"],
)  # fmt: skip
def test_other_deployments_give_configurations_the_code_accepts(overrides: dict[str, str]) -> None:
    settings = Settings.from_env(function_environment(scenario(**overrides)))
    if "OrganizationMode" in overrides:
        assert settings.organization is not None
        assert (settings.mode, settings.organization.external_id) == ("organization", sample()["MemberRoleExternalId"])


def test_the_largest_environment_fits_lambdas_4_kb() -> None:
    """Lambda refuses more than 4 KB of environment; the kms certificate is the one large value."""
    chosen = scenario(
        AzureAuth="kms",
        OrganizationMode="true",
        AzureResourceId="/subscriptions/" + "0" * 36 + "/resourceGroups/keyreport/providers/"
        "Microsoft.OperationalInsights/workspaces/keyreport-la",
        AzureAuthorityHost="https://login.microsoftonline.com",
        CaBundlePath="/opt/corporate-ca.pem",
    )
    environment = function_environment(chosen)
    size = sum(len(name) + len(value) for name, value in environment.items())
    assert size < 4096, f"{size} bytes of environment"


def test_parameter_defaults_are_the_codes_defaults() -> None:
    environment = function_environment(scenario())
    from_template = flat(Settings.from_env(environment))
    from_code = flat(Settings.from_env({name: environment[name] for name in REQUIRED_BY_THE_SAMPLE}))
    differing = {name for name in from_template | from_code if from_template.get(name) != from_code.get(name)}
    # The stack's own bucket, and the recommended sign-in mode (the code's default, `default`, only works on a
    # workstation), a metrics namespace per stack and (IamEvents=enabled) the stack's IAM event queue; everything
    # else is left at the code's defaults.
    events = {"event_queue_url"} if PARAMETERS["IamEvents"]["Default"] == "enabled" else set()
    assert differing == {"azure.auth", "spill_bucket", "metrics_namespace"} | events


REQUIRED_BY_THE_SAMPLE = (
    "KEYREPORT_DCE_ENDPOINT",  # the default sink's: logs_ingestion
    "KEYREPORT_DCR_ID",
    "KEYREPORT_FINGERPRINT_SECRET_ARN",  # the stack's own secret: required by the code, no default
)


def flat(value: object, prefix: str = "") -> dict[str, object]:
    """A settings object as dotted names -> values; an auth mode counts as one value (its type and fields)."""
    if not is_dataclass(value) or prefix == "azure.auth.":
        return {prefix.rstrip("."): value}
    found: dict[str, object] = {}
    for spec in fields(value):
        found |= flat(getattr(value, spec.name), f"{prefix}{spec.name}.")
    return found


def _numeric_settings() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for variable, value in ENVIRONMENT.items():
        for name in parameter_refs(value) & set(PARAMETERS):
            if PARAMETERS[name]["Type"] == "Number":
                found.append((variable, PARAMETERS[name]))
    return found


@pytest.mark.parametrize(("variable", "parameter"), _numeric_settings(), ids=[v for v, _ in _numeric_settings()])
def test_number_parameters_allow_exactly_what_the_setting_allows(variable: str, parameter: dict[str, Any]) -> None:
    base = {"KEYREPORT_SINK": "stdout"}
    low, high = parameter["MinValue"], parameter["MaxValue"]
    assert Settings.from_env({**base, variable: str(parameter["Default"])})
    assert Settings.from_env({**base, variable: str(low)})
    assert Settings.from_env({**base, variable: str(high)})
    for outside in (low - 1, high + 1):
        with pytest.raises(ConfigError, match=variable):
            Settings.from_env({**base, variable: str(outside)})


def test_choice_parameters_offer_what_the_code_accepts() -> None:
    assert set(PARAMETERS["AzureAuth"]["AllowedValues"]) == set(AUTH_MODES) - {"default"}
    assert set(PARAMETERS["AzureCloud"]["AllowedValues"]) == set(CLOUDS)
    assert set(PARAMETERS["Sink"]["AllowedValues"]) == set(SINKS)
    for value in PARAMETERS["AwsRetryMode"]["AllowedValues"]:
        Settings.from_env({"KEYREPORT_SINK": "stdout", "KEYREPORT_AWS_RETRY_MODE": value})


def test_defaults_and_sample_values_match_the_parameter_patterns() -> None:
    for name, spec in PARAMETERS.items():
        pattern = spec.get("AllowedPattern")
        if pattern is None:
            continue
        for value in (str(spec.get("Default", "")), sample().get(name)):
            if value is not None and (value or "Default" in spec):
                assert re.fullmatch(pattern, value), f"{name}: {value[:40]!r} does not match {pattern}"


def test_settings_without_a_safe_value_have_no_secret_in_a_parameter() -> None:
    """Secrets live in Secrets Manager or Key Vault; parameters only name them. What is sensitive is NoEcho."""
    for path in (TEMPLATE, MEMBER_ROLE):
        for name, spec in load(path)["Parameters"].items():
            # A name ending in Arn or Name only points at a secret; one ending like this would hold its value.
            if re.search(r"(Secret|Password|Token|PrivateKey|WorkspaceKey|SharedKey|ExternalId)$", name):
                assert spec.get("NoEcho") is True, f"{path.name}: {name} must be NoEcho"


# --- IAM: exactly what the code calls -------------------------------------------------------------------------


def all_scenarios() -> list[Scenario]:
    return [
        scenario(AzureAuth=mode, OrganizationMode=org, SecretsKmsKeyArn=key, IamEvents=events)
        for mode in FOR_MODE
        for org in ("false", "true")
        for key in ("", "arn:aws:kms:eu-west-1:111122223333:key/0000abcd-12ab-34cd-56ef-1234567890ab")
        for events in ("enabled", "disabled")
    ]


def test_the_role_grants_exactly_the_actions_the_code_calls() -> None:
    services = aws_calls.client_services()
    unknown = {service: where for service, where in services.items() if service not in aws_calls.SERVICES}
    assert not unknown, f"keyreport now makes clients for {unknown}: add them to aws_calls.SERVICES and the template"
    calls: dict[str, list[str]] = defaultdict(list)
    for call in aws_calls.called():
        calls[call.action].append(call.where)
    needed = (set(calls) - set(NOT_CALLED_BY_THE_FUNCTION)) | (set(USED_BY_LAMBDA))
    granted = set().union(*(chosen.granted(ROLE) for chosen in all_scenarios()))
    granted -= {"kms:Decrypt"}  # Secrets Manager's own call, on the function's behalf (checked below)
    not_granted = {action: calls[action] for action in sorted(needed - granted)}
    not_called = sorted(granted - needed)
    assert not not_granted, (
        f"the code calls {not_granted} but the function's role cannot: grant it in cloudformation/template.yaml "
        "(in the policy of the mode that needs it), or list it in NOT_CALLED_BY_THE_FUNCTION with the reason"
    )
    assert not not_called, f"the role grants {not_called}, which no code calls: remove the grant"


@pytest.mark.parametrize("mode", sorted(FOR_MODE))
@pytest.mark.parametrize("organization", ["false", "true"])
@pytest.mark.parametrize("events", ["enabled", "disabled"])
def test_each_mode_grants_its_own_actions_and_nothing_of_the_others(mode: str, organization: str, events: str) -> None:
    granted = scenario(AzureAuth=mode, OrganizationMode=organization, IamEvents=events).granted(ROLE)
    expected = ALWAYS | FOR_MODE[mode] | (FOR_ORGANIZATION if organization == "true" else set())
    expected |= FOR_EVENTS if events == "enabled" else set()
    assert granted == expected


def test_unused_modes_create_nothing() -> None:
    policy_of_mode = {
        "federated": "FederatedModePolicy",
        "kms": "KmsModePolicy",
        "certificate": "CertificateModePolicy",
        "secret": "SecretModePolicy",
    }
    resources = TEMPLATE_DATA["Resources"].items()
    organization_only = {name for name, resource in resources if resource.get("Condition") == "OrganizationFanOut"}
    assert {
        "AccountQueue",
        "AccountDeadLetterQueue",
        "AccountQueueTrigger",
        "OrganizationModePolicy",
    } <= organization_only
    for mode, policy in policy_of_mode.items():
        created = set(scenario(AzureAuth=mode).resources())
        assert policy in created
        assert not created & (set(policy_of_mode.values()) - {policy}), mode
        assert not created & organization_only
        assert "SecretsCustomerKeyPolicy" not in created
        assert "AlarmTopic" not in created


def test_a_customer_managed_secrets_key_is_only_decrypted_through_secrets_manager() -> None:
    key = "arn:aws:kms:eu-west-1:111122223333:key/0000abcd-12ab-34cd-56ef-1234567890ab"
    for mode in FOR_MODE:
        statements = [s for s in scenario(AzureAuth=mode, SecretsKmsKeyArn=key).role_statements(ROLE)]
        decrypt = [s for s in statements if "kms:Decrypt" in as_list(s["Action"])]
        if mode in ("certificate", "secret"):
            (statement,) = decrypt
            assert statement["Resource"] == key
            assert statement["Condition"]["StringEquals"]["kms:ViaService"] == {
                "Fn::Sub": "secretsmanager.${AWS::Region}.${AWS::URLSuffix}"
            }
        else:
            assert decrypt == [], mode


@pytest.mark.parametrize(
    ("mode", "parameter"), [("secret", "AzureClientSecretArn"), ("certificate", "AzureCertificateArn")]
)
def test_a_stored_credential_is_read_from_the_one_named_secret(mode: str, parameter: str) -> None:
    statements = scenario(AzureAuth=mode).role_statements(ROLE)
    reads = [s for s in statements if "secretsmanager:GetSecretValue" in as_list(s["Action"])]
    (read,) = [s for s in reads if s["Resource"] != FINGERPRINT_SECRET]
    assert read["Resource"] == sample()[parameter]


def test_kms_mode_signs_only_with_the_named_key_and_the_codes_algorithm() -> None:
    statements = scenario(AzureAuth="kms").role_statements(ROLE)
    by_action = {action: s for s in statements for action in as_list(s["Action"]) if action.startswith("kms:")}
    assert {s["Resource"] for s in by_action.values()} == {sample()["AzureSigningKeyArn"]}
    assert by_action["kms:Sign"]["Condition"]["StringEquals"] == {
        "kms:SigningAlgorithm": kms_key.SIGNING_ALGORITHM,
        "kms:MessageType": "RAW",
    }


@pytest.mark.parametrize("cloud", sorted(CLOUDS))
def test_federated_tokens_are_only_for_entra_with_the_codes_algorithm_and_lifetime(cloud: str) -> None:
    statements = scenario(AzureAuth="federated", AzureCloud=cloud).role_statements(ROLE)
    (token,) = [s for s in statements if "sts:GetWebIdentityToken" in as_list(s["Action"])]
    condition = token["Condition"]
    audience = CLOUDS[cloud].federation_audience
    assert condition["ForAllValues:StringEquals"] == {"sts:IdentityTokenAudience": audience}
    assert condition["Null"] == {"sts:IdentityTokenAudience": "false"}  # ForAllValues alone passes an empty set
    assert condition["StringEquals"] == {"sts:SigningAlgorithm": federation.SIGNING_ALGORITHM}
    assert int(condition["NumericLessThanEquals"]["sts:DurationSeconds"]) >= federation.TOKEN_SECONDS


def test_only_actions_without_a_resource_type_are_granted_on_everything() -> None:
    for chosen in all_scenarios():
        for statement in chosen.role_statements(ROLE):
            if statement["Resource"] == "*":
                assert set(as_list(statement["Action"])) <= UNSCOPED, statement


def test_the_member_role_is_assumed_only_inside_the_organization() -> None:
    statements = scenario(OrganizationMode="true").role_statements(ROLE)
    (assume,) = [s for s in statements if "sts:AssumeRole" in as_list(s["Action"])]
    assert assume["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/${MemberRoleName}"}
    assert assume["Condition"] == {"StringEquals": {"aws:ResourceOrgID": sample()["OrganizationId"]}}


# --- partitions, sizes, checkov, runtime --------------------------------------------------------------------------


@pytest.mark.parametrize("path", [TEMPLATE, MEMBER_ROLE], ids=lambda p: p.name)
def test_arns_are_built_for_every_partition(path: Any) -> None:
    texts = strings(load(path))
    assert not [t for t in texts if "arn:aws:" in t], "write arn:${AWS::Partition}:..., for GovCloud and China"
    built = [t for t in texts if t.startswith("arn:") and "${" in t]
    assert built and all(t.startswith("arn:${AWS::Partition}:") for t in built)


def test_the_template_fits_the_deploy_path_the_guides_use() -> None:
    """CloudFormation takes a template body of at most 51,200 bytes, and one from S3 of up to 1 MB. The stack
    passed 51,200 with the event path (and more grants are coming), so it is deployed the S3 way only, as it
    always was: `make deploy` and the guide pass --s3-bucket, the console uploads the file to S3 itself, and no
    guide hands template.yaml over as a template body."""
    assert TEMPLATE.stat().st_size < 1_000_000, "CloudFormation takes a template from S3 of at most 1 MB"
    makefile = (TEMPLATE.parents[1] / "Makefile").read_text()
    guides = [*(TEMPLATE.parents[1] / "docs").glob("*.md"), TEMPLATE.parents[1] / "README.md"]
    commands = [
        command
        for text in [makefile, *(guide.read_text() for guide in guides)]
        for command in text.replace("\\\n", " ").split("\n")
        if "cloudformation/template.yaml" in command and ("deploy " in command or "create-stack" in command)
    ]
    assert commands and all("--s3-bucket" in command for command in commands), commands
    assert all("--template-body" not in command for command in commands), commands


def test_every_checkov_skip_says_why() -> None:
    for path in (TEMPLATE, MEMBER_ROLE):
        for name, resource in load(path)["Resources"].items():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (name, skip)
                assert len(skip.get("comment", "")) > 60, f"{name}: {skip['id']} needs a written reason"


def test_the_runtime_and_architecture_are_what_the_package_is_built_for() -> None:
    function = TEMPLATE_DATA["Resources"]["Function"]["Properties"]
    assert function["Runtime"] == "python{}.{}".format(*package_lambda.RUNTIME_PYTHON)
    assert function["Architectures"] == ["arm64"]
    assert all(platform.endswith("_aarch64") for platform in package_lambda.PLATFORMS)
    assert function["Handler"] == "keyreport.handler.lambda_handler"


def test_the_function_is_bounded_encrypted_and_logs_json() -> None:
    function = TEMPLATE_DATA["Resources"]["Function"]["Properties"]
    assert function["KmsKeyArn"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
    assert function["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}}
    assert function["LoggingConfig"]["LogFormat"] == "JSON"
    assert scenario(IamEvents="disabled").resolve(function["ReservedConcurrentExecutions"]) == 1
    events = scenario(IamEvents="enabled")  # one run, and the event path's two batches at most
    event_trigger = events.resolve(events.resources()["IamEventTrigger"]["Properties"])
    assert (
        events.resolve(function["ReservedConcurrentExecutions"])
        == 1 + event_trigger["ScalingConfig"]["MaximumConcurrency"]
    )
    event_queue = events.resources()["IamEventQueue"]["Properties"]
    assert event_queue["VisibilityTimeout"] > PARAMETERS["FunctionTimeout"]["MaxValue"]
    organization = scenario(OrganizationMode="true")
    trigger = organization.resolve(organization.resources()["AccountQueueTrigger"]["Properties"])
    assert (trigger["BatchSize"], trigger["FunctionResponseTypes"]) == (1, ["ReportBatchItemFailures"])
    reserved = organization.resolve(function["ReservedConcurrentExecutions"])
    assert int(reserved) >= int(trigger["ScalingConfig"]["MaximumConcurrency"])
    queue = TEMPLATE_DATA["Resources"]["AccountQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * PARAMETERS["FunctionTimeout"]["MaxValue"]


# --- observability: the alarms watch the metrics the code emits ----------------------------------------------


def emitted(**counts: Any) -> dict[str, Any]:
    """The EMF line the function writes at the end of an account's run, parsed."""
    summary = RunSummary(
        run_id="0f8e7d6c-5b4a-4321-9876-543210fedcba",
        account_id="111122223333",
        started=dt.datetime(2026, 11, 1, 6, 0, tzinfo=dt.UTC),
        collector_version="test",
        sink="data_collector",
        **counts,
    )
    stream = io.StringIO()
    with redirect_stdout(stream):
        publish_run(summary, "KeyReport/stack")
    line: dict[str, Any] = json.loads(stream.getvalue().strip().splitlines()[-1])
    return line


def alarm_metrics() -> list[tuple[str, str, Any, list[dict[str, str]]]]:
    """(alarm, metric name, namespace, dimensions) of every alarm metric in the KeyReport namespace."""
    found = []
    for name, resource in TEMPLATE_DATA["Resources"].items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        properties = resource["Properties"]
        stats = [m["MetricStat"]["Metric"] for m in properties.get("Metrics", []) if "MetricStat" in m]
        for metric in [properties, *stats]:
            if "MetricName" in metric and "KeyReport" in json.dumps(metric.get("Namespace")):
                found.append((name, metric["MetricName"], metric["Namespace"], metric.get("Dimensions", [])))
    return found


def test_the_alarms_read_metrics_the_function_emits_with_their_dimensions() -> None:
    line = emitted()
    [directive] = line["_aws"]["CloudWatchMetrics"]
    names = {metric["Name"] for metric in directive["Metrics"]}
    used = alarm_metrics()
    assert {metric for _, metric, _, _ in used} == {"SuccessfulRuns", "RecordsFailed", "RecordsSpilled"}
    for alarm, metric, namespace, dimensions in used:
        assert metric in names, alarm
        assert namespace == ENVIRONMENT["KEYREPORT_METRICS_NAMESPACE"] == {"Fn::Sub": "KeyReport/${AWS::StackName}"}
        assert sorted(d["Name"] for d in dimensions) in [sorted(s) for s in directive["Dimensions"]], alarm
        assert all(line[d["Name"]] == d["Value"] for d in dimensions), alarm
    no_filters = [n for n, r in TEMPLATE_DATA["Resources"].items() if r["Type"] == "AWS::Logs::MetricFilter"]
    assert no_filters == [], "every alarm reads an emitted metric: no metric filter is needed"


def test_the_metrics_count_successes_and_undelivered_records() -> None:
    ok, spilled, failed = emitted(shipped=5), emitted(shipped=2, spilled=3), emitted(failed=2)
    assert [(e["SuccessfulRuns"], e["RecordsSpilled"], e["RecordsFailed"]) for e in (ok, spilled, failed)] == [
        ([1.0], [0.0], [0.0]),
        ([0.0], [3.0], [0.0]),
        ([0.0], [0.0], [2.0]),
    ]


def test_every_alarm_notifies_the_topic_when_there_is_one() -> None:
    alarms = [name for name, r in TEMPLATE_DATA["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert {"FunctionErrorsAlarm", "NoSuccessfulRunAlarm", "UndeliveredRecordsAlarm", "DeadLetterAlarm"} <= set(alarms)
    for overrides, topic in (
        ({"AlarmEmail": "secops@example.com"}, {"Ref": "AlarmTopic"}),
        ({"AlarmTopicArn": "arn:aws:sns:eu-west-1:111122223333:secops"}, "arn:aws:sns:eu-west-1:111122223333:secops"),
        ({}, None),
    ):
        chosen = scenario(OrganizationMode="true", **overrides)
        for name in alarms:
            properties = chosen.resolve(TEMPLATE_DATA["Resources"][name]["Properties"])
            assert properties.get("AlarmActions") == ([topic] if topic else None), (name, overrides)


def test_the_stack_generates_a_fingerprint_key_that_only_the_function_reads_and_that_outlives_it() -> None:
    secret = TEMPLATE_DATA["Resources"]["FingerprintSecret"]
    generated = secret["Properties"]["GenerateSecretString"]
    assert generated["PasswordLength"] >= deployment_key.MIN_SECRET_CHARACTERS and "SecretString" not in secret
    assert secret["DeletionPolicy"] == secret["UpdateReplacePolicy"] == "Retain"
    assert ENVIRONMENT["KEYREPORT_FINGERPRINT_SECRET_ARN"] == FINGERPRINT_SECRET
    for mode in [*FOR_MODE, "default"]:
        statements = scenario(AzureAuth=mode).role_statements(ROLE)
        reads = [s for s in statements if "secretsmanager:GetSecretValue" in as_list(s["Action"])]
        assert [s["Resource"] for s in reads if s["Resource"] == FINGERPRINT_SECRET] == [FINGERPRINT_SECRET]


ONLY_THE_FUNCTION_AND_BREAK_GLASS = {
    "ArnNotEquals": {
        "aws:PrincipalArn": [
            {"Fn::GetAtt": ["FunctionRole", "Arn"]},
            {"Fn::If": ["HasBreakGlassRole", {"Ref": "BreakGlassRoleArn"}, {"Fn::GetAtt": ["FunctionRole", "Arn"]}]},
        ]
    }
}


def denied(statements: list[dict[str, Any]], action: str) -> dict[str, Any]:
    (deny,) = [s for s in statements if s["Effect"] == "Deny" and action in as_list(s["Action"])]
    assert deny["Principal"] == "*" and deny["Condition"] == ONLY_THE_FUNCTION_AND_BREAK_GLASS
    return deny


def test_only_the_function_and_the_break_glass_role_write_or_delete_outside_the_check_prefix() -> None:
    """Nobody else plants a batch, overwrites a quarantined one, forges the ledger or hides a pending batch."""
    from keyreport.check.spill import PROBE_PREFIX

    statements = TEMPLATE_DATA["Resources"]["SpillBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    deny = denied(statements, "s3:PutObject")
    assert "s3:DeleteObject" in as_list(deny["Action"]) and "Resource" not in deny
    assert deny["NotResource"] == {"Fn::Sub": "${SpillBucket.Arn}/" + PROBE_PREFIX + "*"}  # `keyreport check`
    assert not any(prefix.startswith(PROBE_PREFIX) for prefix in (PREFIX, QUARANTINE_PREFIX, LEDGER_PREFIX))


def test_nobody_else_deletes_object_versions_or_changes_versioning() -> None:
    statements = TEMPLATE_DATA["Resources"]["SpillBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    deny = denied(statements, "s3:DeleteObjectVersion")
    assert "s3:PutBucketVersioning" in as_list(deny["Action"])
    assert deny["Resource"] == [{"Fn::GetAtt": ["SpillBucket", "Arn"]}, {"Fn::Sub": "${SpillBucket.Arn}/*"}]
    bucket = TEMPLATE_DATA["Resources"]["SpillBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}


def test_only_the_function_and_the_break_glass_role_read_the_fingerprint_secret() -> None:
    policy = TEMPLATE_DATA["Resources"]["FingerprintSecretPolicy"]["Properties"]
    assert policy["SecretId"] == {"Ref": "FingerprintSecret"} and policy["BlockPublicPolicy"] is True
    denied(policy["ResourcePolicy"]["Statement"], "secretsmanager:GetSecretValue")


def test_the_function_may_delete_only_its_own_check_probes() -> None:
    from keyreport.check.spill import PROBE_PREFIX

    statements = scenario().resolve(TEMPLATE_DATA["Resources"][ROLE]["Properties"]["Policies"])
    deletes = [
        s for p in statements for s in p["PolicyDocument"]["Statement"] if "s3:DeleteObject" in as_list(s["Action"])
    ]
    assert [s["Resource"] for s in deletes] == [{"Fn::Sub": "${SpillBucket.Arn}/" + PROBE_PREFIX + "*"}]
