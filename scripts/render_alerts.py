"""Renders the alert rules: azure/alerts.json (Azure Monitor log search alerts). The Sentinel rules are the
solution's (scripts/render_sentinel.py, azure/sentinel/Analytic Rules/).

Every rule's query is a library query's text (queries/*.kql), verbatim. When the query's header names checks of
the compliance map (queries/compliance.json), the rule's severity, benchmark ids and remediation are the map's.
`make render` writes the file; tests/queries/test_dashboards.py fails when it differs from what this renders.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keyreport import queries
from scripts import arm

ALERTS_TEMPLATE_PATH = arm.ROOT / "azure" / "alerts.json"

# The stable API (Azure/azure-rest-api-specs, specification/monitor/resource-manager/Microsoft.Insights/stable/
# 2023-12-01/scheduledQueryRule_API.json); tests/azure/test_resource_schemas.py holds the rules to its models.
ALERT_API = "2023-12-01"
# A log search alert looks back at most two days (windowSize x numberOfEvaluationPeriods, and any
# overrideQueryTimeRange); the rules use all of it, so the current-state functions see two days of runs.
WINDOW = "P2D"
# The rules on compliance checks read it, each narrowed to its check: failing findings without an active exception.
FAILING_BY_ACCOUNT = "failing-by-account"
# A query header's severity as Azure Monitor writes it (0 critical .. 4 verbose).
MONITOR_SEVERITY = {"Critical": 0, "High": 1, "Medium": 2, "Low": 3, "Informational": 4}


@dataclass(frozen=True)
class Alert:
    """One Azure Monitor log search alert rule, stateful (autoMitigate): it stays fired while its condition holds
    and resolves itself at the first evaluation where it no longer does.

    By default the rule counts result rows per `dimension` (one alert per account with at least one row). A rule
    with a `measure` instead compares the sum of that numeric column over the result with `threshold`.
    """

    query: str  # library id
    name: str
    display_name: str
    description: str
    # For a query whose header names no check (ingestion health); else the compliance map's.
    severity: str | None = None
    evaluation_frequency: str = "PT1H"
    dimension: str | None = "Account"  # one alert per value of this result column; None: one for the rule
    measure: str | None = None  # metricMeasureColumn, summed (timeAggregation Total); None: count the rows
    operator: str = "GreaterThan"
    threshold: int = 0
    control: str | None = None  # narrows the query to one check of the map: `| where ControlId == "<control>"`

    def library_query(self) -> queries.Query:
        """The library query the rule runs, narrowed to its check (whose severity and remediation it then has)."""
        query = queries.library()[self.query]
        if self.control is None:
            return query
        text = f'{query.text.rstrip()}\n| where ControlId == "{self.control}"\n'
        return dataclasses.replace(query, text=text, control_ids=(self.control,))

    def level(self) -> str:
        """The rule's severity: the query header's, or the rule's own when the header names none."""
        level = self.library_query().severity or self.severity
        if level is None:
            raise ValueError(f"alert {self.name}: neither the query header nor the rule names a severity")
        return level

    def full_description(self) -> str:
        """The description, then the controls the query evidences and what to do, from the query's header."""
        query = self.library_query()
        if not query.controls:
            return self.description
        return f"{self.description} Controls: {', '.join(query.controls)}. Remediation: {query.remediation}"

    def condition(self, query: queries.Query) -> dict[str, Any]:
        """The rule's one criterion (criteria.allOf[0])."""
        condition: dict[str, Any] = {"query": query.text}
        if self.measure is None:
            condition["timeAggregation"] = "Count"
        else:
            condition |= {"timeAggregation": "Total", "metricMeasureColumn": self.measure}
        condition |= {"operator": self.operator, "threshold": self.threshold}
        if self.dimension is not None:
            condition["dimensions"] = [{"name": self.dimension, "operator": "Include", "values": ["*"]}]
        # One evaluation period: the queries return no time column to split the window by.
        condition["failingPeriods"] = {"numberOfEvaluationPeriods": 1, "minFailingPeriodsToAlert": 1}
        return condition


ALERTS: tuple[Alert, ...] = (
    Alert(
        query=FAILING_BY_ACCOUNT,
        control="root-access-key",
        name="root-access-key",
        display_name="keyreport: AWS root user has an access key",
        description="An AWS account's root user holds an access key (active or not). The root user should have "
        "none: delete it in the account's security credentials. One alert per account (findings with an active "
        "exception excepted); the root-keys query lists the keys.",
    ),
    Alert(
        query=FAILING_BY_ACCOUNT,
        control="key-rotation-90-days",
        name="keys-past-90-days",
        display_name="keyreport: active AWS access keys older than 90 days",
        description="Active IAM access keys were created more than 90 days ago and need rotating. One alert per "
        "account (keys with an active exception excepted); the rotation-due query lists the keys.",
        evaluation_frequency="P1D",
    ),
    Alert(
        query=FAILING_BY_ACCOUNT,
        control="console-mfa",
        name="console-user-without-mfa",
        display_name="keyreport: AWS console users without MFA",
        description="IAM users can sign in to the AWS console with a password alone: no MFA device is assigned "
        "to them (from the credential report). One alert per account (users with an active exception excepted); "
        "the console-without-mfa query lists the users, those without any access key included.",
        evaluation_frequency="P1D",
    ),
    Alert(
        query="ingestion-recent-runs",
        name="collector-stopped",
        display_name="keyreport: the access key collector stopped reporting",
        description="No account has reported a run for StaleAfterHours (KeyReport_Thresholds, 26 hours by "
        "default): the collector Lambda is not running, fails before it ships, or cannot reach the workspace. "
        "Runs are counted by their run time, so the alert stays fired however long the silence lasts and "
        "resolves when a run reports; the ingestion-stopped and ingestion-last-run queries show each account.",
        severity="Medium",
        dimension=None,
        measure="Runs",
        operator="LessThan",
        threshold=1,
    ),
    Alert(
        query="accounts-stale",
        name="account-snapshot-stale",
        display_name="keyreport: an AWS account's key inventory is stale",
        description="An account's latest complete inventory is older than StaleAfterHours (KeyReport_Thresholds, "
        "26 hours by default): its later runs failed or were partial, so the dashboards and the other rules "
        "judge it by an old snapshot. One alert per account; the ingestion-errors and ingestion-last-run "
        "queries say why.",
        severity="Medium",
    ),
)


def _alert_resource(alert: Alert, query: queries.Query) -> dict[str, Any]:
    """One log search alert on the workspace, looking back WINDOW, stateful."""
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
            "windowSize": WINDOW,
            "criteria": {"allOf": [alert.condition(query)]},
            "autoMitigate": True,
            "actions": {"actionGroups": "[parameters('actionGroupIds')]"},
        },
    }


def alerts_template() -> dict[str, Any]:
    """Every rule as a scheduledQueryRules resource on the workspace, notifying the given action groups."""
    return arm.template(
        "keyreport's log search alert rules on the Log Analytics workspace: a root user key, active keys past "
        "90 days, console users without MFA, a collector that stopped reporting, an account whose inventory "
        "is stale.",
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
        resources=[_alert_resource(alert, alert.library_query()) for alert in ALERTS],
    )


def rendered() -> dict[Path, str]:
    """The files this module generates, and their content."""
    return {ALERTS_TEMPLATE_PATH: arm.json_text(alerts_template())}
