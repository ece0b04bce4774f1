"""azure/logs-ingestion.json and azure/alerts.json against the resource schemas we can get offline: the models of
azure-mgmt-monitor and azure-mgmt-loganalytics, which Microsoft generates from the same REST specifications ARM
validates against. Every property the template sets must exist there (right name, right nesting, right JSON
type), must not be read-only, and enumerations (column types, table plan, alert operators ...) must hold one of
their values.

The alert rules are held to the scheduled query rule models of azure-mgmt-monitor 7, whose operations speak
api-version 2023-12-01: the stable specification (Azure/azure-rest-api-specs, specification/monitor/
resource-manager/Microsoft.Insights/stable/2023-12-01/scheduledQueryRule_API.json) has the same properties,
except that it calls the resolve settings `ruleResolveConfiguration` where the SDK says `resolveConfiguration`
(the rules set neither).

(The ARM template JSON schemas themselves are published on schema.management.azure.com only, not as a
PyPI or npm package, so this is the offline substitute; ARM expressions `[...]` are accepted for any value.)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from azure.core.exceptions import DeserializationError
from azure.mgmt.loganalytics import models as loganalytics
from azure.mgmt.monitor import models as monitor
from azure.mgmt.monitor._utils.serialization import Deserializer
from azure.mgmt.monitor.operations import _scheduled_query_rules_operations as scheduled_query_rules

from scripts import render_alerts, render_logs_ingestion

Problems = list[str]
# An ISO 8601 duration as the SDK reads one (isodate), for the models' `duration` properties.
read_duration: Callable[[str], timedelta] = Deserializer.deserialize_duration


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("[") and value.endswith("]")


def check_msrest(model: type[Any], data: dict[str, Any], path: str, problems: Problems) -> None:
    """`data` (a resource or a part of it) against an msrest model's attribute map, flattened keys included."""
    tree: dict[str, Any] = {}
    readonly = {name for name, rule in getattr(model, "_validation", {}).items() if rule.get("readonly")}
    for name, spec in model._attribute_map.items():
        node = tree
        *parents, leaf = spec["key"].replace("\\.", "\x00").split(".")
        for parent in parents:
            node = node.setdefault(parent.replace("\x00", "."), {})
        node[leaf.replace("\x00", ".")] = ("readonly" if name in readonly else spec["type"],)
    walk_tree(tree, data, path, problems)


def walk_tree(tree: dict[str, Any], data: dict[str, Any], path: str, problems: Problems) -> None:
    for key, value in data.items():
        where = f"{path}.{key}"
        if key not in tree:
            problems.append(f"{where}: no such property (known: {', '.join(sorted(tree))})")
        elif isinstance(tree[key], dict):
            if isinstance(value, dict):
                walk_tree(tree[key], value, where, problems)
            elif not is_expression(value):
                problems.append(f"{where}: expected an object")
        else:
            check_type(tree[key][0], value, where, problems)


def check_type(kind: str, value: Any, where: str, problems: Problems) -> None:
    if kind == "readonly":
        problems.append(f"{where}: read-only, set by Azure")
    elif is_expression(value) or value is None:
        return
    elif kind.startswith("[") and kind.endswith("]"):
        if not isinstance(value, list):
            problems.append(f"{where}: expected a list")
            return
        for index, item in enumerate(value):
            check_type(kind[1:-1], item, f"{where}[{index}]", problems)
    elif kind.startswith("{") and kind.endswith("}"):
        if not isinstance(value, dict):
            problems.append(f"{where}: expected a map")
            return
        for name, item in value.items():
            check_type(kind[1:-1], item, f"{where}.{name}", problems)
    elif kind == "duration":
        try:
            read_duration(value)
        except DeserializationError:
            problems.append(f"{where}: expected an ISO 8601 duration, got {value!r}")
    elif kind in {"str", "bool", "int", "float"}:
        types: dict[str, type | tuple[type, ...]] = {"str": str, "bool": bool, "int": int, "float": (int, float)}
        expected = types[kind]
        if not isinstance(value, expected):
            problems.append(f"{where}: expected {kind}, got {type(value).__name__}")
    elif hasattr(monitor, kind):
        if isinstance(value, dict):
            check_msrest(getattr(monitor, kind), value, where, problems)
        else:
            problems.append(f"{where}: expected an object ({kind})")
    else:
        problems.append(f"{where}: the model type {kind} is unknown to this check")


def check_rest_fields(model: type[Any], data: dict[str, Any], path: str, problems: Problems) -> None:
    """`data` against a TypeSpec-generated model (azure-mgmt-loganalytics): property names only."""
    model()  # the field table is built on first use
    known = {field._rest_name for field in model._attr_to_rest_field.values()}
    problems.extend(f"{path}.{key}: no such property" for key in data if key not in known)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(render_logs_ingestion.TEMPLATE_PATH.read_text())
    return loaded


def arm_body(resource: dict[str, Any]) -> dict[str, Any]:
    """The part of a template resource that is the REST body (ARM's own keys removed)."""
    arm_only = {"type", "apiVersion", "name", "condition", "dependsOn", "scope", "comments", "copy"}
    return {key: value for key, value in resource.items() if key not in arm_only}


@pytest.mark.parametrize(
    ("resource_type", "model"),
    [
        ("Microsoft.Insights/dataCollectionRules", monitor.DataCollectionRuleResource),
        ("Microsoft.Insights/dataCollectionEndpoints", monitor.DataCollectionEndpointResource),
    ],
)
def test_monitor_resources_match_the_rest_model(template: dict[str, Any], resource_type: str, model: type[Any]) -> None:
    [resource] = [r for r in template["resources"] if r["type"] == resource_type]
    problems: Problems = []
    check_msrest(model, arm_body(resource), resource_type, problems)
    assert problems == []


def test_stream_column_types_are_the_rules_column_types(template: dict[str, Any]) -> None:
    [rule] = [r for r in template["resources"] if r["type"] == "Microsoft.Insights/dataCollectionRules"]
    allowed = {kind.value for kind in monitor.KnownColumnDefinitionType}
    for stream, declaration in rule["properties"]["streamDeclarations"].items():
        for column in declaration["columns"]:
            assert column["type"] in allowed, f"{stream}.{column['name']}: {column['type']} not in {sorted(allowed)}"


def test_tables_match_the_rest_model(template: dict[str, Any]) -> None:
    tables = [r for r in template["resources"] if r["type"] == "Microsoft.OperationalInsights/workspaces/tables"]
    assert len(tables) == 3
    column_types = {kind.value for kind in loganalytics.ColumnTypeEnum}
    plans = {plan.value for plan in loganalytics.TablePlanEnum}
    problems: Problems = []
    for table in tables:
        body = arm_body(table)
        assert set(body) == {"properties"}
        properties = body["properties"]
        check_rest_fields(loganalytics.TableProperties, properties, "properties", problems)
        check_rest_fields(loganalytics.Schema, properties["schema"], "properties.schema", problems)
        for column in properties["schema"]["columns"]:
            check_rest_fields(loganalytics.Column, column, f"column {column['name']}", problems)
            if column["type"] not in column_types:
                problems.append(f"column {column['name']}: type {column['type']} not in {sorted(column_types)}")
        if properties["plan"] not in plans:
            problems.append(f"plan {properties['plan']} not in {sorted(plans)}")
    assert problems == []


# -- alert rules (azure/alerts.json) ----------------------------------------------------------------------

ALERT_TYPE = "Microsoft.Insights/scheduledQueryRules"


@pytest.fixture(scope="module")
def alert_rules() -> list[dict[str, Any]]:
    loaded = json.loads(render_alerts.ALERTS_TEMPLATE_PATH.read_text())
    rules: list[dict[str, Any]] = loaded["resources"]
    assert rules and all(rule["type"] == ALERT_TYPE for rule in rules)
    return rules


def values(enum: Any) -> set[Any]:
    return {member.value for member in enum}


def alert_problems(rule: dict[str, Any]) -> Problems:
    """One rule's body against the model, plus the enumerations and the properties a LogAlert requires."""
    problems: Problems = []
    check_msrest(monitor.ScheduledQueryRuleResource, arm_body(rule), "rule", problems)
    if rule.get("kind") not in values(monitor.Kind):
        problems.append(f"rule.kind: {rule.get('kind')!r} not in {sorted(values(monitor.Kind))}")
    properties = rule.get("properties", {})
    # Required by the specification (the resource's location and properties; enabled, criteria, scopes) and,
    # for kind LogAlert, "relevant and required": severity, evaluationFrequency, windowSize and per condition
    # timeAggregation, operator, threshold.
    required = ["enabled", "criteria", "scopes", "severity", "evaluationFrequency", "windowSize"]
    problems += [f"rule: lacks {key}" for key in ("location", "properties") if key not in rule]
    problems += [f"rule.properties: lacks {key}" for key in required if key not in properties]
    if properties.get("severity") not in values(monitor.AlertSeverity):
        problems.append(f"rule.properties.severity: {properties.get('severity')!r} not in 0..4")
    for index, condition in enumerate(properties.get("criteria", {}).get("allOf", [])):
        where = f"rule.properties.criteria.allOf[{index}]"
        problems += [
            f"{where}: lacks {key}" for key in ("timeAggregation", "operator", "threshold") if key not in condition
        ]
        for key, enum in (("timeAggregation", monitor.TimeAggregation), ("operator", monitor.ConditionOperator)):
            if key in condition and condition[key] not in values(enum):
                problems.append(f"{where}.{key}: {condition[key]!r} not in {sorted(values(enum))}")
        for number, dimension in enumerate(condition.get("dimensions", [])):
            problems += [
                f"{where}.dimensions[{number}]: lacks {key}"
                for key in ("name", "operator", "values")
                if key not in dimension
            ]
            if dimension.get("operator") not in values(monitor.DimensionOperator):
                problems.append(f"{where}.dimensions[{number}].operator: {dimension.get('operator')!r}")
    return problems


def test_alert_rules_speak_the_stable_api_the_models_describe(alert_rules: list[dict[str, Any]]) -> None:
    request = scheduled_query_rules.build_create_or_update_request(
        resource_group_name="rg", rule_name="rule", subscription_id="00000000-0000-0000-0000-000000000000"
    )
    assert request.url.endswith("?api-version=2023-12-01")  # the version the installed models are generated for
    assert {rule["apiVersion"] for rule in alert_rules} == {"2023-12-01"} == {render_alerts.ALERT_API}


def test_alert_rules_match_the_rest_model(alert_rules: list[dict[str, Any]]) -> None:
    assert {rule["name"]: alert_problems(rule) for rule in alert_rules} == {rule["name"]: [] for rule in alert_rules}


def test_the_alert_check_catches_what_it_is_for(alert_rules: list[dict[str, Any]]) -> None:
    rule = json.loads(json.dumps(alert_rules[0]))
    properties = rule["properties"]
    properties["windowSize"] = "two days"
    properties["isLegacyLogAnalyticsRule"] = False
    properties["autoResolve"] = True
    del properties["severity"]
    condition = properties["criteria"]["allOf"][0]
    condition["operator"] = "GreaterThanOrEquals"
    condition["timeAggregation"] = "Sum"
    condition["dimensions"][0]["operator"] = "In"
    rule["kind"] = "LogSearch"
    text = "\n".join(alert_problems(rule))
    assert "rule.properties.windowSize: expected an ISO 8601 duration, got 'two days'" in text
    assert "rule.properties.isLegacyLogAnalyticsRule: read-only" in text
    assert "rule.properties.autoResolve: no such property" in text
    assert "rule.properties: lacks severity" in text and "rule.properties.severity: None not in 0..4" in text
    assert "allOf[0].operator: 'GreaterThanOrEquals' not in" in text
    assert "allOf[0].timeAggregation: 'Sum' not in" in text
    assert "allOf[0].dimensions[0].operator: 'In'" in text
    assert "rule.kind: 'LogSearch' not in" in text


def test_the_check_catches_what_it_is_for() -> None:
    """A misspelt property, a read-only one, a wrong nesting and a wrong type are all reported."""
    problems: Problems = []
    bad = {
        "location": "westeurope",
        "properties": {
            "dataFlows": [{"streams": ["Custom-X"], "transformKQL": "source"}],
            "immutableId": "dcr-0",
            "streamDeclarations": {"Custom-X": {"columns": "not a list"}},
        },
        "dataFlows": [],
    }
    check_msrest(monitor.DataCollectionRuleResource, bad, "dcr", problems)
    text = "\n".join(problems)
    assert "dcr.properties.dataFlows[0].transformKQL: no such property" in text
    assert "dcr.properties.immutableId: read-only" in text
    assert "dcr.properties.streamDeclarations.Custom-X.columns: expected a list" in text
    assert "dcr.dataFlows: no such property" in text
