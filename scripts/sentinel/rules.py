"""The analytics rules and hunting queries: library queries (queries/*.kql) with the compliance map's severity,
tactics and techniques, as Azure-Sentinel's YAML templates (and as ARM properties for Package/mainTemplate.json).

One rule per check of the compliance map that the workspace functions judge and whose severity is above
Informational, all reading the library query `failing-by-account` (one row per account and failing check, from
KeyReport_Findings) narrowed to their check: one alert per AWS account, the account and one IAM user as
entities, incidents grouped by account. Informational checks and the CloudTrail join are hunting queries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from keyreport import queries
from scripts import schema
from scripts.sentinel import controls, solution

PER_ACCOUNT_QUERY = "failing-by-account"
CLOUDTRAIL_QUERY = "key-use-cloudtrail"
STOPPED_QUERY = "ingestion-stopped"
QUERY_PERIOD = "14d"  # Sentinel's longest; the state functions see each account's latest complete run in it
# How often a rule runs: a High finding within the hour after the run that found it arrives, others daily.
FREQUENCY = {"High": "1h", "Medium": "1d", "Low": "1d", "Informational": "1d"}
INCIDENT_LOOKBACK = "P7D"  # repeated alerts of one account join its open incident for a week (the most allowed)

AWS_ACCOUNT_ENTITY: dict[str, Any] = {
    "entityType": "Account",
    "fieldMappings": [
        {"identifier": "Name", "columnName": "Account"},
        {"identifier": "CloudAppAccountId", "columnName": "AccountArn"},
    ],
}
IAM_USER_ENTITY: dict[str, Any] = {
    "entityType": "Account",
    "fieldMappings": [
        {"identifier": "Name", "columnName": "UserName"},
        {"identifier": "CloudAppAccountId", "columnName": "UserArn"},
    ],
}


@dataclass(frozen=True)
class Content:
    """One analytics rule or hunting query: a library query, optionally narrowed by one `where` line."""

    name: str  # the file's stem
    query: str  # library id
    display_name: str
    description: str
    severity: str
    tactics: tuple[str, ...]
    techniques: tuple[str, ...]
    narrowed_by: str | None = None  # e.g. 'ControlId == "root-access-key"'
    tags: tuple[str, ...] = ()
    entities: tuple[dict[str, Any], ...] = ()
    custom_details: dict[str, str] = field(default_factory=dict)
    alert_name: str | None = None
    alert_description: str | None = None
    frequency: str = "1d"

    @property
    def id(self) -> str:
        return solution.stable_id(f"{self.__class__.__name__}:{self.name}")

    def text(self) -> str:
        """The library query verbatim, then the narrowing `where`."""
        text = queries.library()[self.query].text
        return text if self.narrowed_by is None else f"{text}| where {self.narrowed_by}\n"

    def tables(self) -> list[str]:
        """The data types the query reads, directly or through the workspace functions it calls."""
        bodies = [self.text()] + [queries.functions()[name].text for name in queries.calls(self.text())]
        known = (*solution.TABLES, *schema.external_tables())
        return [table for table in known if any(re.search(rf"\b{table}\b", body) for body in bodies)]

    def required_data_connectors(self) -> list[dict[str, Any]]:
        tables = self.tables()
        ours = [table for table in tables if table in solution.TABLES]
        required = [{"connectorId": solution.CONNECTOR_ID, "dataTypes": ours}] if ours else []
        if solution.CLOUDTRAIL_TABLE in tables:
            required += [
                {"connectorId": connector, "dataTypes": [solution.CLOUDTRAIL_TABLE]}
                for connector in solution.CLOUDTRAIL_CONNECTORS
            ]
        return required


def _control_rule(control: controls.Control) -> Content:
    benchmarks = control.text
    return Content(
        name=control.id,
        query=PER_ACCOUNT_QUERY,
        narrowed_by=f'ControlId == "{control.id}"',
        display_name=f"keyreport: AWS account fails '{control.title}'",
        description=(
            f"Fails when an AWS account's latest complete keyreport inventory breaks this check ({benchmarks}): "
            f"{control.title}. One alert per account, naming the IAM users and the masked key ids involved; "
            f"repeated alerts of one account join its open incident. Remediation: {control.remediation}"
        ),
        severity=control.severity,
        tactics=control.mitre.tactics,
        techniques=control.mitre.techniques,
        tags=control.labelled,
        entities=(AWS_ACCOUNT_ENTITY, IAM_USER_ENTITY),
        custom_details={
            "AwsAccount": "Account",
            "IamUsers": "Users",
            "Credentials": "Credentials",
            "FailingCount": "FailingResources",
            "Benchmarks": "Control",
            "SnapshotTime": "AsOf",
            "StaleSnapshot": "Stale",
        },
        alert_name=f"AWS account {{{{Account}}}} fails '{control.title}'",
        alert_description=(
            f"{{{{FailingResources}}}} finding(s) of '{control.title}' ({benchmarks}) in AWS account "
            f"{{{{Account}}}}; IAM users: {{{{Users}}}}. {control.remediation}"
        ),
        frequency=FREQUENCY[control.severity],
    )


COLLECTOR_STOPPED = Content(
    name="collector-stopped",
    query=STOPPED_QUERY,
    display_name="keyreport: an AWS account stopped reporting access keys",
    description=(
        "An account that reported key inventories has not reported for 26 hours: the collector Lambda is not "
        "running, fails before it ships, or lost access to the account; its compliance alerts are then based on an "
        "old inventory. One alert per account. An account silent for longer than the 14-day query period drops "
        "out of the result: close its incident only once it reports again."
    ),
    severity="Medium",
    tactics=("DefenseEvasion",),
    techniques=("T1562.008",),
    entities=({"entityType": "Account", "fieldMappings": [{"identifier": "Name", "columnName": "Account"}]},),
    custom_details={"AwsAccount": "Account", "LastRun": "LastRun", "HoursSilent": "HoursSilent"},
    alert_name="AWS account {{Account}} stopped reporting access keys",
    alert_description="No keyreport run from AWS account {{Account}} for {{HoursSilent}} hours (last: {{LastRun}}).",
    frequency="1h",
)

KEY_USE = Content(
    name="key-use-cloudtrail",
    query=CLOUDTRAIL_QUERY,
    display_name="keyreport: where each AWS access key is used from (CloudTrail, 14 days)",
    description=(
        "Each current IAM access key joined to its AWSCloudTrail calls of the last 14 days by account, user and "
        "masked key id: source IPs, user agents, regions, services, failed calls, and calls after a complete "
        "inventory first saw the key inactive. Start here for an old or unused key: who still uses it, from where."
    ),
    severity="Medium",
    tactics=("InitialAccess", "Persistence"),
    techniques=("T1078.004",),
    entities=({"entityType": "Account", "fieldMappings": [{"identifier": "Name", "columnName": "User"}]},),
)


def analytic_rules() -> tuple[Content, ...]:
    """Every analytics rule: one per control above Informational, then the collector-stopped rule."""
    per_control = tuple(_control_rule(c) for c in controls.judged().values() if c.severity != "Informational")
    return (*per_control, COLLECTOR_STOPPED)


def hunting_queries() -> tuple[Content, ...]:
    """The CloudTrail join, then one per Informational control."""
    informational = tuple(_control_rule(c) for c in controls.judged().values() if c.severity == "Informational")
    return (KEY_USE, *informational)


def rule_template(rule: Content) -> dict[str, Any]:
    """The rule as Azure-Sentinel's scheduled analytics rule template (Analytic Rules/*.yaml)."""
    template: dict[str, Any] = {
        "id": rule.id,
        "name": rule.display_name,
        "description": rule.description,
        "severity": rule.severity,
        "status": "Available",
        "requiredDataConnectors": rule.required_data_connectors(),
        "queryFrequency": rule.frequency,
        "queryPeriod": QUERY_PERIOD,
        "triggerOperator": "gt",
        "triggerThreshold": 0,
        "tactics": list(rule.tactics),
        "relevantTechniques": list(rule.techniques),
    }
    if rule.tags:
        template["tags"] = list(rule.tags)
    template["query"] = rule.text()
    template["entityMappings"] = list(rule.entities)
    template["customDetails"] = rule.custom_details
    if rule.alert_name and rule.alert_description:
        template["alertDetailsOverride"] = {
            "alertDisplayNameFormat": rule.alert_name,
            "alertDescriptionFormat": rule.alert_description,
        }
    template["eventGroupingSettings"] = {"aggregationKind": "AlertPerResult"}
    template["incidentConfiguration"] = {
        "createIncident": True,
        "groupingConfiguration": {
            "enabled": True,
            "reopenClosedIncident": False,
            "lookbackDuration": INCIDENT_LOOKBACK,
            "matchingMethod": "Selected",
            "groupByEntities": [],
            "groupByAlertDetails": [],
            "groupByCustomDetails": ["AwsAccount"],
        },
    }
    template["version"] = solution.VERSION
    template["kind"] = "Scheduled"
    return template


def hunting_template(hunt: Content) -> dict[str, Any]:
    """The query as Azure-Sentinel's hunting query (Hunting Queries/*.yaml)."""
    template: dict[str, Any] = {
        "id": hunt.id,
        "name": hunt.display_name,
        "description": hunt.description,
        "requiredDataConnectors": hunt.required_data_connectors(),
        "tactics": list(hunt.tactics),
        "relevantTechniques": list(hunt.techniques),
        "query": hunt.text(),
    }
    if hunt.entities:
        template["entityMappings"] = list(hunt.entities)
    template["version"] = solution.VERSION
    return template


def span_seconds(span: str) -> int:
    """`1h`, `14d`, `30m` -> seconds (the template's duration form)."""
    match = re.fullmatch(r"(\d+)([mhd])", span)
    if not match:
        raise ValueError(f"{span!r} is not <number><m|h|d>")
    return int(match.group(1)) * {"m": 60, "h": 3600, "d": 86_400}[match.group(2)]


def iso_duration(span: str) -> str:
    """`1h` -> PT1H, `14d` -> P14D: the ARM form of a template duration."""
    seconds = span_seconds(span)
    if seconds % 86_400 == 0:
        return f"P{seconds // 86_400}D"
    if seconds % 3600 == 0:
        return f"PT{seconds // 3600}H"
    return f"PT{seconds // 60}M"
