"""The workbook and the alert rules: generated from the library, well-formed, and every query analysed."""

from __future__ import annotations

import json
import operator
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keyreport import queries
from keyreport.queries import compliance
from sandbox.local_kql import LocalWorkspace, StoredTable, TimeRange
from scripts import arm, render, render_alerts, render_workbook
from tests import schema
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


NARROWED = re.compile(r'(?s)(?P<query>.*)\n\| where ControlId == "(?P<control>[a-z0-9-]+)"\n')


def test_every_embedded_query_is_a_library_query_verbatim() -> None:
    texts = {query.text for query in LIBRARY.values()}
    for where, text in embedded_queries().items():
        narrowed = NARROWED.fullmatch(text) if where.startswith("azure/alerts.json") else None
        if narrowed:  # an alert rule on one check: the library query, then one `where` naming the check
            assert narrowed["query"] + "\n" in texts, f"{where} is not a library query narrowed to a check"
            assert narrowed["control"] in compliance.load().controls, where
        else:
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


def test_alert_rules_cover_root_keys_old_keys_a_stopped_collector_and_stale_accounts() -> None:
    assert {alert.query for alert in render_alerts.ALERTS} == {
        "failing-by-account", "ingestion-recent-runs", "accounts-stale"
    }  # fmt: skip
    checks = {alert.control for alert in render_alerts.ALERTS if alert.query == "failing-by-account"}
    assert checks == {"root-access-key", "key-rotation-90-days", "console-mfa"}


@pytest.mark.parametrize("alert", render_alerts.ALERTS, ids=lambda alert: alert.name)
def test_rules_carry_the_query_headers_severity_controls_and_remediation(alert: render_alerts.Alert) -> None:
    query = alert.library_query()
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


def alert_resources() -> list[dict[str, Any]]:
    resources: list[dict[str, Any]] = load(render_alerts.ALERTS_TEMPLATE_PATH)["resources"]
    return resources


def test_alert_rules_are_well_formed_log_search_alerts(analysis: dict[str, kusto.Analysis]) -> None:
    template = load(render_alerts.ALERTS_TEMPLATE_PATH)
    assert template["$schema"] == arm.ARM_SCHEMA
    for resource in template["resources"]:
        assert resource["type"] == "Microsoft.Insights/scheduledQueryRules" and resource["kind"] == "LogAlert"
        assert resource["apiVersion"] == "2023-12-01"  # stable (tests/azure/test_resource_schemas.py)
        properties = resource["properties"]
        assert properties["displayName"] and properties["description"]
        assert properties["severity"] in range(5)
        assert properties["scopes"] == ["[parameters('workspaceResourceId')]"]
        [condition] = properties["criteria"]["allOf"]
        columns = dict(analysis[f"azure/alerts.json:{resource['name']}:0"].columns)
        for dimension in condition.get("dimensions", []):
            assert dimension["name"] in columns and dimension["operator"] == "Include"
            assert dimension["values"] == ["*"]
        if "metricMeasureColumn" in condition:
            assert columns[condition["metricMeasureColumn"]] in ("long", "int", "real")
        assert properties["actions"]["actionGroups"] == "[parameters('actionGroupIds')]"


# The combinations the service accepts (Azure Monitor's validation, beyond the REST specification's `duration`):
# evaluationFrequency and windowSize from fixed lists, frequency <= look-back = windowSize x
# numberOfEvaluationPeriods <= 2 days, overrideQueryTimeRange (if any) >= look-back and <= 2 days, 1..6 periods
# and exactly 1 when the query returns no time column, metricMeasureColumn for every aggregation but Count.
# Source: the service's own error ("Supported granularities are: 5, 10, 15, 30, 45, 60, 120, 180, 240, 300, 360,
# 1440, 2880", Azure/azure-rest-api-specs#21258) and the azurerm provider's azurerm_monitor_scheduled_query_rules_
# alert_v2 documentation, which lists them from it.
FREQUENCIES = {
    "PT1M", "PT5M", "PT10M", "PT15M", "PT30M", "PT45M", "PT1H", "PT2H", "PT3H", "PT4H", "PT5H", "PT6H", "P1D"
}  # fmt: skip
WINDOWS = FREQUENCIES - {"PT1M"} | {"P2D"}
OVERRIDES = WINDOWS | {"PT20M"}
MOST_LOOK_BACK = timedelta(days=2)


@pytest.mark.parametrize("resource", alert_resources(), ids=lambda resource: resource["name"])
def test_rules_look_back_at_most_two_days_in_combinations_azure_accepts(
    resource: dict[str, Any], analysis: dict[str, kusto.Analysis]
) -> None:
    properties = resource["properties"]
    frequency, window = properties["evaluationFrequency"], properties["windowSize"]
    assert frequency in FREQUENCIES and window in WINDOWS, (frequency, window)
    [condition] = properties["criteria"]["allOf"]
    periods = condition["failingPeriods"]
    assert 1 <= periods["minFailingPeriodsToAlert"] <= periods["numberOfEvaluationPeriods"] <= 6
    look_back = queries.parse_duration(window) * periods["numberOfEvaluationPeriods"]
    assert queries.parse_duration(frequency) <= look_back <= MOST_LOOK_BACK
    if "overrideQueryTimeRange" in properties:
        override = properties["overrideQueryTimeRange"]
        assert override in OVERRIDES and look_back <= queries.parse_duration(override) <= MOST_LOOK_BACK
    if "datetime" not in dict(analysis[f"azure/alerts.json:{resource['name']}:0"].columns).values():
        assert periods["numberOfEvaluationPeriods"] == 1  # no time column to split the look-back by
    assert ("metricMeasureColumn" in condition) == (condition["timeAggregation"] != "Count")
    # Stateful: fired while the condition holds, resolved by the first evaluation where it does not.
    assert properties["autoMitigate"] is True and "muteActionsDuration" not in properties


def test_rules_use_the_whole_two_days_and_check_root_keys_and_the_collector_hourly() -> None:
    rules = {r["name"].split("-", 1)[1].removesuffix("', parameters('namePrefix'))]"): r for r in alert_resources()}
    assert {r["properties"]["windowSize"] for r in rules.values()} == {"P2D"}
    assert all("overrideQueryTimeRange" not in r["properties"] for r in rules.values())
    hourly = {name for name, r in rules.items() if r["properties"]["evaluationFrequency"] == "PT1H"}
    assert {"root-access-key", "collector-stopped", "account-snapshot-stale"} <= hourly


# -- the collector-stopped rule, evaluated as Azure Monitor does ------------------------------------------------

COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThan": operator.gt, "GreaterThanOrEqual": operator.ge, "LessThan": operator.lt,
    "LessThanOrEqual": operator.le, "Equals": operator.eq,
}  # fmt: skip
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def fires(resource: dict[str, Any], rows: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """The dimension values the rule fires for over `rows` (its query's result): per value, the row count or the
    measure's total, compared with the threshold. A rule without dimensions has one series, ()."""
    [condition] = resource["properties"]["criteria"]["allOf"]
    names = [dimension["name"] for dimension in condition.get("dimensions", [])]
    series: dict[tuple[Any, ...], list[dict[str, Any]]] = {} if names else {(): []}
    for row in rows:
        series.setdefault(tuple(row[name] for name in names), []).append(row)
    measure, aggregation = condition.get("metricMeasureColumn"), condition["timeAggregation"]
    assert aggregation in ("Count", "Total"), "this emulation knows Count and Total"
    compare = COMPARE[condition["operator"]]
    return {
        key
        for key, members in series.items()
        if compare(len(members) if measure is None else sum(row[measure] for row in members), condition["threshold"])
    }


def run_row(run_time: datetime, ingested: datetime | None = None, account: str = "111111111111") -> dict[str, Any]:
    """A run row; TimeGenerated is the run time unless Log Analytics replaced it with the ingestion time."""
    return {
        "TimeGenerated": (ingested or run_time).isoformat(),
        "loggedDate_t": run_time.isoformat(),
        "account_number_s": account,
        "RunId_g": str(uuid.uuid4()),
        "Status_s": "ok",
    }


def stopped_rule() -> dict[str, Any]:
    [resource] = [r for r in alert_resources() if "-collector-stopped'" in r["name"]]
    return resource


def evaluate_stopped_rule(rows: list[dict[str, Any]], at: datetime) -> set[tuple[Any, ...]]:
    """The rule's query over the rows of its look-back window ending at `at` (by TimeGenerated), then its condition."""
    resource = stopped_rule()
    [condition] = resource["properties"]["criteria"]["allOf"]
    window = queries.parse_duration(resource["properties"]["windowSize"])
    tables = [
        StoredTable(name, schema.columns(name), rows if name == schema.RUNS_TABLE else []) for name in schema.tables()
    ]
    workspace = LocalWorkspace(tables)
    try:
        result = workspace.run(condition["query"], time_range=TimeRange.last(window, at), now=at).records()
    finally:
        workspace.close()
    return fires(resource, result)


def test_the_stopped_rule_counts_runs_and_fires_on_an_empty_window() -> None:
    [condition] = stopped_rule()["properties"]["criteria"]["allOf"]
    assert (condition["timeAggregation"], condition["metricMeasureColumn"]) == ("Total", "Runs")
    assert (condition["operator"], condition["threshold"]) == ("LessThan", 1) and "dimensions" not in condition
    assert "loggedDate_t" in condition["query"] and "TimeGenerated" not in condition["query"]
    assert evaluate_stopped_rule([], NOW) == {()}


@pytest.mark.parametrize("silent_for", [timedelta(hours=27), timedelta(days=2), timedelta(days=3), timedelta(days=40)])
def test_the_stopped_rule_stays_fired_however_long_the_collector_is_silent(silent_for: timedelta) -> None:
    last_run = run_row(NOW - silent_for)
    assert evaluate_stopped_rule([last_run], NOW) == {()}


def test_the_stopped_rule_resolves_when_a_run_reports() -> None:
    assert evaluate_stopped_rule([run_row(NOW - timedelta(hours=30)), run_row(NOW - timedelta(hours=2))], NOW) == set()
    assert evaluate_stopped_rule([run_row(NOW - timedelta(hours=25, minutes=59))], NOW) == set()


def test_a_late_replay_of_old_runs_does_not_resolve_the_stopped_rule() -> None:
    # Rows of a run three days old, ingested now: Log Analytics stamps them TimeGenerated = ingestion time.
    replayed = [
        run_row(NOW - timedelta(days=3), ingested=NOW - timedelta(minutes=5), account=a) for a in ("1" * 12, "2" * 12)
    ]
    assert evaluate_stopped_rule(replayed, NOW) == {()}


def test_the_stopped_rules_cadence_fits_in_its_look_back() -> None:
    workspace = LocalWorkspace([])
    try:
        [thresholds] = workspace.run("KeyReport_Thresholds()").records()
    finally:
        workspace.close()
    window = queries.parse_duration(stopped_rule()["properties"]["windowSize"])
    assert timedelta(hours=24) < timedelta(hours=thresholds["StaleAfterHours"]) <= window


# -- compliance -----------------------------------------------------------------------------------------


def test_the_compliance_tab_has_a_tile_per_control_a_trend_and_every_controls_remediation() -> None:
    workbook = load(render_workbook.WORKBOOK_PATH)
    [tabs] = [item for item in workbook["items"] if item["type"] == 11]
    assert [link["linkLabel"] for link in tabs["content"]["links"]] == [
        "Access keys", "Compliance", "Owners and exceptions", "Collector health"
    ]  # fmt: skip
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
