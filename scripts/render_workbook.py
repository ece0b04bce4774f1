"""Renders the Azure Monitor workbook (queries/workbook.json) and its ARM template (azure/workbook.json).

Every panel's query is a library query's text (queries/*.kql), verbatim. `make render` writes the files;
tests/queries/test_dashboards.py fails when a checked-in file differs from what this renders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keyreport import queries
from keyreport.queries import compliance
from scripts import arm

WORKBOOK_PATH = arm.ROOT / "queries" / "workbook.json"
WORKBOOK_TEMPLATE_PATH = arm.ROOT / "azure" / "workbook.json"

WORKBOOK_API = "2022-04-01"
WORKSPACE = "microsoft.operationalinsights/workspaces"
TIME_RANGE = "TimeRange"
DEFAULT_RANGE_MS = 7 * 86_400_000  # the trends' and run listings' default range (the time picker)
STATE_FUNCTION = "KeyReport_CurrentRuns"  # a query reading the current state runs over its own range, not the picker
RANGE_CHOICES_MS = (86_400_000, 2 * 86_400_000, 7 * 86_400_000, 14 * 86_400_000, 30 * 86_400_000, 90 * 86_400_000)
TIME_RANGE_PARAMETER_ID = "5c0e4b9a-6f2d-4a8e-9b1c-3d7e2f4a6b80"  # stable: workbooks key parameters by id
TAB_PARAMETER = "tab"  # set by the tab strip; each item shows on one tab
TAB_PARAMETER_ID = "8d1f3c2e-4b5a-4f6e-9a7b-0c1d2e3f4a5b"


@dataclass(frozen=True)
class Panel:
    """One query item: a library query shown as a grid, a chart or tiles."""

    query: str  # library id; also the item's name
    title: str
    width: int = 100  # percent of the row
    settings: dict[str, Any] = field(default_factory=dict)  # tileSettings / chartSettings / gridSettings


@dataclass(frozen=True)
class Text:
    """One markdown item between the panels."""

    name: str
    markdown: str


@dataclass(frozen=True)
class Tab:
    """Starts a tab: the items after it, up to the next Tab, show when it is selected."""

    name: str
    label: str


@dataclass(frozen=True)
class Controls:
    """A markdown table of every control the library's headers name: query, severity, remediation."""

    name: str
    heading: str


Item = Panel | Text | Tab | Controls


def tiles(title: str, value: str, palette: str, secondary: str) -> dict[str, Any]:
    """Tile settings: one tile per row, titled by `title`, `value` coloured by `palette`, `secondary` below."""
    return {
        "tileSettings": {
            "titleContent": {"columnMatch": title, "formatter": 1},
            "leftContent": {"columnMatch": value, "formatter": 12, "formatOptions": {"palette": palette}},
            "secondaryContent": {"columnMatch": secondary, "formatter": 1},
            "showBorder": True,
        }
    }


WORKBOOK: tuple[Item, ...] = (
    Tab("keys", "Access keys"),
    Text(
        "intro",
        "# AWS IAM access keys\n"
        "The estate as it is now: keys to rotate, keys nobody uses, root keys, and whether every account still "
        "reports. Every grid shows each account's latest complete inventory (KeyReport_CurrentKeys), so a key "
        "deleted, deactivated or rotated in AWS leaves it at the next complete run. An account whose latest run "
        "was partial or failed keeps its last complete snapshot, marked Stale; the time range bounds how old "
        "that snapshot may be. Thresholds (90 days, 45 days, a 7-day grace for never-used keys) are whole days, "
        "set once in KeyReport_Thresholds.",
    ),
    Panel(
        "account-compliance",
        "Rotation compliance per account (% of active keys at most 90 days old)",
        settings=tiles("Account", "CompliancePct", "redGreen", "RotationDue"),
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
    Tab("compliance", "Compliance"),
    Text(
        "compliance-intro",
        "# Compliance: CIS AWS Foundations Benchmark v5.0 and v6.0, AWS Security Hub\n"
        "One tile per check of the compliance map (queries/compliance.json): the share of checked credentials, "
        "users or accounts that pass it in each account's current state (KeyReport_Findings), per console "
        "password and per access key where the benchmark asks about each credential; below, the failing count "
        "per day. A finding an active exception covers counts as excepted, not failing (as Security Hub's "
        "suppressed findings); the Owners and exceptions tab lists them.",
    ),
    Panel(
        "compliance-summary",
        "Passing per check (%): failing, excepted and passing",
        settings=tiles("Control", "PassPct", "redGreen", "Status"),
    ),
    Panel(
        "compliance-trend",
        "Failing per check over time",
        settings={"chartSettings": {"xAxis": "Day", "yAxis": ["Failing"], "group": "Control"}},
    ),
    Controls("controls", "## What each check passes on and what to do"),
    Panel("console-without-mfa", "Console users without MFA", width=50),
    Panel("unused-90-days", "Credentials unused for 90 days or more (IAM.8)", width=50),
    Panel("unused-45-days", "Credentials unused for 45 days or more (CIS 2.11, IAM.22)", width=50),
    Panel("inactive-users", "Users with no activity for more than 90 days", width=50),
    Panel("setup-keys", "Keys created with a console user and never used", width=50),
    Tab("owners", "Owners and exceptions"),
    Text(
        "owners-intro",
        "## Owners and exceptions\n"
        "Owners come from the IAM users' owner tags (KEYREPORT_OWNER_TAGS, default owner and team). Exceptions "
        "come from keyreport-exception tags on IAM users and from the KeyReportExceptions watchlist (Microsoft "
        "Sentinel): each names a check, a user or one key, an expiry, an approver and a reason. An active "
        "exception keeps a failing finding out of the alerts until its last day; a refused one excepts nothing "
        "and fails the exception-valid check (docs/queries.md, Owners and exceptions).",
    ),
    Panel("findings-by-owner", "Failing findings by owner", width=50),
    Panel("exceptions-expiring", "Exceptions expiring within 14 days", width=50),
    Panel("exceptions", "Every exception: refused, expired, active"),
    Tab("health", "Collector health"),
    Text("health", "## Collector health\nOne summary row per account per run, in AWS_Access_Key_Report_Run_CL."),
    Panel("ingestion-stopped", "Accounts that stopped reporting (no run for StaleAfterHours)", width=50),
    Panel("accounts-stale", "Accounts whose current snapshot is stale", width=50),
    Panel("ingestion-arriving", "Runs still arriving, and what they wait for"),
    Panel("ingestion-last-run", "Last run per account", width=50),
    Panel("ingestion-freshness", "Freshness: time since each account's last snapshot (run or event re-read)"),
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
        "queryType": 0,
        "resourceType": WORKSPACE,
        "visualization": query.visualization,
    }
    if STATE_FUNCTION in queries.calls(query.text):
        # "Current" must not depend on the picker: the state functions read their own look-back within this range.
        content["timeContext"] = {"durationMs": int(query.timespan.total_seconds() * 1000)}
        content["noDataMessage"] = "Nothing found."
    else:
        content["timeContext"] = {"durationMs": DEFAULT_RANGE_MS}
        content["timeContextFromParameter"] = TIME_RANGE
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
                },
                {  # the tab shown first; the tab strip sets it
                    "id": TAB_PARAMETER_ID,
                    "version": "KqlParameterItem/1.0",
                    "name": TAB_PARAMETER,
                    "type": 1,
                    "isHiddenWhenLocked": True,
                    "value": next(item.name for item in WORKBOOK if isinstance(item, Tab)),
                },
            ],
            "style": "pills",
            "queryType": 0,
            "resourceType": WORKSPACE,
        },
        "name": "parameters",
    }


def controls_markdown(heading: str) -> str:
    """Every check of the compliance map: benchmark ids, what passes, severity, remediation, the query listing it."""
    listing: dict[str, list[str]] = {}
    for query in queries.library().values():
        for control_id in query.control_ids:
            listing.setdefault(control_id, []).append(query.id)
    lines = [heading, "", "| controls | check | severity | remediation | query |", "|---|---|---|---|---|"]
    for control in compliance.load().controls.values():
        listed = ", ".join(listing.get(control.id, [])) or "KeyReport_Findings"
        lines.append(f"| {control.text} | {control.title} | {control.severity} | {control.remediation} | {listed} |")
    return "\n".join(lines)


def _tabs_item() -> dict[str, Any]:
    links = [
        {"id": tab.name, "cellValue": TAB_PARAMETER, "linkTarget": "parameter", "linkLabel": tab.label,
         "subTarget": tab.name, "style": "link"}
        for tab in WORKBOOK
        if isinstance(tab, Tab)
    ]  # fmt: skip
    return {"type": 11, "content": {"version": "LinkItem/1.0", "style": "tabs", "links": links}, "name": "tabs"}


def _item(item: Panel | Text | Controls, library: dict[str, queries.Query]) -> dict[str, Any]:
    if isinstance(item, Text):
        return {"type": 1, "content": {"json": item.markdown}, "name": item.name}
    if isinstance(item, Controls):
        return {"type": 1, "content": {"json": controls_markdown(item.heading)}, "name": item.name}
    return _query_item(item, library[item.query])


def workbook(fallback_resource_ids: list[str] | None = None) -> dict[str, Any]:
    """The workbook as a gallery template (Notebook/1.0); the ARM template passes its workspace as fallback."""
    library = queries.library()
    items: list[dict[str, Any]] = [_parameters_item(), _tabs_item()]
    tab = ""
    for item in WORKBOOK:
        if isinstance(item, Tab):
            tab = item.name
            continue
        rendered = _item(item, library)
        rendered["conditionalVisibility"] = {"parameterName": TAB_PARAMETER, "comparison": "isEqualTo", "value": tab}
        items.append(rendered)
    return {
        "version": "Notebook/1.0",
        "items": items,
        "fallbackResourceIds": fallback_resource_ids or [],
        "$schema": "https://github.com/Microsoft/Application-Insights-Workbooks/blob/master/schema/workbook.json",
    }


def workbook_template() -> dict[str, Any]:
    """The workbook, shared in the resource group and bound to the workspace."""
    workbook_resource = {
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
    return arm.template(
        "keyreport's Azure Monitor workbook (queries/workbook.json), shared in the resource group and bound to "
        "the Log Analytics workspace.",
        __file__,
        parameters={
            "workspaceResourceId": arm.workspace_parameter(),
            "workbookDisplayName": arm.parameter("string", default="AWS IAM access keys (keyreport)"),
            "workbookId": arm.parameter(
                "string", "The workbook's name (a GUID); pass the same one to update it.", default="[newGuid()]"
            ),
            "location": arm.location_parameter(),
        },
        variables={"workbookContent": workbook(["[parameters('workspaceResourceId')]"])},
        resources=[workbook_resource],
        outputs={
            "workbookId": {
                "type": "string",
                "value": "[resourceId('Microsoft.Insights/workbooks', parameters('workbookId'))]",
            },
            # The GUID to pass as workbookId again to update this workbook in place (docs/queries.md).
            "workbookName": {"type": "string", "value": "[parameters('workbookId')]"},
        },
    )


def rendered() -> dict[Path, str]:
    """The files this module generates, and their content."""
    return {WORKBOOK_PATH: arm.json_text(workbook()), WORKBOOK_TEMPLATE_PATH: arm.json_text(workbook_template())}
