"""CloudTrail IAM events as EventBridge delivers them (rule target) and as an SQS target receives them.

The shapes follow AWS's published "AWS API Call via CloudTrail" events: the EventBridge envelope (version,
id, detail-type, source, account, time, region, resources, detail) around the CloudTrail record (eventVersion,
userIdentity, eventTime, eventSource, eventName, awsRegion, requestParameters, responseElements, requestID,
eventID, readOnly, eventType, managementEvent, recipientAccountId, eventCategory). IAM's events come from
us-east-1. Nothing secret is in them: the key id a real CreateAccessKey response names is left out here too.
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from datetime import UTC, datetime
from typing import Any

ADMIN = "sandbox-admin"


def iam_event(
    event_name: str,
    account_id: str,
    user_name: str | None,
    *,
    caller: str = ADMIN,
    caller_type: str = "IAMUser",
    at: datetime | None = None,
    error_code: str | None = None,
    extra_parameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One IAM call's event; `user_name` None makes it a self-service call (no userName parameter)."""
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    identity: dict[str, Any] = {
        "type": caller_type,
        "principalId": "AIDAEXAMPLEPRINCIPAL",
        "arn": f"arn:aws:iam::{account_id}:user/{caller}"
        if caller_type == "IAMUser"
        else f"arn:aws:iam::{account_id}:root",
        "accountId": account_id,
        "accessKeyId": "ASIAEXAMPLESESSION01",
    }
    if caller_type == "IAMUser":
        identity["userName"] = caller
    parameters = ({"userName": user_name} if user_name is not None else {}) | (extra_parameters or {})
    detail: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": stamp,
        "eventSource": "iam.amazonaws.com",
        "eventName": event_name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "192.0.2.10",
        "userAgent": "aws-cli/2.17.0",
        "requestParameters": parameters or None,
        "responseElements": None,
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account_id,
        "eventCategory": "Management",
    }
    if error_code is not None:
        detail["errorCode"] = error_code
        detail["errorMessage"] = "sandbox: the call failed"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.iam",
        "account": account_id,
        "time": stamp,
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def sqs_batch(events: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """An SQS event source mapping's batch: one record per message, each body the EventBridge event."""
    region = queue_arn.split(":")[3]
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": f"sandbox-{index}",
                "body": json.dumps(event),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for index, event in enumerate(events)
        ]
    }


def queue_arn(queue_url: str, region: str = "us-east-1") -> str:
    account, name = queue_url.rstrip("/").split("/")[-2:]
    return f"arn:aws:sqs:{region}:{account}:{name}"


IAM_EVENT_PATTERN = {
    "source": ["aws.iam"],
    "detail-type": ["AWS API Call via CloudTrail"],
    "detail": {"eventSource": ["iam.amazonaws.com"]},
}


def deploy_event_path(
    aws: Any, *, region: str = "us-east-1", trail: bool = True, queue_policy: bool = True, trigger: bool = True
) -> str:
    """What the stack deploys for the event path, in moto (a `sandbox.aws.AwsSandbox`): a logging trail of
    management events (us-east-1), the rule, the queue and its policy, and a trigger to a function (in
    `region`). Returns the queue URL."""
    session = aws.session()
    sqs, events = (
        session.client(name, region_name=region, endpoint_url=aws.endpoint_url) for name in ("sqs", "events")
    )
    url = sqs.create_queue(QueueName="keyreport-iam-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = events.put_rule(Name="keyreport-IamEventRule", EventPattern=json.dumps(IAM_EVENT_PATTERN))["RuleArn"]
    events.put_targets(Rule="keyreport-IamEventRule", Targets=[{"Id": "queue", "Arn": arn}])
    if queue_policy:
        statement = {
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": rule}},
        }
        policy = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
    if trail:
        aws.client("s3").create_bucket(Bucket="keyreport-sandbox-trail")
        cloudtrail = aws.client("cloudtrail")
        cloudtrail.create_trail(Name="management", S3BucketName="keyreport-sandbox-trail", IsMultiRegionTrail=True)
        # AWS gives a new trail this selector (all management events); moto returns none unless it is put.
        selector = {"ReadWriteType": "All", "IncludeManagementEvents": True}
        cloudtrail.put_event_selectors(TrailName="management", EventSelectors=[selector])
        cloudtrail.start_logging(Name="management")
    if trigger:
        lambda_ = session.client("lambda", region_name=region, endpoint_url=aws.endpoint_url)
        function = _sandbox_function(aws, lambda_)
        lambda_.create_event_source_mapping(EventSourceArn=arn, FunctionName=function, BatchSize=1000)
    return str(url)


def _sandbox_function(aws: Any, lambda_: Any) -> str:
    """A function for the trigger to name (moto stores it; nothing here invokes it)."""
    iam = aws.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = iam.create_role(RoleName="keyreport-sandbox-function", AssumeRolePolicyDocument=json.dumps(trust))["Role"][
        "Arn"
    ]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as package:
        package.writestr("keyreport/handler.py", "def lambda_handler(event, context):\n    return {}\n")
    made = lambda_.create_function(
        FunctionName="keyreport",
        Runtime="python3.13",
        Role=role,
        Handler="keyreport.handler.lambda_handler",
        Code={"ZipFile": archive.getvalue()},
    )
    return str(made["FunctionArn"])
