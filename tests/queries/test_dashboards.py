"""The workbook and the alert rules: generated from the library, well-formed, and every query analysed."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from keyreport import queries
from keyreport.queries import compliance
from scripts import arm, render, render_alerts, render_workbook
from tests.queries import kusto
from tests.queries.conftest import embedded_queries

LIBRARY = queries.library()
ISO_DURATION = re.compile(r"^P(?:\d+D)?(?:T(?:\d+H)?(?:\d+M)?)?$")
SENTINEL_SPAN = re.compile(r"^(\d+)([mhd])$")
SENTINEL_TACTICS = {
    "Reconnaissance", "ResourceDevelopment", "InitialAccess", "Execution", "Persistence", "PrivilegeEscalation",
    "DefenseEvasion", "CredentialAccess", "Discovery", "LateralMovement", "Collection", "Exfiltration",
    "CommandAndControl", "Impact", "PreAttack", "ImpairProcessControl", "InhibitResponseFunction",
}  # fmt: skip
PARAMETER_REFERENCE = re.compile(r"parameters\('([^']+)'\)")
ARM_EXPRESSION = re.compile(r"^\[(?!\[).*\]$", re.DOTALL)


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def load(path: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def query_items(workbook: dict[str, Any]) -> list[dict[str, Any]]:
    return [item for item in workbook["items"] if item["type"] == 3]


RENDERED = {**render_workbook.rendered(), **render_alerts.rendered()}


@pytest.mark.parametrize("path", sorted(RENDERED, key=str), ids=lambda p: p.name)
def test_checked_in_files_are_what_the_generator_renders(path: Any) -> None:
    assert path.read_text() == RENDERED[path], f"{path} is stale: run `{render.COMMAND}` after changing queries/*.kql"


@pytest.mark.parametrize("where", sorted(embedded_queries()))
def test_every_embedded_query_passes_the_kusto_analyser(where: str, analysis: dict[str, kusto.Analysis]) -> None:
    assert not analysis[where].errors, "\n" + analysis[where].error_report()


def test_every_embedded_query_is_a_library_query_verbatim() -> None:
    texts = {query.text for query in LIBRARY.values()}
    for where, text in embedded_queries().items():
        assert text in texts, f"{where} is not a library query"


# -- workbook -------------------------------------------------------------------------------------------


def test_workbook_is_a_gallery_template_with_a_time_range() -> None:
    workbook = load(render_workbook.WORKBOOK_PATH)
    assert workbook["version"] == "Notebook/1.0"
    [parameters] = [item for item in workbook["items"] if item["type"] == 9]
    time_range, tab = parameters["content"]["parameters"]
    assert (tab["name"], tab["value"], tab["isHiddenWhenLocked"]) == ("tab", "keys", True)  # the first tab shows
    assert time_range["name"] == "TimeRange" and time_range["type"] == 4 and time_range["isRequired"]
    assert time_range["value"]["durationMs"] >= 86_400_000  # a daily run must fall in the default range
    uuid.UUID(time_range["id"])
    for item in query_items(workbook):
        content = item["content"]
        assert content["version"] == "KqlItem/1.0" and content["queryType"] == 0
        assert content["resourceType"] == "microsoft.operationalinsights/workspaces"
        query = LIBRARY[item["name"]]
        if "KeyReport_CurrentRuns" in queries.calls(query.text):
            # "Current" does not follow the picker: the state tiles run over their own range (the look-back).
            assert "timeContextFromParameter" not in content, item["name"]
            assert content["timeContext"]["durationMs"] == query.timespan.total_seconds() * 1000 >= 30 * 86_400_000
        else:
            assert content["timeContextFromParameter"] == "TimeRange", item["name"]
        assert content["query"] == query.text
        assert content["visualization"] == LIBRARY[item["name"]].visualization


def test_workbook_has_the_panels_the_issue_asks_for() -> None:
    shown = {
        item["name"]: item["content"]["visualization"] for item in query_items(load(render_workbook.WORKBOOK_PATH))
    }
    assert shown["rotation-due"] == "table"
    assert shown["stale-keys"] == "table" and shown["never-used"] == "table"
    assert shown["key-creations-per-day"] == "timechart"
    assert shown["account-compliance"] == "tiles"
    assert {"ingestion-stopped", "ingestion-last-run", "rotation-compliance", "root-keys"} <= set(shown)


def test_workbook_settings_name_columns_the_query_returns(analysis: dict[str, kusto.Analysis]) -> None:
    for item in query_items(load(render_workbook.WORKBOOK_PATH)):
        content, columns = item["content"], analysis[item["name"]].column_names
        tiles = content.get("tileSettings", {})
        referenced = [
            part["columnMatch"] for part in tiles.values() if isinstance(part, dict) and "columnMatch" in part
        ]
        chart = content.get("chartSettings", {})
        referenced += [chart[key] for key in ("xAxis", "group") if key in chart] + chart.get("yAxis", [])
        for column in referenced:
            assert column in columns, f"{item['name']}: {column} is not among {columns}"


def test_workbook_arm_template_deploys_the_same_workbook() -> None:
    template = load(render_workbook.WORKBOOK_TEMPLATE_PATH)
    assert template["$schema"] == arm.ARM_SCHEMA and template["contentVersion"]
    [resource] = template["resources"]
    assert resource["type"] == "Microsoft.Insights/workbooks" and resource["kind"] == "shared"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", resource["apiVersion"])
    properties = resource["properties"]
    assert properties["serializedData"] == "[string(variables('workbookContent'))]"
    assert properties["sourceId"] == "[parameters('workspaceResourceId')]" and properties["category"] == "workbook"
    content = template["variables"]["workbookContent"]
    assert content["fallbackResourceIds"] == ["[parameters('workspaceResourceId')]"]
    assert {**content, "fallbackResourceIds": []} == load(render_workbook.WORKBOOK_PATH)


@pytest.mark.parametrize("path", [render_workbook.WORKBOOK_TEMPLATE_PATH, render_alerts.ALERTS_TEMPLATE_PATH], ids=str)
def test_arm_templates_reference_only_declared_parameters(path: Any) -> None:
    template = load(path)
    expressions = [text for text in strings(template) if ARM_EXPRESSION.fullmatch(text)]
    referenced = {name for text in expressions for name in PARAMETER_REFERENCE.findall(text)}
    assert referenced <= set(template["parameters"]), referenced - set(template["parameters"])
    # A query or a text that began with "[" would be evaluated by ARM: only intended expressions do.
    for text in expressions:
        assert text.startswith(
            ("[parameters(", "[format(", "[string(", "[newGuid(", "[resourceGroup(", "[resourceId(")
        ), text


# -- alert rules ----------------------------------------------------------------------------------------


def test_alert_rules_cover_root_keys_old_keys_and_a_stopped_collector() -> None:
    assert {alert.query for alert in render_alerts.ALERTS} >= {"root-keys", "rotation-due", "ingestion-stopped"}


@pytest.mark.parametrize("alert", render_alerts.ALERTS, ids=lambda alert: alert.name)
def test_rules_carry_the_query_headers_severity_controls_and_remediation(alert: render_alerts.Alert) -> None:
    query = LIBRARY[alert.query]
    [resource] = [r for r in load(render_alerts.ALERTS_TEMPLATE_PATH)["resources"] if alert.name in r["name"]]
    level = query.severity or alert.severity
    assert resource["properties"]["severity"] == render_alerts.MONITOR_SEVERITY[str(level)]
    if query.controls:
        assert alert.severity is None, "the query header names the severity: the rule must not name another"
        description = resource["properties"]["description"]
        assert f"Controls: {', '.join(query.controls)}." in description
        assert description.endswith(f"Remediation: {query.remediation}")


def test_a_rule_without_any_severity_is_refused() -> None:
    rule = render_alerts.Alert("ingestion-stopped", "x", "x", "x")
    with pytest.raises(ValueError, match="alert x: neither the query header nor the rule names a severity"):
        rule.level()


def test_alert_rules_are_well_formed_log_search_alerts(analysis: dict[str, kusto.Analysis]) -> None:
    template = load(render_alerts.ALERTS_TEMPLATE_PATH)
    assert template["$schema"] == arm.ARM_SCHEMA
    by_text = {query.text: query.id for query in LIBRARY.values()}
    for resource in template["resources"]:
        assert resource["type"] == "Microsoft.Insights/scheduledQueryRules" and resource["kind"] == "LogAlert"
        assert resource["apiVersion"] in ("2021-08-01", "2023-03-15-preview")
        properties = resource["properties"]
        assert properties["displayName"] and properties["description"]
        assert properties["severity"] in range(5)
        assert properties["scopes"] == ["[parameters('workspaceResourceId')]"]
        for key in ("evaluationFrequency", "windowSize", "overrideQueryTimeRange"):
            assert ISO_DURATION.fullmatch(properties[key]), (key, properties[key])
        frequency, window, span = (
            queries.parse_duration(properties[key])
            for key in ("evaluationFrequency", "windowSize", "overrideQueryTimeRange")
        )
        assert frequency <= window <= span <= queries.parse_duration("P14D")
        [condition] = properties["criteria"]["allOf"]
        assert condition["timeAggregation"] == "Count" and condition["operator"] == "GreaterThan"
        assert condition["threshold"] == 0
        columns = analysis[by_text[condition["query"]]].column_names
        for dimension in condition["dimensions"]:
            assert dimension["name"] in columns and dimension["operator"] == "Include"
        assert properties["actions"]["actionGroups"] == "[parameters('actionGroupIds')]"


# -- compliance -----------------------------------------------------------------------------------------


def test_the_compliance_tab_has_a_tile_per_control_a_trend_and_every_controls_remediation() -> None:
    workbook = load(render_workbook.WORKBOOK_PATH)
    [tabs] = [item for item in workbook["items"] if item["type"] == 11]
    assert [link["linkLabel"] for link in tabs["content"]["links"]] == ["Access keys", "Compliance", "Collector health"]
    on_tab = [item for item in workbook["items"] if item.get("conditionalVisibility", {}).get("value") == "compliance"]
    shown = {item["name"]: item for item in on_tab}
    assert shown["compliance-summary"]["content"]["visualization"] == "tiles"
    assert shown["compliance-summary"]["content"]["tileSettings"]["titleContent"]["columnMatch"] == "Control"
    assert shown["compliance-summary"]["content"]["tileSettings"]["leftContent"]["columnMatch"] == "PassPct"
    assert shown["compliance-trend"]["content"]["visualization"] == "timechart"
    table = shown["controls"]["content"]["json"]
    for control in compliance.load().controls.values():
        assert f"| {control.text} | {control.title} | {control.severity} | {control.remediation} |" in table
    for query in LIBRARY.values():
        if query.controls:
            assert query.id in shown or query.id in {"rotation-due", "root-keys", "two-active-keys"}
