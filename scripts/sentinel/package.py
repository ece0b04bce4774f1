"""Package/mainTemplate.json and createUiDefinition.json: the whole solution into one workspace, one deployment.

    az deployment group create --resource-group <rg> --template-file azure/sentinel/Package/mainTemplate.json \\
        --parameters workspace=<workspace name>

It deploys the three tables (skippable), the workspace functions (the parsers: with their Sentinel variants,
queries/sentinel/, in place of the base ones), the exceptions watchlist (empty; skippable), the hunting queries,
the analytics rules (after the functions and tables their queries need: Sentinel checks a rule's query when it is
created), the data connector, the workbook, one metadata item per piece (so Sentinel lists them as this
solution's content) and the content package itself.
"""

from __future__ import annotations

import json
from typing import Any

from keyreport import queries
from scripts import arm, render_functions, render_logs_ingestion, render_watchlist, render_workbook, schema
from scripts.sentinel import connector, rules, solution, variants, workbook

PROVIDER = "Microsoft.OperationalInsights/workspaces/providers"
ALERT_RULE_API = "2023-12-01-preview"
DATA_CONNECTOR_API = "2021-03-01-preview"
METADATA_API = "2022-01-01-preview"
CONTENT_PACKAGE_API = "2023-04-01-preview"
SAVED_SEARCH_TYPE = render_functions.SAVED_SEARCH_TYPE
WORKBOOK_NAME = "[guid(resourceGroup().id, parameters('workspace'), 'keyreport-workbook')]"
WORKSPACE_ID = "resourceId('Microsoft.OperationalInsights/workspaces', parameters('workspace'))"
TRIGGER_OPERATORS = {"gt": "GreaterThan", "lt": "LessThan", "eq": "Equal", "ne": "NotEqual"}


def _in_workspace(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource of another template (functions, tables), its workspace parameter renamed to this one's."""
    text = json.dumps(resource).replace("parameters('workspaceName')", "parameters('workspace')")
    moved: dict[str, Any] = json.loads(text)
    return moved


def _sentinel_name(item: str) -> str:
    return f"[concat(parameters('workspace'), '/Microsoft.SecurityInsights/', '{item}')]"


def _extension_id(kind: str, item: str) -> str:
    return f"extensionResourceId({WORKSPACE_ID}, 'Microsoft.SecurityInsights/{kind}', '{item}')"


def _metadata(kind: str, content_id: str, parent_id: str) -> dict[str, Any]:
    """Marks a piece of content as this solution's (Sentinel's Content hub and content pages read it)."""
    return {
        "type": f"{PROVIDER}/metadata",
        "apiVersion": METADATA_API,
        "name": _sentinel_name(f"{kind}-{content_id}"),
        "properties": {
            "parentId": f"[{parent_id}]",
            "contentId": content_id,
            "kind": kind,
            "version": solution.VERSION,
            "source": {"kind": "Solution", "name": solution.NAME, "sourceId": solution.SOLUTION_ID},
            "author": {"name": solution.PUBLISHER},
            "support": solution.SUPPORT,
        },
    }


def _function_ids() -> list[str]:
    return [
        f"[resourceId('{SAVED_SEARCH_TYPE}', parameters('workspace'), '{render_functions.saved_search_name(name)}')]"
        for name in queries.functions()
    ]


def _table_ids() -> list[str]:
    return [
        f"[resourceId('{render_logs_ingestion.TABLE_TYPE}', parameters('workspace'), '{t}')]" for t in solution.TABLES
    ]


def alert_rule_properties(rule: rules.Content) -> dict[str, Any]:
    """The rule template as the properties of a Microsoft.SecurityInsights/alertRules resource."""
    template = rules.rule_template(rule)
    techniques = list(dict.fromkeys(t.split(".")[0] for t in rule.techniques))
    grouping = dict(template["incidentConfiguration"]["groupingConfiguration"])
    return {
        "displayName": template["name"],
        "description": template["description"],
        "severity": template["severity"],
        "enabled": "[parameters('enableAnalyticsRules')]",
        "query": template["query"],
        "queryFrequency": rules.iso_duration(template["queryFrequency"]),
        "queryPeriod": rules.iso_duration(template["queryPeriod"]),
        "triggerOperator": TRIGGER_OPERATORS[template["triggerOperator"]],
        "triggerThreshold": template["triggerThreshold"],
        "suppressionDuration": "PT1H",
        "suppressionEnabled": False,
        "tactics": template["tactics"],
        "techniques": techniques,
        "subTechniques": [t for t in rule.techniques if "." in t],
        "entityMappings": template["entityMappings"],
        "customDetails": template["customDetails"],
        "alertDetailsOverride": template.get("alertDetailsOverride"),
        "eventGroupingSettings": template["eventGroupingSettings"],
        "incidentConfiguration": {"createIncident": True, "groupingConfiguration": grouping},
        "templateVersion": solution.VERSION,
    }


def _alert_rule(rule: rules.Content) -> list[dict[str, Any]]:
    properties = {key: value for key, value in alert_rule_properties(rule).items() if value is not None}
    resource = {
        "type": f"{PROVIDER}/alertRules",
        "apiVersion": ALERT_RULE_API,
        "name": _sentinel_name(rule.id),
        "kind": "Scheduled",
        "dependsOn": [*_function_ids(), *_table_ids()],
        "properties": properties,
    }
    return [resource, {**_metadata("AnalyticsRule", rule.id, _extension_id("alertRules", rule.id)),
                       "dependsOn": [_extension_ref("alertRules", rule.id)]}]  # fmt: skip


def _extension_ref(kind: str, item: str) -> str:
    return f"[{_extension_id(kind, item)}]"


def _hunting_query(hunt: rules.Content) -> list[dict[str, Any]]:
    name = f"keyreport-hunting-{hunt.name}"
    search_id = f"resourceId('{SAVED_SEARCH_TYPE}', parameters('workspace'), '{name}')"
    resource = {
        "type": SAVED_SEARCH_TYPE,
        "apiVersion": render_functions.SAVED_SEARCH_API,
        "name": f"[format('{{0}}/{{1}}', parameters('workspace'), '{name}')]",
        "dependsOn": _function_ids(),
        "properties": {
            "category": "Hunting Queries",
            "displayName": hunt.display_name,
            "query": hunt.text(),
            "version": 2,
            "tags": [
                {"name": "description", "value": hunt.description},
                {"name": "tactics", "value": ",".join(hunt.tactics)},
                {"name": "techniques", "value": ",".join(hunt.techniques)},
            ],
        },
    }
    return [resource, {**_metadata("HuntingQuery", hunt.id, search_id), "dependsOn": [f"[{search_id}]"]}]


def _parser_metadata(function: str) -> dict[str, Any]:
    search_id = (
        f"resourceId('{SAVED_SEARCH_TYPE}', parameters('workspace'), '{render_functions.saved_search_name(function)}')"
    )
    return {**_metadata("Parser", function, search_id), "dependsOn": [f"[{search_id}]"]}


def _watchlist() -> list[dict[str, Any]]:
    """The exceptions watchlist, empty, as azure/exceptions-watchlist.json creates it (unless createWatchlist is
    false), and its metadata."""
    alias = render_watchlist.ALIAS
    condition = f"[parameters('{render_watchlist.CREATE_WATCHLIST}')]"
    resource = {
        "condition": condition,
        "type": f"{PROVIDER}/watchlists",
        "apiVersion": render_watchlist.WATCHLIST_API,
        "name": _sentinel_name(alias),
        "properties": render_watchlist.watchlist_properties(),
    }
    metadata = {**_metadata("Watchlist", alias, _extension_id("watchlists", alias)), "condition": condition,
                "dependsOn": [_extension_ref("watchlists", alias)]}  # fmt: skip
    return [resource, metadata]


def _data_connector() -> list[dict[str, Any]]:
    resource = {
        "type": f"{PROVIDER}/dataConnectors",
        "apiVersion": DATA_CONNECTOR_API,
        "name": _sentinel_name(solution.CONNECTOR_ID),
        "kind": "GenericUI",
        "properties": {"connectorUiConfig": connector.api_config()},
    }
    connector_id = _extension_id("dataConnectors", solution.CONNECTOR_ID)
    return [resource, {**_metadata("DataConnector", solution.CONNECTOR_ID, connector_id),
                       "dependsOn": [f"[{connector_id}]"]}]  # fmt: skip


def _workbook() -> list[dict[str, Any]]:
    resource = {
        "type": "Microsoft.Insights/workbooks",
        "apiVersion": render_workbook.WORKBOOK_API,
        "name": WORKBOOK_NAME,
        "location": "[parameters('workspace-location')]",
        "kind": "shared",
        "dependsOn": _function_ids(),
        "properties": {
            "displayName": "[parameters('workbookDisplayName')]",
            "serializedData": "[string(variables('workbookContent'))]",
            "version": "1.0",
            "sourceId": f"[{WORKSPACE_ID}]",
            "category": "sentinel",
        },
    }
    workbook_id = f"resourceId('Microsoft.Insights/workbooks', {WORKBOOK_NAME[1:-1]})"
    content_id = f"{solution.FILE_NAME}Workbook"
    return [resource, {**_metadata("Workbook", content_id, workbook_id), "dependsOn": [f"[{workbook_id}]"]}]


def _content_package() -> dict[str, Any]:
    analytic, hunting = rules.analytic_rules(), rules.hunting_queries()
    criteria = [
        {"kind": "DataConnector", "contentId": solution.CONNECTOR_ID, "version": solution.VERSION},
        {"kind": "Workbook", "contentId": f"{solution.FILE_NAME}Workbook", "version": solution.VERSION},
        *({"kind": "Parser", "contentId": name, "version": solution.VERSION} for name in queries.functions()),
        {"kind": "Watchlist", "contentId": render_watchlist.ALIAS, "version": solution.VERSION},
        *({"kind": "AnalyticsRule", "contentId": rule.id, "version": solution.VERSION} for rule in analytic),
        *({"kind": "HuntingQuery", "contentId": hunt.id, "version": solution.VERSION} for hunt in hunting),
    ]
    return {
        "type": f"{PROVIDER}/contentPackages",
        "apiVersion": CONTENT_PACKAGE_API,
        "name": _sentinel_name(solution.SOLUTION_ID),
        "location": "[parameters('workspace-location')]",
        "properties": {
            "version": solution.VERSION,
            "kind": "Solution",
            "contentSchemaVersion": "3.0.0",
            "displayName": solution.NAME,
            "publisherDisplayName": solution.PUBLISHER,
            "descriptionHtml": f"<p>{solution_description()}</p>",
            "contentKind": "Solution",
            "contentId": solution.SOLUTION_ID,
            "parentId": solution.SOLUTION_ID,
            "source": {"kind": "Solution", "name": solution.NAME, "sourceId": solution.SOLUTION_ID},
            "author": {"name": solution.PUBLISHER},
            "support": solution.SUPPORT,
            "dependencies": {"operator": "AND", "criteria": criteria},
            "firstPublishDate": solution.metadata()["firstPublishDate"],
            "lastPublishDate": solution.metadata()["lastPublishDate"],
            "providers": solution.metadata()["providers"],
            "categories": solution.metadata()["categories"],
        },
    }


def solution_description() -> str:
    return (
        "keyreport inventories AWS IAM users and access keys (one account or a whole Organization) into this "
        "workspace. This solution adds its data connector, workspace functions, analytics rules per compliance "
        "check (CIS AWS Foundations, AWS FSBP) with one alert per AWS account, hunting queries including where "
        "each key is used from (with AWSCloudTrail), and a workbook."
    )


def main_template() -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for name, columns in schema.tables().items():
        resources.append(_in_workspace(render_logs_ingestion.table_resource(name, columns)))
    for function in variants.sentinel_functions().values():
        resources.append(_in_workspace(render_functions.function_resource(function)))
        resources.append(_parser_metadata(function.id))
    resources.extend(_watchlist())
    for hunt in rules.hunting_queries():
        resources.extend(_hunting_query(hunt))
    for rule in rules.analytic_rules():
        resources.extend(_alert_rule(rule))
    resources.extend(_data_connector())
    resources.extend(_workbook())
    resources.append(_content_package())
    return arm.template(
        f"The {solution.NAME} Microsoft Sentinel solution {solution.VERSION}: {solution_description()}",
        __file__,
        parameters={
            "workspace": arm.parameter("string", "Name of the Log Analytics workspace where Microsoft Sentinel is on."),
            "workspace-location": arm.parameter(
                "string",
                "The workspace's region (for the workbook and the content package).",
                default=arm.RESOURCE_GROUP_LOCATION,
            ),
            "createTables": arm.parameter(
                "bool",
                "Create the three custom tables (false when azure/logs-ingestion.json already did, or when "
                "the HTTP Data Collector API created them as classic tables).",
                default=True,
            ),
            "retentionInDays": arm.parameter(
                "int", "Interactive retention of the tables.", default=90, minValue=4, maxValue=730
            ),
            render_watchlist.CREATE_WATCHLIST: render_watchlist.create_watchlist_parameter(),
            "enableAnalyticsRules": arm.parameter("bool", "Enable the analytics rules right away.", default=True),
            "workbookDisplayName": arm.parameter("string", default="keyreport: AWS IAM access keys"),
        },
        variables={"workbookContent": workbook.workbook("[subscription().id]", f"[{WORKSPACE_ID}]")},
        resources=resources,
    )


def create_ui_definition() -> dict[str, Any]:
    """The portal's install form: pick the workspace, choose whether to create the tables and enable the rules."""
    workspaces = "basics('getLAWorkspace').value"
    return {
        "$schema": "https://schema.management.azure.com/schemas/0.1.2-preview/CreateUIDefinition.MultiVm.json#",
        "handler": "Microsoft.Azure.CreateUIDef",
        "version": "0.1.2-preview",
        "parameters": {
            "config": {
                "isWizard": False,
                "basics": {
                    "description": f"**{solution.NAME}** {solution.VERSION}: {solution_description()}",
                    "location": {
                        "label": "Workspace location",
                        "toolTip": "The region of the Log Analytics workspace.",
                        "resourceTypes": ["microsoft.operationalinsights/workspaces"],
                    },
                },
            },
            "basics": [
                {
                    "name": "getLAWorkspace",
                    "type": "Microsoft.Solutions.ArmApiControl",
                    "toolTip": "The workspaces of the resource group",
                    "request": {
                        "method": "GET",
                        "path": "[format('{0}/providers/Microsoft.OperationalInsights/workspaces"
                        "?api-version=2020-08-01', resourceGroup().id)]",
                    },
                },
                {
                    "name": "workspace",
                    "type": "Microsoft.Common.DropDown",
                    "label": "Workspace",
                    "placeholder": "Select a workspace",
                    "toolTip": "The Log Analytics workspace Microsoft Sentinel is on, in this resource group.",
                    "constraints": {
                        "allowedValues": f"[map(filter({workspaces}, (w) => contains(toLower(w.id), "
                        'toLower(resourceGroup().name))), (w) => parse(concat(\'{"label":"\', w.name, '
                        '\'","value":"\', w.name, \'"}\')))]',
                        "required": True,
                    },
                    "visible": True,
                },
            ],
            "steps": [
                {
                    "name": "options",
                    "label": "Options",
                    "elements": [
                        {
                            "name": "createTables",
                            "type": "Microsoft.Common.CheckBox",
                            "label": "Create the keyreport tables",
                            "toolTip": "Leave off when azure/logs-ingestion.json already created them or the Data "
                            "Collector API did.",
                        },
                        {
                            "name": "enableAnalyticsRules",
                            "type": "Microsoft.Common.CheckBox",
                            "label": "Enable the analytics rules",
                        },
                    ],
                }
            ],
            "outputs": {
                "workspace": "[basics('workspace')]",
                "workspace-location": f"[first(map(filter({workspaces}, (w) => equals(w.name, basics('workspace'))), "
                "(w) => w.location))]",
                "createTables": "[steps('options').createTables]",
                "enableAnalyticsRules": "[steps('options').enableAnalyticsRules]",
            },
        },
    }
