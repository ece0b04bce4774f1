"""Renders the workbook and the alert rules from the KQL library, so every dashboard query has one source.

Writes (`python -m tests.queries.dashboards`):
  queries/workbook.json            the Azure Monitor workbook as a gallery template (Notebook/1.0)
  azure/workbook.json              ARM template deploying that workbook (Microsoft.Insights/workbooks)
  azure/alerts.json                ARM template with the log search alert rules (scheduledQueryRules)
  queries/alerts/<id>.yaml         the same rules as Microsoft Sentinel scheduled analytics rules

Every query text in them is a library query's text, verbatim; tests/queries/test_dashboards.py fails when a
checked-in file differs from what this renders, and runs every embedded query through the Kusto analyser.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from keyreport import queries

ROOT = Path(__file__).resolve().parents[2]
WORKBOOK_PATH = ROOT / "queries" / "workbook.json"
WORKBOOK_TEMPLATE_PATH = ROOT / "azure" / "workbook.json"
ALERTS_TEMPLATE_PATH = ROOT / "azure" / "alerts.json"
SENTINEL_DIR = ROOT / "queries" / "alerts"

ARM_SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
WORKBOOK_API = "2022-04-01"
ALERT_API = "2023-03-15-preview"
WORKSPACE = "microsoft.operationalinsights/workspaces"
TIME_RANGE = "TimeRange"
DEFAULT_RANGE_MS = 2 * 86_400_000  # one daily run with slack: the snapshot queries' own default
RANGE_CHOICES_MS = (86_400_000, 2 * 86_400_000, 7 * 86_400_000, 14 * 86_400_000, 30 * 86_400_000, 90 * 86_400_000)
TIME_RANGE_PARAMETER_ID = "5c0e4b9a-6f2d-4a8e-9b1c-3d7e2f4a6b80"  # stable: workbooks key parameters by id


# -- the workbook ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Panel:
    """One query item: a library query shown as a grid, a chart or tiles."""

    query: str  # library id; also the item's name
    title: str
    width: int = 100  # percent of the row
    settings: dict[str, Any] = field(default_factory=dict)  # tileSettings / chartSettings / gridSettings


@dataclass(frozen=True)
class Text:
    name: str
    markdown: str


Item = Panel | Text

WORKBOOK: tuple[Item, ...] = (
    Text(
        "intro",
        "# AWS IAM access keys\n"
        "What keyreport found in its latest runs: keys to rotate, keys nobody uses, root keys, and whether "
        "every account still reports. Each key counts once: its newest record in the time range. A daily "
        "collection needs a range of at least one day; keys deleted in AWS leave the grids once their last "
        "record is out of the range.",
    ),
    Panel(
        "account-compliance",
        "Rotation compliance per account (% of active keys at most 90 days old)",
        settings={
            "tileSettings": {
                "titleContent": {"columnMatch": "Account", "formatter": 1},
                "leftContent": {
                    "columnMatch": "CompliancePct",
                    "formatter": 12,
                    "formatOptions": {"palette": "redGreen"},
                },
                "secondaryContent": {"columnMatch": "RotationDue", "formatter": 1},
                "showBorder": True,
            }
        },
    ),
    Panel("rotation-due", "Rotate: active keys older than 90 days"),
    Panel("stale-keys", "Stale: keys unused for 90 days or more", width=50),
    Panel("never-used", "Never used", width=50),
    Panel(
        "key-creations-per-day",
        "Keys created per day (last 365 days)",
        settings={"chartSettings": {"xAxis": "CreateDate_t", "yAxis": ["KeysCreated"]}},
    ),
    Panel(
        "rotation-compliance",
        "Rotation compliance over time per account (%)",
        settings={"chartSettings": {"xAxis": "Day", "yAxis": ["CompliancePct"], "group": "Account"}},
    ),
    Panel("root-keys", "Root user keys: should not exist", width=50),
    Panel("two-active-keys", "Users with two active keys", width=50),
    Panel("inactive-keys", "Inactive keys still present", width=50),
    Panel("last-use-by-service", "Last use by service and region", width=50),
    Text("health", "## Collector health\nOne summary row per account per run, in AWS_Access_Key_Report_Run_CL."),
    Panel("ingestion-stopped", "Accounts that stopped reporting (no run for 26 hours)", width=50),
    Panel("ingestion-last-run", "Last run per account", width=50),
    Panel("ingestion-records-per-run", "Records per run: shipped and received"),
    Panel("ingestion-errors", "Runs with errors"),
)


def _query_item(panel: Panel, query: queries.Query) -> dict[str, Any]:
    content: dict[str, Any] = {
        "version": "KqlItem/1.0",
        "query": query.text,
        "size": 0,
        "title": panel.title,
        "noDataMessage": "Nothing found in the time range.",
        "timeContext": {"durationMs": DEFAULT_RANGE_MS},
        "timeContextFromParameter": TIME_RANGE,
        "queryType": 0,
        "resourceType": WORKSPACE,
        "visualization": query.visualization,
    }
    if query.visualization == "table":
        content["gridSettings"] = {"filter": True, "rowLimit": 1000}
    content.update(panel.settings)
    item: dict[str, Any] = {"type": 3, "content": content, "name": panel.query}
    if panel.width != 100:
        item["customWidth"] = str(panel.width)
    return item


def _parameters_item() -> dict[str, Any]:
    return {
        "type": 9,
        "content": {
            "version": "KqlParameterItem/1.0",
            "parameters": [
                {
                    "id": TIME_RANGE_PARAMETER_ID,
                    "version": "KqlParameterItem/1.0",
                    "name": TIME_RANGE,
                    "label": "Time range",
                    "type": 4,
                    "isRequired": True,
                    "value": {"durationMs": DEFAULT_RANGE_MS},
                    "typeSettings": {
                        "selectableValues": [{"durationMs": ms} for ms in RANGE_CHOICES_MS],
                        "allowCustom": True,
                    },
                }
            ],
            "style": "pills",
            "queryType": 0,
            "resourceType": WORKSPACE,
        },
        "name": "parameters",
    }


def workbook(fallback_resource_ids: list[str] | None = None) -> dict[str, Any]:
    library = queries.library()
    items: list[dict[str, Any]] = []
    for index, item in enumerate(WORKBOOK):
        if isinstance(item, Text):
            items.append({"type": 1, "content": {"json": item.markdown}, "name": item.name})
        else:
            items.append(_query_item(item, library[item.query]))
        if index == 0:
            items.append(_parameters_item())
    return {
        "version": "Notebook/1.0",
        "items": items,
        "fallbackResourceIds": fallback_resource_ids or [],
        "$schema": "https://github.com/Microsoft/Application-Insights-Workbooks/blob/master/schema/workbook.json",
    }


def workbook_template() -> dict[str, Any]:
    return {
        "$schema": ARM_SCHEMA,
        "contentVersion": "1.0.0.0",
        "metadata": {
            "description": "keyreport's Azure Monitor workbook (queries/workbook.json), shared in the resource group "
            "and bound to the Log Analytics workspace. Generated by tests/queries/dashboards.py: do not edit."
        },
        "parameters": {
            "workspaceResourceId": {
                "type": "string",
                "metadata": {"description": "Resource id of the Log Analytics workspace keyreport ships to."},
            },
            "workbookDisplayName": {"type": "string", "defaultValue": "AWS IAM access keys (keyreport)"},
            "workbookId": {
                "type": "string",
                "defaultValue": "[newGuid()]",
                "metadata": {"description": "The workbook's name (a GUID); pass the same one to update it."},
            },
            "location": {"type": "string", "defaultValue": "[resourceGroup().location]"},
        },
        "variables": {"workbookContent": workbook(["[parameters('workspaceResourceId')]"])},
        "resources": [
            {
                "type": "Microsoft.Insights/workbooks",
                "apiVersion": WORKBOOK_API,
                "name": "[parameters('workbookId')]",
                "location": "[parameters('location')]",
                "kind": "shared",
                "properties": {
                    "displayName": "[parameters('workbookDisplayName')]",
                    "category": "workbook",
                    "version": "Notebook/1.0",
                    "sourceId": "[parameters('workspaceResourceId')]",
                    "serializedData": "[string(variables('workbookContent'))]",
                },
            }
        ],
        "outputs": {
            "workbookId": {
                "type": "string",
                "value": "[resourceId('Microsoft.Insights/workbooks', parameters('workbookId'))]",
            }
        },
    }


# -- the alert rules -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    """One rule, rendered both as an Azure Monitor log search alert and as a Sentinel analytics rule."""

    query: str  # library id; one alert per result row (split by Account)
    name: str
    display_name: str
    description: str
    severity: int  # Azure Monitor: 0 (critical) .. 4 (verbose)
    sentinel_id: str  # stable GUID: Sentinel tracks a template by it
    sentinel_severity: str
    tactics: tuple[str, ...]
    techniques: tuple[str, ...]
    custom_details: dict[str, str]  # Sentinel custom detail -> result column
    evaluation_frequency: str = "PT1H"
    window_size: str = "P1D"
    query_time_range: str = "P2D"  # at least one daily run, whatever the hour
    sentinel_period: str = "2d"
    auto_mitigate: bool = True


ALERTS: tuple[Alert, ...] = (
    Alert(
        query="root-keys",
        name="root-access-key",
        display_name="keyreport: AWS root user has an access key",
        description="An AWS account's root user holds an access key (active or not). The root user should have "
        "none: delete it in the account's security credentials. One alert per account.",
        severity=1,
        sentinel_id="54821cee-ea45-44f9-88fd-12d75959475c",
        sentinel_severity="High",
        tactics=("Persistence", "PrivilegeEscalation"),
        techniques=("T1078.004",),
        custom_details={"AwsAccount": "Account", "AccessKey": "AccessKey", "KeyStatus": "Status"},
    ),
    Alert(
        query="rotation-due",
        name="keys-past-90-days",
        display_name="keyreport: active AWS access keys older than 90 days",
        description="Active IAM access keys were created more than 90 days ago and need rotating. One alert per "
        "account; the rotation-due query lists the keys.",
        severity=3,
        sentinel_id="81b0e9ed-8f2b-43df-9bad-caf6d20a25df",
        sentinel_severity="Medium",
        tactics=("Persistence",),
        techniques=("T1078.004",),
        custom_details={"AwsAccount": "Account", "IamUser": "User", "AccessKey": "AccessKey", "AgeDays": "AgeDays"},
        evaluation_frequency="P1D",
    ),
    Alert(
        query="ingestion-stopped",
        name="collector-stopped",
        display_name="keyreport: an AWS account stopped reporting access keys",
        description="An account that reported key inventories has not reported for 26 hours: the collector Lambda "
        "is not running, failing before it ships, or lost access to the account. Stays fired until closed, since "
        "an account silent for longer than the query range drops out of the result.",
        severity=2,
        sentinel_id="3a816c06-6c7d-4ddc-bf58-a5ba3d594237",
        sentinel_severity="Medium",
        tactics=("DefenseEvasion",),
        techniques=("T1562.008",),
        custom_details={"AwsAccount": "Account", "LastRun": "LastRun", "HoursSilent": "HoursSilent"},
        sentinel_period="14d",
        auto_mitigate=False,
    ),
)


def _alert_resource(alert: Alert, query: queries.Query) -> dict[str, Any]:
    return {
        "type": "Microsoft.Insights/scheduledQueryRules",
        "apiVersion": ALERT_API,
        "name": f"[format('{{0}}-{alert.name}', parameters('namePrefix'))]",
        "location": "[parameters('location')]",
        "kind": "LogAlert",
        "properties": {
            "displayName": alert.display_name,
            "description": alert.description,
            "severity": alert.severity,
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
    library = queries.library()
    return {
        "$schema": ARM_SCHEMA,
        "contentVersion": "1.0.0.0",
        "metadata": {
            "description": "keyreport's log search alert rules on the Log Analytics workspace: a root user key, "
            "active keys past 90 days, an account that stopped reporting. Generated by "
            "tests/queries/dashboards.py: do not edit."
        },
        "parameters": {
            "workspaceResourceId": {
                "type": "string",
                "metadata": {"description": "Resource id of the Log Analytics workspace keyreport ships to."},
            },
            "location": {
                "type": "string",
                "defaultValue": "[resourceGroup().location]",
                "metadata": {"description": "The workspace's region."},
            },
            "namePrefix": {"type": "string", "defaultValue": "keyreport"},
            "enabled": {"type": "bool", "defaultValue": True},
            "actionGroupIds": {
                "type": "array",
                "defaultValue": [],
                "metadata": {"description": "Resource ids of the action groups to notify (email, Teams, ticket)."},
            },
        },
        "resources": [_alert_resource(alert, library[alert.query]) for alert in ALERTS],
    }


def sentinel_rule(alert: Alert) -> dict[str, Any]:
    query = queries.library()[alert.query]
    return {
        "id": alert.sentinel_id,
        "name": alert.display_name,
        "description": alert.description,
        "severity": alert.sentinel_severity,
        "status": "Available",
        "requiredDataConnectors": [],
        "queryFrequency": _sentinel_span(alert.evaluation_frequency),
        "queryPeriod": alert.sentinel_period,
        "triggerOperator": "gt",
        "triggerThreshold": 0,
        "tactics": list(alert.tactics),
        "relevantTechniques": list(alert.techniques),
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
    header = (
        "# Microsoft Sentinel scheduled analytics rule (import: Analytics > Import, or the Sentinel repositories "
        "feature).\n# Generated by tests/queries/dashboards.py from the KQL library: do not edit.\n"
    )
    return header + yaml.dump(sentinel_rule(alert), Dumper=_LiteralDumper, sort_keys=False, width=1000)


# -- files -------------------------------------------------------------------------------------------------


def rendered() -> dict[Path, str]:
    """Every generated file and its content."""
    files = {
        WORKBOOK_PATH: _json(workbook()),
        WORKBOOK_TEMPLATE_PATH: _json(workbook_template()),
        ALERTS_TEMPLATE_PATH: _json(alerts_template()),
    }
    files.update({SENTINEL_DIR / f"{alert.name}.yaml": sentinel_text(alert) for alert in ALERTS})
    return files


def _json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    for path, text in rendered().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        sys.stdout.write(f"wrote {path.relative_to(ROOT)}\n")
