"""Renders azure/logs-ingestion.json (tables, DCE, DCR, role) from queries/schema.json, the columns' one source.

`make render` writes the template; tests/azure/test_templates.py fails when the checked-in file differs from
what this renders (or when either disagrees with records.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scripts import arm, schema

TEMPLATE_PATH = arm.ROOT / "azure" / "logs-ingestion.json"

DCR_API = "2023-03-11"
TABLE_API = "2022-10-01"
ROLE_API = "2022-04-01"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"
DESTINATION = "workspace"
TABLE_TYPE = "Microsoft.OperationalInsights/workspaces/tables"
WORKSPACE_ID = "resourceId('Microsoft.OperationalInsights/workspaces', parameters('workspaceName'))"
CREATE_DCE = "parameters('createDataCollectionEndpoint')"
# ARM expressions (without the enclosing brackets) for the ids of the rule and the endpoint.
RULE_ID = "resourceId('Microsoft.Insights/dataCollectionRules', parameters('dataCollectionRuleName'))"
ENDPOINT_ID = "resourceId('Microsoft.Insights/dataCollectionEndpoints', parameters('dataCollectionEndpointName'))"

# Log Analytics (query) type -> type in a table resource's schema / in a DCR stream declaration.
# A stream has no guid type: the value arrives as a string and the transformation makes it a guid.
TABLE_TYPES = {"string": "string", "real": "real", "bool": "boolean", "datetime": "dateTime", "guid": "guid"}
STREAM_TYPES = {"string": "string", "real": "real", "bool": "boolean", "datetime": "datetime", "guid": "string"}

Tables = dict[str, list[dict[str, Any]]]


def transform(columns: list[dict[str, Any]]) -> str:
    """`source`, plus a toguid() for each guid column (the stream carries it as a string)."""
    guids = [column["name"] for column in columns if column["type"] == "guid"]
    if not guids:
        return "source"
    return "source | extend " + ", ".join(f"{name} = toguid({name})" for name in guids)


def table_resource(name: str, columns: list[dict[str, Any]]) -> dict[str, Any]:
    """A custom table with every column of schema.json, created unless createTables is false."""
    return {
        "condition": "[parameters('createTables')]",
        "type": TABLE_TYPE,
        "apiVersion": TABLE_API,
        "name": f"[format('{{0}}/{{1}}', parameters('workspaceName'), '{name}')]",
        "properties": {
            "plan": "Analytics",
            "retentionInDays": "[parameters('retentionInDays')]",
            "schema": {
                "name": name,
                "description": f"keyreport: {name}",
                "columns": [
                    {"name": c["name"], "type": TABLE_TYPES[c["type"]], "description": c["description"]}
                    for c in columns
                ],
            },
        },
    }


def _parameters() -> dict[str, dict[str, Any]]:
    return {
        "workspaceName": arm.parameter(
            "string", "Name of the existing Log Analytics workspace (in this resource group)."
        ),
        "location": arm.location_parameter("Region of the rule and endpoint: the workspace's region."),
        "principalId": arm.parameter(
            "string",
            "Object id of the service principal keyreport signs in as (Enterprise applications > the app > "
            "Object ID), not the application (client) id.",
        ),
        "principalType": arm.parameter(
            "string", default="ServicePrincipal", allowedValues=["ServicePrincipal", "User", "Group"]
        ),
        "dataCollectionRuleName": arm.parameter("string", default="keyreport-dcr"),
        "createDataCollectionEndpoint": arm.parameter(
            "bool",
            "A kind:Direct rule has its own ingestion endpoint; create a DCE only when network policy (private "
            "link) requires one.",
            default=False,
        ),
        "dataCollectionEndpointName": arm.parameter("string", default="keyreport-dce"),
        "createTables": arm.parameter(
            "bool",
            "false when the tables exist already (e.g. migrated from the Data Collector API, see docs/migration.md).",
            default=True,
        ),
        "retentionInDays": arm.parameter(
            "int",
            "Table retention in days (4-730); -1 keeps the workspace default.",
            default=-1,
            minValue=-1,
            maxValue=730,
        ),
    }


def _data_collection_rule(tables: Tables) -> dict[str, Any]:
    """A kind:Direct rule: one stream per table, each transformed into its table."""
    return {
        "type": "Microsoft.Insights/dataCollectionRules",
        "apiVersion": DCR_API,
        "name": "[parameters('dataCollectionRuleName')]",
        "location": "[parameters('location')]",
        "kind": "Direct",
        "dependsOn": [
            *(f"[resourceId('{TABLE_TYPE}', parameters('workspaceName'), '{name}')]" for name in tables),
            f"[{ENDPOINT_ID}]",
        ],
        "properties": {
            "description": "keyreport: AWS IAM access key records, run summaries and IAM users",
            "dataCollectionEndpointId": f"[if({CREATE_DCE}, {ENDPOINT_ID}, null())]",
            "streamDeclarations": {
                f"Custom-{name}": {"columns": [{"name": c["name"], "type": STREAM_TYPES[c["type"]]} for c in columns]}
                for name, columns in tables.items()
            },
            "destinations": {
                "logAnalytics": [{"workspaceResourceId": "[variables('workspaceResourceId')]", "name": DESTINATION}]
            },
            "dataFlows": [
                {
                    "streams": [f"Custom-{name}"],
                    "destinations": [DESTINATION],
                    "transformKql": transform(columns),
                    "outputStream": f"Custom-{name}",
                }
                for name, columns in tables.items()
            ],
        },
    }


def _resources(tables: Tables) -> list[dict[str, Any]]:
    return [
        *(table_resource(name, columns) for name, columns in tables.items()),
        {
            "condition": f"[{CREATE_DCE}]",
            "type": "Microsoft.Insights/dataCollectionEndpoints",
            "apiVersion": DCR_API,
            "name": "[parameters('dataCollectionEndpointName')]",
            "location": "[parameters('location')]",
            "properties": {"networkAcls": {"publicNetworkAccess": "Enabled"}},
        },
        _data_collection_rule(tables),
        {
            "type": "Microsoft.Authorization/roleAssignments",
            "apiVersion": ROLE_API,
            "scope": "[format('Microsoft.Insights/dataCollectionRules/{0}', parameters('dataCollectionRuleName'))]",
            "name": f"[guid({RULE_ID}, parameters('principalId'), variables('monitoringMetricsPublisher'))]",
            "dependsOn": [f"[{RULE_ID}]"],
            "properties": {
                "roleDefinitionId": "[variables('monitoringMetricsPublisher')]",
                "principalId": "[parameters('principalId')]",
                "principalType": "[parameters('principalType')]",
            },
        },
    ]


def _outputs(tables: Tables) -> dict[str, Any]:
    return {
        "dataCollectionRuleImmutableId": {
            "type": "string",
            "value": f"[reference({RULE_ID}, '{DCR_API}').immutableId]",
        },
        "logsIngestionEndpoint": {
            "type": "string",
            "value": (
                f"[if({CREATE_DCE}, reference({ENDPOINT_ID}, '{DCR_API}')"
                f".logsIngestion.endpoint, reference({RULE_ID}, '{DCR_API}').endpoints.logsIngestion)]"
            ),
        },
        **{
            f"{role}Stream": {"type": "string", "value": f"Custom-{name}"}
            for role, name in zip(("keys", "runs", "users"), tables, strict=True)
        },
    }


def render() -> dict[str, Any]:
    """The whole deployment template."""
    tables = schema.tables()
    return arm.template(
        "keyreport, Logs Ingestion API side: the custom tables (full schema from queries/schema.json), an "
        "optional data collection endpoint, a kind:Direct data collection rule with one stream per table, and "
        "the Monitoring Metrics Publisher role on the rule for the app's service principal. Deploy into the "
        "workspace's resource group.",
        __file__,
        parameters=_parameters(),
        variables={
            "workspaceResourceId": f"[{WORKSPACE_ID}]",
            "monitoringMetricsPublisher": (
                f"[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '{MONITORING_METRICS_PUBLISHER}')]"
            ),
        },
        resources=_resources(tables),
        outputs=_outputs(tables),
    )


def rendered() -> dict[Path, str]:
    """The file this module generates, and its content."""
    return {TEMPLATE_PATH: arm.json_text(render())}
