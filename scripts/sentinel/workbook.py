"""The solution's workbook (Workbooks/KeyReport.json) and its metadata (Workbooks/WorkbookMetadata.json).

Every panel's query is a library query verbatim, followed by the account filter when its result has an
Account column. It picks its own subscription and workspace (it does not rely on the resource it is opened
from), filters by account, shows freshness per account, the compliance controls from the compliance map,
and where keys are used from when the workspace has AWSCloudTrail. Current-state panels read a fixed 14 days
(what the analytics rules read), so the time picker only moves the trend charts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keyreport import queries
from scripts import render_workbook
from scripts.sentinel import controls, solution

WORKSPACE = "microsoft.operationalinsights/workspaces"
RESOURCE_GRAPH = "microsoft.resourcegraph/resources"
DAY_MS = 86_400_000
STATE_MS = 14 * DAY_MS  # current state: the analytics rules' query period
FRESHNESS_MS = 90 * DAY_MS  # long enough to show an account that fell silent weeks ago
ACCOUNT_FILTER = "| where '*' in ({Accounts}) or Account in ({Accounts})\n"
CLOUDTRAIL_PARAMETER = "HasCloudTrail"
CLOUDTRAIL_PROBE = (
    "union isfuzzy=true\n"
    "    (AWSCloudTrail | where TimeGenerated > ago(14d) | take 1 | project Found = 'yes'),\n"
    "    (print Found = 'no')\n"
    "| summarize Found = max(Found)"
)
ENABLE_CLOUDTRAIL = (
    "## AWSCloudTrail is not in this workspace\n"
    "This tab joins each access key to its CloudTrail calls, which needs the `AWSCloudTrail` table. To fill it, "
    "install Microsoft Sentinel's **Amazon Web Services** solution from Content hub and connect its **Amazon Web "
    "Services S3** connector: a trail (management events) delivering to an S3 bucket, an SQS queue notified of "
    "new objects, and an IAM role that Sentinel assumes (the connector page deploys these with CloudFormation). "
    "Rows appear within minutes; this tab then shows each key's source IPs, user agents, regions and services "
    "of the last 14 days."
)


@dataclass(frozen=True)
class Panel:
    query: str  # library id; also the item's name
    title: str
    span_ms: int | None = STATE_MS  # fixed time context; None: the TimeRange parameter
    width: int = 100
    settings: dict[str, Any] | None = None
    visible_when: tuple[str, str] | None = None  # (parameter, value) besides the tab
    per_account: bool = True  # the result has an Account column: narrow it to the selected accounts


@dataclass(frozen=True)
class Text:
    name: str
    markdown: str
    visible_when: tuple[str, str] | None = None


@dataclass(frozen=True)
class Tab:
    name: str
    label: str


Item = Panel | Text | Tab

TABS_AND_ITEMS: tuple[Item, ...] = (
    Tab("state", "Current state"),
    Text(
        "state-intro",
        "# AWS IAM access keys: each account as it is now\nEach account's latest complete keyreport inventory "
        "(KeyReport_CurrentKeys / KeyReport_Findings), read over the last 14 days whatever the time range says; "
        "Stale marks an account whose newer runs were incomplete.",
    ),
    Panel("failing-by-account", "Failing checks per account (what the analytics rules alert on)"),
    Panel("rotation-due", "Rotate: active keys older than 90 days"),
    Panel("root-keys", "Root user keys", width=50),
    Panel("never-used", "Never used keys", width=50),
    Tab("freshness", "Freshness"),
    Text(
        "freshness-intro",
        "## Freshness per account\nThe newest run of each account over 90 days, and the "
        "accounts silent for more than 26 hours (the collector-stopped rule's condition).",
    ),
    Panel("ingestion-last-run", "Last run per account", span_ms=FRESHNESS_MS),
    Panel("ingestion-stopped", "Accounts that stopped reporting", span_ms=FRESHNESS_MS),
    Tab("compliance", "Compliance"),
    Panel(
        "compliance-summary",
        "Failing per control (all accounts)",
        settings=render_workbook.tiles("Control", "Failing", "greenRed", "Checked"),
        per_account=False,
    ),
    Panel(
        "compliance-trend",
        "Failing per control over time (time range)",
        span_ms=None,
        per_account=False,
        settings={"chartSettings": {"xAxis": "Day", "yAxis": ["Failing"], "group": "Control"}},
    ),
    Tab("key-use", "Where keys are used from"),
    Panel(
        "key-use-cloudtrail",
        "Calls per current key in AWSCloudTrail, last 14 days",
        visible_when=(CLOUDTRAIL_PARAMETER, "yes"),
    ),
    Text("enable-cloudtrail", ENABLE_CLOUDTRAIL, visible_when=(CLOUDTRAIL_PARAMETER, "no")),
)
# The compliance tab's table of controls is built from the compliance map, after the tiles.
CONTROLS_AFTER = "compliance-trend"


def panel_query(panel: Panel) -> str:
    """The library query, narrowed to the selected accounts when its result names them."""
    text = queries.library()[panel.query].text
    return text + ACCOUNT_FILTER if panel.per_account else text


def controls_markdown() -> str:
    lines = [
        "## What each control checks and what to do",
        "",
        "| check | benchmarks | severity | tactics | techniques | remediation |",
        "|---|---|---|---|---|---|",
    ]
    for control in controls.controls().values():
        lines.append(
            f"| {control.title} | {control.text} | {control.severity} | {', '.join(control.mitre.tactics)} "
            f"| {', '.join(control.mitre.techniques)} | {control.remediation} |"
        )
    return "\n".join(lines)


def _parameters(subscription: str | None = None, workspace: str | None = None) -> dict[str, Any]:
    def parameter(name: str, kind: int, **settings: Any) -> dict[str, Any]:
        return {"id": solution.stable_id(f"workbook-parameter:{name}"), "version": "KqlParameterItem/1.0",
                "name": name, "type": kind, **settings}  # fmt: skip

    return {
        "type": 9,
        "name": "parameters",
        "content": {
            "version": "KqlParameterItem/1.0",
            "style": "pills",
            "queryType": 0,
            "resourceType": WORKSPACE,
            "parameters": [
                parameter(
                    "Subscription",
                    6,
                    label="Subscription",
                    isRequired=True,
                    multiSelect=True,
                    quote="'",
                    delimiter=",",
                    value=[subscription] if subscription else [],
                    typeSettings={"includeAll": False, "showDefault": False},
                    query="summarize by subscriptionId\n| project value = strcat('/subscriptions/', subscriptionId), "
                    "label = subscriptionId, selected = true",
                    crossComponentResources=["value::selected"],
                    queryType=1,
                    resourceType=RESOURCE_GRAPH,
                ),
                parameter(
                    "Workspace",
                    5,
                    label="Workspace",
                    isRequired=True,
                    multiSelect=False,
                    query="resources\n| where type =~ 'microsoft.operationalinsights/workspaces'\n| project id",
                    crossComponentResources=["{Subscription}"],
                    typeSettings={"additionalResourceOptions": ["value::1"]},
                    value=workspace or "value::1",
                    queryType=1,
                    resourceType=RESOURCE_GRAPH,
                ),
                parameter(
                    "Accounts",
                    2,
                    label="AWS accounts",
                    isRequired=True,
                    multiSelect=True,
                    quote="'",
                    delimiter=",",
                    query="KeyReport_LatestRuns()\n| distinct account_number_s\n| sort by account_number_s asc",
                    crossComponentResources=["{Workspace}"],
                    value=["value::all"],
                    typeSettings={
                        "additionalResourceOptions": ["value::all"],
                        "selectAllValue": "*",
                        "showDefault": False,
                    },
                    timeContext={"durationMs": STATE_MS},
                    queryType=0,
                    resourceType=WORKSPACE,
                ),
                parameter(
                    "TimeRange",
                    4,
                    label="Time range (trends only)",
                    isRequired=True,
                    value={"durationMs": 30 * DAY_MS},
                    typeSettings={
                        "selectableValues": [{"durationMs": days * DAY_MS} for days in (7, 14, 30, 90)],
                        "allowCustom": True,
                    },
                ),
                parameter(
                    CLOUDTRAIL_PARAMETER,
                    1,
                    label="AWSCloudTrail present",
                    isHiddenWhenLocked=True,
                    query=CLOUDTRAIL_PROBE,
                    crossComponentResources=["{Workspace}"],
                    timeContext={"durationMs": STATE_MS},
                    queryType=0,
                    resourceType=WORKSPACE,
                ),
                parameter("tab", 1, isHiddenWhenLocked=True, value="state"),
            ],
        },
    }


def _visibility(tab: str, extra: tuple[str, str] | None) -> dict[str, Any]:
    conditions = [{"parameterName": "tab", "comparison": "isEqualTo", "value": tab}]
    if extra is not None:
        conditions.append({"parameterName": extra[0], "comparison": "isEqualTo", "value": extra[1]})
    return {"conditionalVisibilities": conditions}


def _panel(panel: Panel) -> dict[str, Any]:
    query = queries.library()[panel.query]
    content: dict[str, Any] = {
        "version": "KqlItem/1.0",
        "query": panel_query(panel),
        "size": 0,
        "title": panel.title,
        "noDataMessage": "Nothing found.",
        "queryType": 0,
        "resourceType": WORKSPACE,
        "crossComponentResources": ["{Workspace}"],
        "visualization": query.visualization,
    }
    if panel.span_ms is None:
        content["timeContextFromParameter"] = "TimeRange"
        content["timeContext"] = {"durationMs": 30 * DAY_MS}
    else:
        content["timeContext"] = {"durationMs": panel.span_ms}
    if query.visualization == "table":
        content["gridSettings"] = {"filter": True, "rowLimit": 1000}
    content.update(panel.settings or {})
    item: dict[str, Any] = {"type": 3, "name": panel.query, "content": content}
    if panel.width != 100:
        item["customWidth"] = str(panel.width)
    return item


def workbook(subscription: str | None = None, workspace: str | None = None) -> dict[str, Any]:
    """The workbook (Notebook/1.0). A deployment passes its subscription and workspace (ARM expressions): they
    become the parameters' defaults, so the workbook opens on the workspace it was installed into."""
    tabs = [item for item in TABS_AND_ITEMS if isinstance(item, Tab)]
    items: list[dict[str, Any]] = [
        _parameters(subscription, workspace),
        {
            "type": 11,
            "name": "tabs",
            "content": {
                "version": "LinkItem/1.0",
                "style": "tabs",
                "links": [
                    {
                        "id": tab.name,
                        "cellValue": "tab",
                        "linkTarget": "parameter",
                        "linkLabel": tab.label,
                        "subTarget": tab.name,
                        "style": "link",
                    }
                    for tab in tabs
                ],
            },
        },
    ]
    current = ""
    for item in TABS_AND_ITEMS:
        if isinstance(item, Tab):
            current = item.name
            continue
        if isinstance(item, Text):
            rendered = {"type": 1, "name": item.name, "content": {"json": item.markdown}}
        else:
            rendered = _panel(item)
        rendered.update(_visibility(current, item.visible_when))
        items.append(rendered)
        if isinstance(item, Panel) and item.query == CONTROLS_AFTER:
            table = {"type": 1, "name": "controls", "content": {"json": controls_markdown()}}
            table.update(_visibility(current, None))
            items.append(table)
    return {
        "version": "Notebook/1.0",
        "items": items,
        "fallbackResourceIds": [workspace] if workspace else [],
        "fromTemplateId": f"sentinel-{solution.FILE_NAME}",
        "$schema": "https://github.com/Microsoft/Application-Insights-Workbooks/blob/master/schema/workbook.json",
    }


def panel_queries() -> dict[str, str]:
    """Every query the workbook runs against the workspace, by item or parameter name."""
    found = {f"panel:{item.query}": panel_query(item) for item in TABS_AND_ITEMS if isinstance(item, Panel)}
    for parameter in _parameters()["content"]["parameters"]:
        if parameter.get("queryType") == 0 and "query" in parameter:
            found[f"parameter:{parameter['name']}"] = parameter["query"]
    return found


def metadata(template_path: str) -> dict[str, Any]:
    """The workbook's entry as Azure-Sentinel's workbook metadata lists it."""
    return {
        "workbookKey": f"{solution.FILE_NAME}Workbook",
        "logoFileName": "",
        "description": "AWS IAM access keys per account: current state, freshness, compliance controls and, with "
        "AWSCloudTrail, where each key is used from.",
        "dataTypesDependencies": list(solution.TABLES),
        "dataConnectorsDependencies": [solution.CONNECTOR_ID],
        "previewImagesFileNames": [],
        "version": solution.VERSION,
        "title": "keyreport: AWS IAM access keys",
        "templateRelativePath": template_path,
        "subtitle": "",
        "provider": solution.PUBLISHER,
        "support": solution.SUPPORT,
        "source": {"kind": "Solution", "name": solution.NAME},
        "categories": {"domains": ["Security - Cloud Security", "Identity"]},
    }
