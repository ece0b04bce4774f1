"""Renders the alert rules: azure/alerts.json (Azure Monitor log search alerts). The Sentinel rules are the
solution's (scripts/render_sentinel.py, azure/sentinel/Analytic Rules/).

Every rule's query is a library query's text (queries/*.kql), verbatim. When the query's header names checks of
the compliance map (queries/compliance.json), the rule's severity, benchmark ids and remediation are the map's.
`make render` writes the file; tests/queries/test_dashboards.py fails when it differs from what this renders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keyreport import queries
from scripts import arm

ALERTS_TEMPLATE_PATH = arm.ROOT / "azure" / "alerts.json"

ALERT_API = "2023-03-15-preview"
# A query header's severity as Azure Monitor writes it (0 critical .. 4 verbose).
MONITOR_SEVERITY = {"Critical": 0, "High": 1, "Medium": 2, "Low": 3, "Informational": 4}


@dataclass(frozen=True)
class Alert:
    """One Azure Monitor log search alert rule."""

    query: str  # library id; one alert per result row (split by Account)
    name: str
    display_name: str
    description: str
    # For a query whose header names no check (ingestion health); else the compliance map's.
    severity: str | None = None
    evaluation_frequency: str = "PT1H"
    window_size: str = "P1D"
    query_time_range: str = "P7D"  # the current-state functions keep a snapshot this old, marked Stale
    auto_mitigate: bool = True

    def level(self) -> str:
        """The rule's severity: the query header's, or the rule's own when the header names none."""
        level = queries.library()[self.query].severity or self.severity
        if level is None:
            raise ValueError(f"alert {self.name}: neither the query header nor the rule names a severity")
        return level

    def full_description(self) -> str:
        """The description, then the controls the query evidences and what to do, from the query's header."""
        query = queries.library()[self.query]
        if not query.controls:
            return self.description
        return f"{self.description} Controls: {', '.join(query.controls)}. Remediation: {query.remediation}"


ALERTS: tuple[Alert, ...] = (
    Alert(
        query="root-keys",
        name="root-access-key",
        display_name="keyreport: AWS root user has an access key",
        description="An AWS account's root user holds an access key (active or not). The root user should have "
        "none: delete it in the account's security credentials. One alert per account.",
    ),
    Alert(
        query="rotation-due",
        name="keys-past-90-days",
        display_name="keyreport: active AWS access keys older than 90 days",
        description="Active IAM access keys were created more than 90 days ago and need rotating. One alert per "
        "account; the rotation-due query lists the keys.",
        evaluation_frequency="P1D",
    ),
    Alert(
        query="console-without-mfa",
        name="console-user-without-mfa",
        display_name="keyreport: AWS console users without MFA",
        description="IAM users can sign in to the AWS console with a password alone: no MFA device is assigned "
        "to them (from the credential report). One alert per account; the console-without-mfa query lists the "
        "users, those without any access key included.",
        evaluation_frequency="P1D",
    ),
    Alert(
        query="ingestion-stopped",
        name="collector-stopped",
        display_name="keyreport: an AWS account stopped reporting access keys",
        description="An account that reported key inventories has not reported for 26 hours: the collector Lambda "
        "is not running, failing before it ships, or lost access to the account. Stays fired until closed, since "
        "an account silent for longer than the query range drops out of the result.",
        severity="Medium",
        query_time_range="P14D",
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


def rendered() -> dict[Path, str]:
    """The files this module generates, and their content."""
    return {ALERTS_TEMPLATE_PATH: arm.json_text(alerts_template())}
