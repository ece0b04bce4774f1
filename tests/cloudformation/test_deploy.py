"""The templates deployed through moto's CloudFormation, over HTTP, as far as moto implements the resource types.

moto keeps its state per process and `mock_aws` (or the sandbox's reset) would wipe what other tests in
this worker seeded, so each test gets a moto server of its own in a child process.
"""

from __future__ import annotations

import ast
import io
import json
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from keyreport.aws.iam_events import EVENT_NAMES
from keyreport.settings import Settings
from tests.cloudformation.cfn import FORWARDER, MEMBER_ROLE, ROOT, TEMPLATE, Scenario, as_list, load
from tests.cloudformation.expected import ALWAYS, FOR_EVENTS, FOR_MODE, FOR_ORGANIZATION, sample

REGION = "us-east-1"
# Resource types moto's CloudFormation does not create (it skips them with a warning). The test fails
# when moto learns one, so that the new coverage is checked rather than assumed.
NOT_IN_MOTO = {
    "AWS::Scheduler::Schedule",
    "AWS::CloudWatch::Alarm",
    "AWS::Logs::MetricFilter",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::Subscription",
    "AWS::SecretsManager::Secret",
    "AWS::SQS::QueuePolicy",
    "AWS::Events::EventBusPolicy",
    "AWS::SecretsManager::ResourcePolicy",
}
FINGERPRINT_VARIABLE = "KEYREPORT_FINGERPRINT_SECRET_ARN"
FINGERPRINT_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:FingerprintSecret-a1b2c3-AbCdEf"
SERVER = (
    "import sys\n"
    "from sandbox.aws import AwsSandbox\n"
    "aws = AwsSandbox(region='us-east-1').start()\n"
    "print(aws.endpoint_url, flush=True)\n"
    "sys.stdin.read()\n"  # until the test ends this process
)


@dataclass
class Moto:
    endpoint_url: str

    def client(self, service: str) -> Any:
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
        return session.client(service, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]


@pytest.fixture
def moto() -> Iterator[Moto]:
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # moto warns about every resource type it skips
        text=True,
    )
    try:
        assert server.stdout is not None
        yield Moto(server.stdout.readline().strip())
    finally:
        server.terminate()  # our own child: its state dies with it
        server.wait(timeout=30)


def upload_package(moto: Moto) -> dict[str, str]:
    """What `make deploy` uploads, in miniature: moto stores the function's code but never runs it."""
    s3 = moto.client("s3")
    s3.create_bucket(Bucket="keyreport-artifacts")
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("keyreport/handler.py", "def lambda_handler(event, context):\n    return {}\n")
    s3.put_object(Bucket="keyreport-artifacts", Key="keyreport/lambda-test.zip", Body=package.getvalue())
    return {"CodeS3Bucket": "keyreport-artifacts", "CodeS3Key": "keyreport/lambda-test.zip"}


def deploy(moto: Moto, name: str, parameters: dict[str, str], template: str = TEMPLATE.read_text()) -> dict[str, Any]:
    cloudformation = moto.client("cloudformation")
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=template,
        Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    deadline = time.monotonic() + 120
    while (stack := cloudformation.describe_stacks(StackName=name)["Stacks"][0])["StackStatus"].endswith("IN_PROGRESS"):
        assert time.monotonic() < deadline, "stack still in progress after 2 minutes"
        time.sleep(0.2)
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    stack["outputs"] = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
    stack["created"] = {
        resource["LogicalResourceId"]: resource
        for resource in cloudformation.list_stack_resources(StackName=name)["StackResourceSummaries"]
        if resource["LogicalResourceId"]  # moto lists skipped resources without a name
    }
    return stack


def in_moto(chosen: Scenario) -> set[str]:
    return {name for name, resource in chosen.resources().items() if resource["Type"] not in NOT_IN_MOTO}


def policy_document(value: Any) -> dict[str, Any]:
    """moto returns inline policies of AWS::IAM::Role as Python's repr of the dict rather than JSON."""
    if isinstance(value, dict):
        return value
    try:
        document: dict[str, Any] = json.loads(value)
    except ValueError:
        document = ast.literal_eval(value)
    return document


def lambda_strings(variables: dict[str, Any]) -> dict[str, str]:
    """moto keeps Number parameters as numbers in the environment; Lambda's own API has only strings.

    moto's CloudFormation cannot make an AWS::SecretsManager::Secret and leaves out the variable that refers
    to it: the ARN of a secret like the one the stack generates stands in for it.
    """
    assert FINGERPRINT_VARIABLE not in variables  # when moto learns to make it, drop this stand-in
    return {name: str(value) for name, value in variables.items()} | {FINGERPRINT_VARIABLE: FINGERPRINT_ARN}


def role_grants(moto: Moto, role: str) -> dict[str, list[dict[str, Any]]]:
    iam = moto.client("iam")
    return {
        name: policy_document(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])["Statement"]
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
    }


def actions(grants: dict[str, list[dict[str, Any]]]) -> set[str]:
    return {action for statements in grants.values() for s in statements for action in as_list(s["Action"])}


def test_a_secret_mode_stack_with_alarm_email_deploys_as_written(moto: Moto) -> None:
    secrets_key = moto.client("kms").create_key(Description="customer key of the secret")["KeyMetadata"]["Arn"]
    secret_arn = moto.client("secretsmanager").create_secret(
        Name="keyreport/client-secret", SecretString="not-a-real-secret", KmsKeyId=secrets_key
    )["ARN"]
    parameters = {
        **upload_package(moto),
        "Sink": "data_collector",  # chosen explicitly, as the guide says (the default is logs_ingestion)
        **{k: sample()[k] for k in ("WorkspaceId", "KeyVaultUrl", "WorkspaceKeySecretName")},
        **{k: sample()[k] for k in ("AzureTenantId", "AzureClientId")},
        "AzureAuth": "secret",
        "AzureClientSecretArn": secret_arn,
        "SecretsKmsKeyArn": secrets_key,
        "AlarmEmail": "secops@example.com",
        "IamEvents": "disabled",
    }
    stack = deploy(moto, "keyreport", parameters)
    template = load(TEMPLATE)
    assert set(stack["created"]) == in_moto(Scenario.of(template, **parameters))

    function = moto.client("lambda").get_function(FunctionName=stack["outputs"]["FunctionName"])
    configuration = function["Configuration"]
    assert (configuration["Runtime"], configuration["Handler"]) == ("python3.13", "keyreport.handler.lambda_handler")
    assert (configuration["MemorySize"], configuration["Timeout"]) == (1024, 900)
    assert function["Concurrency"]["ReservedConcurrentExecutions"] == 1
    environment = lambda_strings(configuration["Environment"]["Variables"])
    assert set(environment) == set(template["Resources"]["Function"]["Properties"]["Environment"]["Variables"])
    assert environment["KEYREPORT_SPILL_BUCKET"] == stack["outputs"]["SpillBucketName"]
    assert (environment["KEYREPORT_AZURE_CLIENT_SECRET_ARN"], environment["KEYREPORT_KMS_KEY_ID"]) == (secret_arn, "")
    settings = Settings.from_env(environment)  # the deployed configuration is one the code accepts
    assert (settings.azure.auth.name, settings.spill_bucket) == ("secret", stack["outputs"]["SpillBucketName"])

    role = stack["outputs"]["FunctionRoleArn"].rsplit("/", 1)[1]
    grants = role_grants(moto, role)
    assert set(grants) == {"inventory", "delivery", "azure-client-secret", "azure-credential-key"}
    assert actions(grants) == ALWAYS | FOR_MODE["secret"] | {"kms:Decrypt"}
    assert [s["Resource"] for s in grants["azure-client-secret"]] == [secret_arn]
    (spill,) = [s for s in grants["delivery"] if s["Action"] == "s3:PutObject"]
    assert spill["Resource"].endswith(f":::{stack['outputs']['SpillBucketName']}/*")

    s3 = moto.client("s3")
    encryption = s3.get_bucket_encryption(Bucket=stack["outputs"]["SpillBucketName"])
    assert encryption["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }
    queue = moto.client("sqs").get_queue_attributes(
        QueueUrl=stack["outputs"]["DeadLetterQueueUrl"], AttributeNames=["All"]
    )
    assert queue["Attributes"]["KmsMasterKeyId"] == "alias/aws/sqs"
    assert queue["Attributes"]["MessageRetentionPeriod"] == "1209600"
    kms = moto.client("kms")
    assert kms.get_key_rotation_status(KeyId=stack["outputs"]["DataKeyArn"])["KeyRotationEnabled"]
    topic = moto.client("sns").get_topic_attributes(TopicArn=stack["outputs"]["AlarmTopicArn"])["Attributes"]
    assert topic["KmsMasterKeyId"] == stack["outputs"]["DataKeyArn"].rsplit("/", 1)[1]
    (group,) = moto.client("logs").describe_log_groups(logGroupNamePrefix=stack["outputs"]["LogGroupName"])["logGroups"]
    assert group["retentionInDays"] == 365


def test_a_federated_organization_stack_deploys_the_fan_out(moto: Moto) -> None:
    parameters = {
        **upload_package(moto),
        **{k: sample()[k] for k in ("DceEndpoint", "DcrImmutableId")},
        **{k: sample()[k] for k in ("AzureTenantId", "AzureClientId", "OrganizationId", "MemberRoleExternalId")},
        "AzureAuth": "federated",
        "OrganizationMode": "true",
        "FunctionRoleName": "keyreport-org-collector",
        "IamEvents": "enabled",
    }
    stack = deploy(moto, "keyreport-org", parameters)
    assert set(stack["created"]) == in_moto(Scenario.of(load(TEMPLATE), **parameters))
    assert {"AccountQueue", "AccountDeadLetterQueue", "AccountQueueTrigger"} <= set(stack["created"])

    lambda_ = moto.client("lambda")
    name = stack["outputs"]["FunctionName"]
    assert lambda_.get_function(FunctionName=name)["Concurrency"]["ReservedConcurrentExecutions"] == 5
    environment = lambda_strings(lambda_.get_function_configuration(FunctionName=name)["Environment"]["Variables"])
    assert environment["KEYREPORT_QUEUE_URL"] == stack["outputs"]["AccountQueueUrl"]
    settings = Settings.from_env(environment)
    assert settings.organization is not None
    assert (settings.mode, settings.organization.member_role_name, settings.azure.auth.name) == (
        "organization",
        "keyreport-member",
        "federated",
    )

    sqs = moto.client("sqs")
    queue = sqs.get_queue_attributes(QueueUrl=stack["outputs"]["AccountQueueUrl"], AttributeNames=["All"])["Attributes"]
    mappings = lambda_.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]
    assert len(mappings) == 2  # the account queue's and the IAM event queue's
    (mapping,) = [m for m in mappings if m["EventSourceArn"] == queue["QueueArn"]]
    assert mapping["BatchSize"] == 1
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert json.loads(queue["RedrivePolicy"])["maxReceiveCount"] == 3

    grants = role_grants(moto, "keyreport-org-collector")
    assert set(grants) == {"inventory", "delivery", "azure-federated", "organization-fan-out", "iam-events"}
    assert actions(grants) == ALWAYS | FOR_MODE["federated"] | FOR_ORGANIZATION | FOR_EVENTS


def test_the_member_role_deploys_with_its_trust_conditions(moto: Moto) -> None:
    collector = "arn:aws:iam::111122223333:role/keyreport-collector"
    parameters = {"CollectorRoleArn": collector, "OrganizationId": "o-a1b2c3d4e5", "ExternalId": "0123456789abcdef0123"}
    stack = deploy(moto, "keyreport-member", parameters, MEMBER_ROLE.read_text())
    iam = moto.client("iam")
    role = iam.get_role(RoleName="keyreport-member")["Role"]
    assert stack["outputs"]["RoleArn"] == role["Arn"]
    (trust,) = policy_document(role["AssumeRolePolicyDocument"])["Statement"]
    assert trust["Principal"] == {"AWS": "arn:aws:iam::111122223333:root"}
    assert trust["Condition"] == {
        "ArnEquals": {"aws:PrincipalArn": collector},
        "StringEquals": {"sts:ExternalId": "0123456789abcdef0123", "aws:PrincipalOrgID": "o-a1b2c3d4e5"},
    }
    grants = role_grants(moto, "keyreport-member")
    assert actions(grants) == {a for a in ALWAYS if a.startswith("iam:")}


def rule_of(moto: Moto, prefix: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    events = moto.client("events")
    (rule,) = [r for r in events.list_rules()["Rules"] if r["Name"].startswith(prefix)]
    return rule, events.list_targets_by_rule(Rule=rule["Name"])["Targets"]


def test_the_event_path_deploys_a_rule_queue_and_trigger_and_the_forwarders_send_to_its_bus(moto: Moto) -> None:
    parameters = {
        **upload_package(moto),
        **{k: sample()[k] for k in ("DceEndpoint", "DcrImmutableId")},
        **{k: sample()[k] for k in ("AzureTenantId", "AzureClientId")},
        "AzureAuth": "federated",
        "IamEvents": "enabled",
    }
    stack = deploy(moto, "keyreport-events", parameters)
    name = stack["outputs"]["FunctionName"]
    lambda_ = moto.client("lambda")
    assert lambda_.get_function(FunctionName=name)["Concurrency"]["ReservedConcurrentExecutions"] == 3
    assert {"IamEventRule", "IamEventQueue", "IamEventTrigger"} <= set(stack["created"])
    rule, (target,) = rule_of(moto, "keyreport-events-IamEventRule")
    pattern = json.loads(rule["EventPattern"])
    assert (pattern["source"], pattern["detail-type"]) == (["aws.iam"], ["AWS API Call via CloudTrail"])
    assert set(pattern["detail"]["eventName"]) == EVENT_NAMES  # the rule sends exactly what the code reads
    sqs = moto.client("sqs")
    queue_url = stack["created"]["IamEventQueue"]["PhysicalResourceId"]
    queue = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert target["Arn"] == queue["QueueArn"]
    assert queue["SqsManagedSseEnabled"] == "true" and int(queue["VisibilityTimeout"]) > 900

    (mapping,) = lambda_.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]
    assert (mapping["EventSourceArn"], mapping["BatchSize"]) == (queue["QueueArn"], 1000)
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    environment = lambda_strings(lambda_.get_function_configuration(FunctionName=name)["Environment"]["Variables"])
    assert Settings.from_env(environment).event_queue_url == queue_url
    grants = role_grants(moto, stack["outputs"]["FunctionRoleArn"].rsplit("/", 1)[1])
    (reads,) = [s for s in grants["iam-events"] if "sqs:ReceiveMessage" in as_list(s["Action"])]
    assert reads["Resource"] == queue["QueueArn"]

    bus = f"arn:aws:events:eu-west-1:{moto.client('sts').get_caller_identity()['Account']}:event-bus/default"
    deploy(moto, "keyreport-forwarder", {"CollectorEventBusArn": bus}, FORWARDER.read_text())
    rule, (target,) = rule_of(moto, "keyreport-forwarder-IamEventForwardRule")
    assert json.loads(rule["EventPattern"]) == pattern
    assert target["Arn"] == bus
    role = target["RoleArn"].rsplit("/", 1)[1]
    assert [s["Resource"] for s in role_grants(moto, role)["put-on-the-collectors-bus"]] == [bus]

    member = {
        "CollectorRoleArn": "arn:aws:iam::111122223333:role/keyreport-collector",
        "OrganizationId": "o-a1b2c3d4e5",
        "ExternalId": "0123456789abcdef0123",
        "CollectorEventBusArn": "arn:aws:events:eu-west-1:111122223333:event-bus/default",
    }
    deploy(moto, "keyreport-member", member, MEMBER_ROLE.read_text())
    rule, (target,) = rule_of(moto, "keyreport-member-IamEventForwardRule")
    assert json.loads(rule["EventPattern"]) == pattern and target["Arn"] == member["CollectorEventBusArn"]
