"""The Microsoft.SecurityInsights request bodies the package deploys, as the REST API specification
(azure-rest-api-specs, specification/securityinsights/.../preview/2023-12-01-preview: AlertRules.json,
dataConnectors.json) defines them: which properties exist, which are required, which values an enumeration
takes. No Python SDK carries these API versions, so the shapes are written down here from the specification
and `problems` walks a body against them (ARM expressions `[...]` are accepted for any value).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

DURATION = re.compile(r"^P(?!$)(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$")


@dataclass(frozen=True)
class Shape:
    """An object: its properties (name -> Shape of the value, or a leaf kind), required ones, item shape."""

    properties: dict[str, Any] = field(default_factory=dict)
    required: tuple[str, ...] = ()


@dataclass(frozen=True)
class Leaf:
    kind: str  # str, bool, int, duration, list[str], map[str], list (of an object Shape in `item`)
    enum: tuple[Any, ...] = ()
    item: Shape | None = None


STR, BOOL, INT, DUR = Leaf("str"), Leaf("bool"), Leaf("int"), Leaf("duration")
STRINGS, STRING_MAP = Leaf("list[str]"), Leaf("map[str]")
ENTITY_TYPES = (
    "Account", "Host", "IP", "Malware", "File", "Process", "CloudApplication", "DNS", "AzureResource", "FileHash",
    "RegistryKey", "RegistryValue", "SecurityGroup", "URL", "Mailbox", "MailCluster", "MailMessage", "SubmissionMail",
)  # fmt: skip
SEVERITY = Leaf("str", ("High", "Medium", "Low", "Informational"))

GROUPING = Shape(
    {
        "enabled": BOOL,
        "reopenClosedIncident": BOOL,
        "lookbackDuration": DUR,
        "matchingMethod": Leaf("str", ("AllEntities", "AnyAlert", "Selected")),
        "groupByEntities": Leaf("list[str]", ENTITY_TYPES),
        "groupByAlertDetails": Leaf("list[str]", ("DisplayName", "Severity")),
        "groupByCustomDetails": STRINGS,
    },
    ("enabled", "reopenClosedIncident", "lookbackDuration", "matchingMethod"),
)
SCHEDULED_RULE = Shape(
    {
        "alertRuleTemplateName": STR, "templateVersion": STR, "description": STR, "displayName": STR,
        "enabled": BOOL, "suppressionDuration": DUR, "suppressionEnabled": BOOL,
        "tactics": Leaf("list[str]", (
            "Reconnaissance", "ResourceDevelopment", "InitialAccess", "Execution", "Persistence",
            "PrivilegeEscalation", "DefenseEvasion", "CredentialAccess", "Discovery", "LateralMovement", "Collection",
            "Exfiltration", "CommandAndControl", "Impact", "PreAttack", "ImpairProcessControl",
            "InhibitResponseFunction")),
        "techniques": STRINGS, "subTechniques": STRINGS,
        "incidentConfiguration": Shape(
            {"createIncident": BOOL, "groupingConfiguration": GROUPING}, ("createIncident",)),
        "query": STR, "queryFrequency": DUR, "queryPeriod": DUR, "severity": SEVERITY,
        "triggerOperator": Leaf("str", ("GreaterThan", "LessThan", "Equal", "NotEqual")),
        "triggerThreshold": INT,
        "eventGroupingSettings": Shape({"aggregationKind": Leaf("str", ("SingleAlert", "AlertPerResult"))}),
        "customDetails": STRING_MAP,
        "entityMappings": Leaf("list", item=Shape({
            "entityType": Leaf("str", ENTITY_TYPES),
            "fieldMappings": Leaf("list", item=Shape({"identifier": STR, "columnName": STR})),
        })),
        "alertDetailsOverride": Shape({
            "alertDisplayNameFormat": STR, "alertDescriptionFormat": STR, "alertTacticsColumnName": STR,
            "alertSeverityColumnName": STR, "alertDynamicProperties": Leaf("list", item=Shape({
                "alertProperty": STR, "value": STR})),
        }),
        "sentinelEntitiesMappings": Leaf("list", item=Shape({"columnName": STR})),
    },
    ("displayName", "enabled", "severity", "query", "queryFrequency", "queryPeriod", "triggerOperator",
     "triggerThreshold", "suppressionEnabled", "suppressionDuration"),
)  # fmt: skip
CONNECTOR_UI = Shape(
    {
        "title": STR, "publisher": STR, "descriptionMarkdown": STR, "customImage": STR, "graphQueriesTableName": STR,
        "graphQueries": Leaf("list", item=Shape({"metricName": STR, "legend": STR, "baseQuery": STR})),
        "sampleQueries": Leaf("list", item=Shape({"description": STR, "query": STR})),
        "dataTypes": Leaf("list", item=Shape({"name": STR, "lastDataReceivedQuery": STR})),
        "connectivityCriteria": Leaf("list", item=Shape({
            "type": Leaf("str", ("IsConnectedQuery",)), "value": STRINGS})),
        "availability": Shape({"status": Leaf("int", (1,)), "isPreview": BOOL}),
        "permissions": Shape({
            "resourceProvider": Leaf("list", item=Shape({
                "provider": Leaf("str", (
                    "Microsoft.OperationalInsights/solutions", "Microsoft.OperationalInsights/workspaces",
                    "Microsoft.OperationalInsights/workspaces/datasources", "microsoft.aadiam/diagnosticSettings",
                    "Microsoft.OperationalInsights/workspaces/sharedKeys",
                    "Microsoft.Authorization/policyAssignments")),
                "permissionsDisplayText": STR, "providerDisplayName": STR,
                "scope": Leaf("str", ("ResourceGroup", "Subscription", "Workspace")),
                "requiredPermissions": Shape({"action": BOOL, "write": BOOL, "read": BOOL, "delete": BOOL}),
            })),
            "customs": Leaf("list", item=Shape({"name": STR, "description": STR})),
        }),
        "instructionSteps": Leaf("list", item=Shape({
            "title": STR, "description": STR, "instructions": Leaf("list", item=Shape({
                "parameters": Leaf("object"),
                "type": Leaf("str", ("CopyableLabel", "InstructionStepsGroup", "InfoMessage"))}, ("type",))),
        })),
    },
    ("title", "publisher", "descriptionMarkdown", "graphQueriesTableName", "graphQueries", "sampleQueries",
     "dataTypes", "connectivityCriteria", "availability", "permissions", "instructionSteps"),
)  # fmt: skip
GENERIC_UI_CONNECTOR = Shape({"connectorUiConfig": CONNECTOR_UI})


def _expression(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("[") and value.endswith("]")


def problems(shape: Shape, body: Any, where: str = "properties") -> list[str]:
    """Every property `body` sets that the shape lacks, every required one missing, every value of a wrong kind."""
    found: list[str] = []
    if _expression(body):
        return found
    if not isinstance(body, dict):
        return [f"{where}: expected an object"]
    found += [f"{where}.{name}: required" for name in shape.required if name not in body]
    for name, value in body.items():
        if name not in shape.properties:
            found.append(f"{where}.{name}: no such property (known: {', '.join(sorted(shape.properties))})")
            continue
        expected = shape.properties[name]
        if isinstance(expected, Shape):
            found += problems(expected, value, f"{where}.{name}")
        else:
            found += _leaf(expected, value, f"{where}.{name}")
    return found


def _leaf(leaf: Leaf, value: Any, where: str) -> list[str]:
    if _expression(value):
        return []
    if leaf.kind == "list":
        if not isinstance(value, list):
            return [f"{where}: expected a list"]
        assert leaf.item is not None
        return [p for index, item in enumerate(value) for p in problems(leaf.item, item, f"{where}[{index}]")]
    if leaf.kind == "list[str]":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return [f"{where}: expected a list of strings"]
        return [f"{where}: {v!r} is not one of {leaf.enum}" for v in value if leaf.enum and v not in leaf.enum]
    if leaf.kind == "map[str]":
        ok = isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
        return [] if ok else [f"{where}: expected a map of strings"]
    if leaf.kind == "object":
        return [] if isinstance(value, dict) else [f"{where}: expected an object"]
    kinds: dict[str, type | tuple[type, ...]] = {"str": str, "bool": bool, "int": int, "duration": str}
    if not isinstance(value, kinds[leaf.kind]) or (leaf.kind == "int" and isinstance(value, bool)):
        return [f"{where}: expected {leaf.kind}, got {type(value).__name__}"]
    if leaf.kind == "duration" and not DURATION.fullmatch(value):
        return [f"{where}: {value!r} is not an ISO 8601 duration"]
    if leaf.enum and value not in leaf.enum:
        return [f"{where}: {value!r} is not one of {leaf.enum}"]
    return []


def rule_problems(properties: dict[str, Any]) -> list[str]:
    """A Scheduled alertRules body: the shape, and the API's rule that Selected grouping names what it groups by."""
    found = problems(SCHEDULED_RULE, properties)
    grouping = properties.get("incidentConfiguration", {}).get("groupingConfiguration", {})
    if grouping.get("matchingMethod") == "Selected" and not any(
        grouping.get(key) for key in ("groupByEntities", "groupByAlertDetails", "groupByCustomDetails")
    ):
        found.append(
            "groupingConfiguration: Selected needs groupByEntities, groupByAlertDetails or groupByCustomDetails"
        )
    keys = set(properties.get("customDetails") or {})
    unknown = set(grouping.get("groupByCustomDetails") or []) - keys
    if unknown:
        found.append(f"groupingConfiguration: groups by custom details the rule does not define: {sorted(unknown)}")
    return found


METADATA = Shape(
    {
        "contentId": STR, "parentId": STR, "version": STR,
        "kind": Leaf("str", (
            "DataConnector", "DataType", "Workbook", "WorkbookTemplate", "Playbook", "PlaybookTemplate",
            "AnalyticsRuleTemplate", "AnalyticsRule", "HuntingQuery", "InvestigationQuery", "Parser", "Watchlist",
            "WatchlistTemplate", "Solution", "AzureFunction", "LogicAppsCustomConnector", "AutomationRule")),
        "source": Shape({"kind": Leaf("str", ("LocalWorkspace", "Community", "Solution", "SourceRepository")),
                         "name": STR, "sourceId": STR}, ("kind",)),
        "author": Shape({"name": STR, "email": STR, "link": STR}),
        "support": Shape({"tier": Leaf("str", ("Microsoft", "Partner", "Community")), "name": STR, "email": STR,
                          "link": STR}, ("tier",)),
        "dependencies": Leaf("object"), "categories": Shape({"domains": STRINGS, "verticals": STRINGS}),
        "providers": STRINGS, "firstPublishDate": STR, "lastPublishDate": STR, "customVersion": STR,
        "contentSchemaVersion": STR, "icon": STR, "threatAnalysisTactics": STRINGS,
        "threatAnalysisTechniques": STRINGS, "previewImages": STRINGS, "previewImagesDark": STRINGS,
    },
    ("parentId", "kind"),
)  # fmt: skip
