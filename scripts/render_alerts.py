"""Renders the alert rules: azure/alerts.json (Azure Monitor log search alerts) and queries/alerts/*.yaml (Sentinel).

Every rule's query is a library query's text (queries/*.kql), verbatim. When the query's header names checks of
the compliance map (queries/compliance.json), the rule's severity, benchmark ids, remediation and MITRE ATT&CK
tactics and techniques are the map's. `make render` writes the files;
tests/queries/test_dashboards.py fails when a checked-in file differs from what this renders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from keyreport import queries
from scripts import arm

ALERTS_TEMPLATE_PATH = arm.ROOT / "azure" / "alerts.json"
SENTINEL_DIR = arm.ROOT / "queries" / "alerts"

ALERT_API = "2023-03-15-preview"
# A query header's severity as Azure Monitor (0 critical .. 4 verbose) and Sentinel (no Critical) write it.
MONITOR_SEVERITY = {"Critical": 0, "High": 1, "Medium": 2, "Low": 3, "Informational": 4}
SENTINEL_SEVERITY = {level: "High" if level == "Critical" else level for level in MONITOR_SEVERITY}


@dataclass(frozen=True)
class Alert:
    """One rule, rendered both as an Azure Monitor log search alert and as a Sentinel analytics rule."""

    query: str  # library id; one alert per result row (split by Account)
    name: str
    display_name: str
    description: str
    sentinel_id: str  # stable GUID: Sentinel tracks a template by it
    custom_details: dict[str, str]  # Sentinel custom detail -> result column
    # For a query whose header names no check (ingestion health); else the compliance map's.
    severity: str | None = None
    own_tactics: tuple[str, ...] = ()
    own_techniques: tuple[str, ...] = ()
    evaluation_frequency: str = "PT1H"
    window_size: str = "P1D"
    query_time_range: str = "P7D"  # the current-state functions keep a snapshot this old, marked Stale
    sentinel_period: str = "7d"
    auto_mitigate: bool = True

    def level(self) -> str:
        """The rule's severity: the query header's, or the rule's own when the header names none."""
        level = queries.library()[self.query].severity or self.severity
        if level is None:
            raise ValueError(f"alert {self.name}: neither the query header nor the rule names a severity")
        return level

    def tactics(self) -> tuple[str, ...]:
        """MITRE ATT&CK tactics: the map's for the query's checks, else the rule's own."""
        checks = queries.library()[self.query].checks
        return _merged([check.mitre.tactics for check in checks]) if checks else self.own_tactics

    def techniques(self) -> tuple[str, ...]:
        checks = queries.library()[self.query].checks
        return _merged([check.mitre.techniques for check in checks]) if checks else self.own_techniques

    def full_description(self) -> str:
        """The description, then the controls the query evidences and what to do, from the query's header."""
        query = queries.library()[self.query]
        if not query.controls:
            return self.description
        return f"{self.description} Controls: {', '.join(query.controls)}. Remediation: {query.remediation}"


def _merged(groups: list[tuple[str, ...]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(item for group in groups for item in group))


ALERTS: tuple[Alert, ...] = (
    Alert(
        query="root-keys",
        name="root-access-key",
        display_name="keyreport: AWS root user has an access key",
        description="An AWS account's root user holds an access key (active or not). The root user should have "
        "none: delete it in the account's security credentials. One alert per account.",
        sentinel_id="54821cee-ea45-44f9-88fd-12d75959475c",
        custom_details={"AwsAccount": "Account", "AccessKey": "AccessKey", "KeyStatus": "Status"},
    ),
    Alert(
        query="rotation-due",
        name="keys-past-90-days",
        display_name="keyreport: active AWS access keys older than 90 days",
        description="Active IAM access keys were created more than 90 days ago and need rotating. One alert per "
        "account; the rotation-due query lists the keys.",
        sentinel_id="81b0e9ed-8f2b-43df-9bad-caf6d20a25df",
        custom_details={"AwsAccount": "Account", "IamUser": "User", "AccessKey": "AccessKey", "AgeDays": "AgeDays"},
        evaluation_frequency="P1D",
    ),
    Alert(
        query="console-without-mfa",
        name="console-user-without-mfa",
        display_name="keyreport: AWS console users without MFA",
        description="IAM users can sign in to the AWS console with a password alone: no MFA device is assigned "
        "to them (from the credential report). One alert per account; the console-without-mfa query lists the "
        "users, those without any access key included.",
        sentinel_id="c38aed6a-94f8-4cc7-b2b4-2db93aa38458",
        custom_details={"AwsAccount": "Account", "IamUser": "User", "InactiveDays": "InactiveDays"},
        evaluation_frequency="P1D",
    ),
    Alert(
        query="ingestion-stopped",
        name="collector-stopped",
        display_name="keyreport: an AWS account stopped reporting access keys",
        description="An account that reported key inventories has not reported for 26 hours: the collector Lambda "
        "is not running, failing before it ships, or lost access to the account. Stays fired until closed, since "
        "an account silent for longer than the query range drops out of the result.",
        sentinel_id="3a816c06-6c7d-4ddc-bf58-a5ba3d594237",
        own_tactics=("DefenseEvasion",),
        own_techniques=("T1562.008",),
        custom_details={"AwsAccount": "Account", "LastRun": "LastRun", "HoursSilent": "HoursSilent"},
        severity="Medium",
        query_time_range="P14D",
        sentinel_period="14d",
        auto_mitigate=False,
    ),
)


def _alert_resource(alert: Alert, query: queries.Query) -> dict[str, Any]:
    """One log search alert: fires per Account with at least one result row."""
    return {
        "type": "Microsoft.Insights/scheduledQueryRules",
        "apiVersion": ALERT_API,
        "name": f"[format('{{0}}-{alert.name}', parameters('namePrefix'))]",
        "location": "[parameters('location')]",
        "kind": "LogAlert",
        "properties": {
            "displayName": alert.display_name,
            "description": alert.full_description(),
            "severity": MONITOR_SEVERITY[alert.level()],
            "enabled": "[parameters('enabled')]",
            "scopes": ["[parameters('workspaceResourceId')]"],
            "evaluationFrequency": alert.evaluation_frequency,
            "windowSize": alert.window_size,
            "overrideQueryTimeRange": alert.query_time_range,
            "criteria": {
                "allOf": [
                    {
                        "query": query.text,
                        "timeAggregation": "Count",
                        "operator": "GreaterThan",
                        "threshold": 0,
                        "dimensions": [{"name": "Account", "operator": "Include", "values": ["*"]}],
                        "failingPeriods": {"numberOfEvaluationPeriods": 1, "minFailingPeriodsToAlert": 1},
                    }
                ]
            },
            "autoMitigate": alert.auto_mitigate,
            "actions": {"actionGroups": "[parameters('actionGroupIds')]"},
        },
    }


def alerts_template() -> dict[str, Any]:
    """Every rule as a scheduledQueryRules resource on the workspace, notifying the given action groups."""
    library = queries.library()
    return arm.template(
        "keyreport's log search alert rules on the Log Analytics workspace: a root user key, active keys past "
        "90 days, console users without MFA, an account that stopped reporting.",
        __file__,
        parameters={
            "workspaceResourceId": arm.workspace_parameter(),
            "location": arm.location_parameter("The workspace's region."),
            "namePrefix": arm.parameter("string", default="keyreport"),
            "enabled": arm.parameter("bool", default=True),
            "actionGroupIds": arm.parameter(
                "array", "Resource ids of the action groups to notify (email, Teams, ticket).", default=[]
            ),
        },
        resources=[_alert_resource(alert, library[alert.query]) for alert in ALERTS],
    )


def sentinel_rule(alert: Alert) -> dict[str, Any]:
    """The rule as Sentinel's scheduled analytics rule template fields."""
    query = queries.library()[alert.query]
    return {
        "id": alert.sentinel_id,
        "name": alert.display_name,
        "description": alert.full_description(),
        "severity": SENTINEL_SEVERITY[alert.level()],
        "status": "Available",
        "requiredDataConnectors": [],
        "queryFrequency": _sentinel_span(alert.evaluation_frequency),
        "queryPeriod": alert.sentinel_period,
        "triggerOperator": "gt",
        "triggerThreshold": 0,
        "tactics": list(alert.tactics()),
        "relevantTechniques": list(alert.techniques()),
        "query": query.text,
        "customDetails": alert.custom_details,
        "eventGroupingSettings": {"aggregationKind": "AlertPerResult"},
        "version": "1.0.0",
        "kind": "Scheduled",
    }


def _sentinel_span(iso: str) -> str:
    """PT1H -> 1h, P1D -> 1d: Sentinel's templates write durations that way."""
    duration = queries.parse_duration(iso)
    hours = int(duration.total_seconds()) // 3600
    return f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"


class _LiteralDumper(yaml.SafeDumper):
    """Multi-line strings (the query, descriptions) as `|` blocks, as Sentinel's own templates read."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_LiteralDumper.add_representer(str, _string)


def sentinel_text(alert: Alert) -> str:
    """The rule as a Sentinel analytics rule template, under a comment that says how to import it."""
    header = (
        "# Microsoft Sentinel scheduled analytics rule (import: Analytics > Import, or the Sentinel repositories "
        f"feature).\n# {arm.generated_by(__file__)}\n"
    )
    return header + yaml.dump(sentinel_rule(alert), Dumper=_LiteralDumper, sort_keys=False, width=1000)


def rendered() -> dict[Path, str]:
    """The files this module generates, and their content."""
    files = {ALERTS_TEMPLATE_PATH: arm.json_text(alerts_template())}
    files.update({SENTINEL_DIR / f"{alert.name}.yaml": sentinel_text(alert) for alert in ALERTS})
    return files
