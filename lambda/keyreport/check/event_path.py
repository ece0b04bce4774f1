"""The event path's hops: a trail logging management events where IAM's events arrive (us-east-1), the rule
that sends them to the event queue (and, for a stack elsewhere, the us-east-1 rule forwarding them), the
queue's policy admitting that rule, and the trigger that lets the queue invoke the function."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from keyreport.check.explain import aws_failure
from keyreport.errors import HopFailed

if TYPE_CHECKING:
    from collections.abc import Callable

    from keyreport.aws.clients import AwsClients

IAM_EVENTS_REGION = "us-east-1"
ACTIVE_MAPPING = {"Enabled", "Enabling", "Creating", "Updating"}


class EventPathHops:
    def __init__(self, aws: AwsClients, queue_url: str) -> None:
        self.aws = aws
        self.queue_url = queue_url
        self.queue_arn = ""
        self.rules: list[str] = []

    def hops(self) -> list[tuple[str, Callable[[], str]]]:
        return [
            ("cloudtrail: management events in us-east-1", self.trail),
            ("iam events rule", self.rule),
            ("iam event queue trigger", self.trigger),
        ]

    def _call(self, action: str, call: Callable[[], Any], resource: str = "*") -> Any:
        try:
            return call()
        except (ClientError, BotoCoreError) as error:
            raise aws_failure(error, action, resource) from None

    def trail(self) -> str:
        cloudtrail = self.aws.in_region("cloudtrail", IAM_EVENTS_REGION)
        trails = self._call("cloudtrail:DescribeTrails", lambda: cloudtrail.describe_trails(includeShadowTrails=True))
        seen = []
        for trail in trails.get("trailList", []):
            if trail.get("IsMultiRegionTrail") or trail.get("HomeRegion") == IAM_EVENTS_REGION:
                seen.append(trail.get("Name", trail["TrailARN"]))
                if self._logs_write_management_events(cloudtrail, trail["TrailARN"]):
                    kind = "organization trail" if trail.get("IsOrganizationTrail") else "trail"
                    return f"{kind} {seen[-1]} logs management events that reach us-east-1"
        raise HopFailed(
            f"no logging trail records write management events in us-east-1 (trails seen: {', '.join(seen) or 'none'})",
            "without such a trail EventBridge receives no 'AWS API Call via CloudTrail' events: IAM changes reach "
            "the workspace only at the next scheduled run",
            "create a multi-region trail that logs management events (read/write: All or WriteOnly), e.g. an "
            "organization trail; docs/deployment.md, 'The event path'",
        )

    def _logs_write_management_events(self, cloudtrail: Any, arn: str) -> bool:
        status = self._call("cloudtrail:GetTrailStatus", lambda: cloudtrail.get_trail_status(Name=arn), arn)
        selectors = self._call(
            "cloudtrail:GetEventSelectors", lambda: cloudtrail.get_event_selectors(TrailName=arn), arn
        )
        return bool(status.get("IsLogging")) and logs_write_management_events(selectors)

    def rule(self) -> str:
        attributes = self._call(
            "sqs:GetQueueAttributes",
            lambda: self.aws.client("sqs").get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["QueueArn", "Policy"]
            ),
        )["Attributes"]
        self.queue_arn = attributes["QueueArn"]
        region = self.queue_arn.split(":")[3]
        events = self.aws.client("events")
        self.rules = self._iam_rules(events, self.queue_arn)
        if not self.rules:
            raise HopFailed(
                f"no enabled rule for IAM's CloudTrail events targets {self.queue_arn}",
                "the stack was deployed with IamEvents=disabled, or the rule was disabled or changed",
                "deploy the stack with IamEvents=enabled (its IamEventRule)",
            )
        admitted = [arn for arn in self.rules if admits(attributes.get("Policy"), arn)]
        if not admitted:
            raise HopFailed(
                f"the queue's policy does not let {self.rules[0]} send messages",
                "EventBridge drops what the queue refuses: no event reaches the function",
                "restore the stack's IamEventQueuePolicy (events.amazonaws.com may sqs:SendMessage for the rule)",
            )
        if region == IAM_EVENTS_REGION:
            return f"{admitted[0]} sends IAM's events to the queue"
        bus = f"arn:{self.queue_arn.split(':')[1]}:events:{region}:{self.queue_arn.split(':')[4]}:event-bus/default"
        forwarders = self._iam_rules(self.aws.in_region("events", IAM_EVENTS_REGION), bus)
        if not forwarders:
            raise HopFailed(
                f"{admitted[0]} is in {region}, but no rule in us-east-1 forwards IAM's events to {bus}",
                "IAM's events arrive in us-east-1 only",
                "deploy cloudformation/iam-events-forwarder.yaml in us-east-1 with CollectorEventBusArn=" + bus,
            )
        return f"{forwarders[0]} (us-east-1) forwards IAM's events to {region}, where {admitted[0]} queues them"

    def _iam_rules(self, events: Any, target: str) -> list[str]:
        """The enabled rules matching IAM's CloudTrail events that target `target`, by ARN."""
        names = self._call(
            "events:ListRuleNamesByTarget", lambda: events.list_rule_names_by_target(TargetArn=target)
        ).get("RuleNames", [])
        rules = [self._described(events, name) for name in names]
        return [rule["Arn"] for rule in rules if rule.get("State") == "ENABLED" and matches_iam_events(rule)]

    def _described(self, events: Any, name: str) -> Any:
        return self._call("events:DescribeRule", lambda: events.describe_rule(Name=name))

    def trigger(self) -> str:
        if not self.queue_arn:
            raise HopFailed("not tried: the queue was not found", "the rule hop failed", "fix the hop above first")
        mappings = self._call(
            "lambda:ListEventSourceMappings",
            lambda: self.aws.client("lambda").list_event_source_mappings(EventSourceArn=self.queue_arn),
        ).get("EventSourceMappings", [])
        active = [m for m in mappings if m.get("State") in ACTIVE_MAPPING]
        if not active:
            raise HopFailed(
                f"no enabled event source mapping reads {self.queue_arn}",
                "the queue fills, but nothing invokes the function: events expire after an hour",
                "enable the stack's IamEventTrigger (aws lambda update-event-source-mapping --enabled)",
            )
        function = active[0].get("FunctionArn", "the function")
        return f"{self.queue_arn.split(':')[-1]} invokes {function} ({active[0].get('State')})"


def matches_iam_events(rule: dict[str, Any]) -> bool:
    return "aws.iam" in json.loads(rule.get("EventPattern") or "{}").get("source", [])


def logs_write_management_events(selectors: dict[str, Any]) -> bool:
    """Whether a trail's (basic or advanced) event selectors include write management events."""
    for selector in selectors.get("EventSelectors") or []:
        if selector.get("IncludeManagementEvents", True) and selector.get("ReadWriteType", "All") != "ReadOnly":
            return True
    for selector in selectors.get("AdvancedEventSelectors") or []:
        fields = {f.get("Field"): f for f in selector.get("FieldSelectors", [])}
        category = fields.get("eventCategory", {}).get("Equals", [])
        read_only = fields.get("readOnly", {}).get("Equals", [])
        if "Management" in category and read_only != ["true"]:
            return True
    return False


def admits(policy: str | None, rule_arn: str) -> bool:
    """Whether a queue policy lets EventBridge send messages for the rule `rule_arn`."""
    for statement in json.loads(policy or "{}").get("Statement", []):
        principal = statement.get("Principal", {})
        service = principal.get("Service") if isinstance(principal, dict) else None
        services = [service] if isinstance(service, str) else service or []
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if statement.get("Effect") != "Allow" or "events.amazonaws.com" not in services:
            continue
        if not {"sqs:SendMessage", "sqs:*"} & set(actions):
            continue
        sources = [
            value
            for condition in statement.get("Condition", {}).values()
            for key, value in condition.items()
            if key.lower() == "aws:sourcearn"
        ]
        if not sources or rule_arn in sources or [rule_arn] in sources:
            return True
    return False
