"""azure/logs-ingestion.json against the resource schemas we can get offline: the models of azure-mgmt-monitor
and azure-mgmt-loganalytics, which Microsoft generates from the same REST specifications ARM validates
against. Every property the template sets must exist there (right name, right nesting, right JSON type),
must not be read-only, and enumerations (column types, table plan) must hold one of their values.

(The ARM template JSON schemas themselves are published on schema.management.azure.com only, not as a
PyPI or npm package, so this is the offline substitute; ARM expressions `[...]` are accepted for any value.)
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.mgmt.loganalytics import models as loganalytics
from azure.mgmt.monitor import models as monitor

from scripts import render_logs_ingestion

Problems = list[str]


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
    elif kind in {"str", "bool", "int", "float"}:
        expected = {"str": str, "bool": bool, "int": int, "float": (int, float)}[kind]
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
