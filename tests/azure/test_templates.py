"""azure/logs-ingestion.json: well-formed, rendered from queries/schema.json, and consistent end to end.

The chain checked here: schema.json columns = table resource columns = DCR stream declaration columns =
what records.py emits once the Logs Ingestion sink has renamed it (+ TimeGenerated).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from keyreport.columns import KEY_COLUMNS, RUN_COLUMNS, USER_COLUMNS, stream_record
from keyreport.records import KeyRecord, PasswordPolicy, RunSummary, UserRecord, key_row, summary_row, user_row
from scripts import render, render_logs_ingestion
from tests import schema

KEY = bytes(range(32))  # a deployment's fingerprint key

KEYS, RUNS, USERS = schema.KEYS_TABLE, schema.RUNS_TABLE, schema.USERS_TABLE
TABLE_TYPE = "Microsoft.OperationalInsights/workspaces/tables"
DCR_TYPE = "Microsoft.Insights/dataCollectionRules"
DCE_TYPE = "Microsoft.Insights/dataCollectionEndpoints"
ROLE_TYPE = "Microsoft.Authorization/roleAssignments"
# Documented column types: a table's schema (Tables API) and a DCR stream declaration (which has no guid).
TABLE_COLUMN_TYPES = {"string", "int", "long", "real", "boolean", "dateTime", "guid", "dynamic"}
STREAM_COLUMN_TYPES = {"string", "int", "long", "real", "boolean", "datetime", "dynamic"}
ARM_EXPRESSION = re.compile(r"^\[(?!\[).*\]$", re.DOTALL)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(render_logs_ingestion.TEMPLATE_PATH.read_text())
    return loaded


def resources(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [resource for resource in template["resources"] if resource["type"] == kind]


def dcr(template: dict[str, Any]) -> dict[str, Any]:
    [rule] = resources(template, DCR_TYPE)
    return rule


def table_columns(template: dict[str, Any], table: str) -> dict[str, str]:
    [resource] = [r for r in resources(template, TABLE_TYPE) if r["properties"]["schema"]["name"] == table]
    return {column["name"]: column["type"] for column in resource["properties"]["schema"]["columns"]}


def stream_columns(template: dict[str, Any], table: str) -> dict[str, str]:
    declaration = dcr(template)["properties"]["streamDeclarations"][f"Custom-{table}"]
    return {column["name"]: column["type"] for column in declaration["columns"]}


def declared(table: str) -> dict[str, str]:
    """Every column of schema.json, TimeGenerated included, with its query type."""
    return {column["name"]: column["type"] for column in schema.tables()[table]}


# -- the file itself ----------------------------------------------------------------------------------
def test_the_checked_in_template_is_what_schema_json_renders() -> None:
    [(path, text)] = render_logs_ingestion.rendered().items()
    assert path.read_text() == text, (
        f"azure/logs-ingestion.json is stale: run `{render.COMMAND}` after changing queries/schema.json"
    )


def test_template_is_a_deployment_template(template: dict[str, Any]) -> None:
    assert template["$schema"] == "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", template["contentVersion"])
    assert {"workspaceName", "location", "principalId"} <= set(template["parameters"])
    assert {resource["type"] for resource in template["resources"]} == {TABLE_TYPE, DCE_TYPE, DCR_TYPE, ROLE_TYPE}
    for resource in template["resources"]:
        assert {"type", "apiVersion", "name"} <= set(resource), resource["type"]
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}(-preview)?", resource["apiVersion"])


def test_every_parameter_and_variable_used_is_declared_and_every_parameter_is_used(template: dict[str, Any]) -> None:
    text = json.dumps(template["resources"]) + json.dumps(template["outputs"]) + json.dumps(template["variables"])
    used_parameters = set(re.findall(r"parameters\('([A-Za-z0-9_]+)'\)", text))
    used_variables = set(re.findall(r"variables\('([A-Za-z0-9_]+)'\)", text))
    assert used_parameters == set(template["parameters"])
    assert used_variables == set(template["variables"])


def test_expressions_are_bracketed_and_balanced(template: dict[str, Any]) -> None:
    def strings(node: Any) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, dict):
            return [s for value in node.values() for s in strings(value)]
        if isinstance(node, list):
            return [s for value in node for s in strings(value)]
        return []

    expressions = [text for text in strings(template) if text.startswith("[")]
    assert len(expressions) > 20
    for text in strings(template):
        if re.search(r"\b(parameters|variables|resourceId|reference|format|guid|if)\(", text):
            assert ARM_EXPRESSION.match(text), f"an ARM function outside [...] is a literal string: {text}"
    for text in expressions:
        assert ARM_EXPRESSION.match(text), text
        assert text.count("(") == text.count(")") and text.count("'") % 2 == 0, text


# -- tables -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("table", [KEYS, RUNS, USERS])
def test_table_declares_every_column_of_schema_json_with_its_type(template: dict[str, Any], table: str) -> None:
    expected = {name: render_logs_ingestion.TABLE_TYPES[kind] for name, kind in declared(table).items()}
    assert table_columns(template, table) == expected
    assert table_columns(template, table)["TimeGenerated"] == "dateTime"
    assert set(table_columns(template, table).values()) <= TABLE_COLUMN_TYPES


def test_tables_use_the_analytics_plan_and_can_be_skipped_for_migrated_tables(template: dict[str, Any]) -> None:
    for resource in resources(template, TABLE_TYPE):
        assert resource["properties"]["plan"] == "Analytics"  # Basic logs cannot serve alert rules
        assert resource["condition"] == "[parameters('createTables')]"
        assert resource["properties"]["schema"]["name"].endswith("_CL")


# -- data collection rule -----------------------------------------------------------------------------
@pytest.mark.parametrize("table", [KEYS, RUNS, USERS])
def test_stream_columns_are_the_table_columns(template: dict[str, Any], table: str) -> None:
    streams = stream_columns(template, table)
    tables = table_columns(template, table)
    assert list(streams) == list(tables)
    assert set(streams.values()) <= STREAM_COLUMN_TYPES
    for name, kind in declared(table).items():
        assert streams[name] == render_logs_ingestion.STREAM_TYPES[kind], name


def test_rule_is_direct_with_one_flow_per_table_into_the_workspace(template: dict[str, Any]) -> None:
    rule = dcr(template)
    assert rule["kind"] == "Direct"
    properties = rule["properties"]
    destinations = {d["name"] for d in properties["destinations"]["logAnalytics"]}
    assert len(destinations) == 1
    flows = {flow["outputStream"]: flow for flow in properties["dataFlows"]}
    assert set(flows) == {f"Custom-{KEYS}", f"Custom-{RUNS}", f"Custom-{USERS}"}
    for output, flow in flows.items():
        assert flow["streams"] == [output]  # each stream lands in the table of the same name
        assert set(flow["destinations"]) == destinations
        assert flow["streams"][0] in properties["streamDeclarations"]


@pytest.mark.parametrize("table", [KEYS, RUNS, USERS])
def test_transformation_passes_the_stream_through_and_types_the_guids(template: dict[str, Any], table: str) -> None:
    [flow] = [f for f in dcr(template)["properties"]["dataFlows"] if f["outputStream"] == f"Custom-{table}"]
    guids = [name for name, kind in declared(table).items() if kind == "guid"]
    assert guids == ["RunId_g"]
    assert flow["transformKql"] == "source | extend RunId_g = toguid(RunId_g)"
    referenced = set(re.findall(r"\b([A-Za-z_][A-Za-z0-9_]*_[a-z])\b", flow["transformKql"]))
    assert referenced <= set(stream_columns(template, table))


def test_rule_can_use_a_dce_when_asked_and_reports_its_endpoint(template: dict[str, Any]) -> None:
    rule = dcr(template)
    assert rule["properties"]["dataCollectionEndpointId"].startswith("[if(parameters('createDataCollectionEndpoint')")
    [endpoint] = resources(template, DCE_TYPE)
    assert endpoint["condition"] == "[parameters('createDataCollectionEndpoint')]"
    outputs = template["outputs"]
    assert "immutableId" in outputs["dataCollectionRuleImmutableId"]["value"]
    assert "endpoints.logsIngestion" in outputs["logsIngestionEndpoint"]["value"]
    assert "logsIngestion.endpoint" in outputs["logsIngestionEndpoint"]["value"]
    assert (outputs["keysStream"]["value"], outputs["runsStream"]["value"]) == (f"Custom-{KEYS}", f"Custom-{RUNS}")


# -- role assignment ----------------------------------------------------------------------------------
def test_principal_gets_monitoring_metrics_publisher_on_the_rule_only(template: dict[str, Any]) -> None:
    [role] = resources(template, ROLE_TYPE)
    assert "3913510d-42f4-4e42-8a64-420c390055eb" in template["variables"][role_variable(role)]
    assert role["properties"]["principalId"] == "[parameters('principalId')]"
    assert role["properties"]["principalType"] == "[parameters('principalType')]"
    assert (
        role["scope"] == "[format('Microsoft.Insights/dataCollectionRules/{0}', parameters('dataCollectionRuleName'))]"
    )
    assert role["name"].startswith("[guid(") and "parameters('principalId')" in role["name"]  # stable, idempotent
    assert any("dataCollectionRules" in dependency for dependency in role["dependsOn"])


def role_variable(role: dict[str, Any]) -> str:
    match = re.fullmatch(r"\[variables\('([A-Za-z]+)'\)\]", role["properties"]["roleDefinitionId"])
    assert match, role["properties"]["roleDefinitionId"]
    return match.group(1)


# -- what the product sends ---------------------------------------------------------------------------
def every_key_field() -> dict[str, Any]:
    record = KeyRecord(
        user_name="alice",
        user_arn="arn:aws:iam::123456789012:user/alice",
        access_key_id="AKIAIOSFODNN7EXAMPLE",
        status="Active",
        create_date=datetime(2024, 1, 2, tzinfo=UTC),
        last_used_date=datetime(2024, 5, 6, tzinfo=UTC),
        last_used_service="s3",
        last_used_region="eu-west-1",
        password_enabled=True,
        mfa_active=False,
    )
    return key_row(
        record,
        run_time=datetime(2024, 6, 1, tzinfo=UTC),
        run_id="0b6f2e5c-4a7d-4e1b-9c3f-2d8a6e1f7b40",
        fingerprint_key=KEY,
    )


def every_run_field() -> dict[str, Any]:
    summary = RunSummary(
        run_id="0b6f2e5c-4a7d-4e1b-9c3f-2d8a6e1f7b40",
        account_id="123456789012",
        started=datetime(2024, 6, 1, tzinfo=UTC),
        collector_version="0.1.0",
        sink="logs_ingestion",
        errors=["throttled"],
        password_policy=PasswordPolicy(True, 14, 24, True, True, True, True, 90),
        posture_not_read=["ListVirtualMFADevices: AccessDenied"],
        scope="user",  # a user-scope re-read carries every run field: its user, and whether it was deleted
        scope_user="alice",
        user_deleted=False,
    )
    return summary_row(summary)


def every_user_field() -> dict[str, Any]:
    moment = datetime(2024, 5, 1, tzinfo=UTC)
    record = UserRecord("alice", "arn:aws:iam::123456789012:user/alice", "/", moment, True, moment, moment, False, 1, 2)
    row = user_row(
        replace(record, last_activity=moment, hardware_mfa=True), run_time=datetime(2024, 6, 1, tzinfo=UTC), run_id="r"
    )
    return row


@pytest.mark.parametrize(
    ("table", "row", "columns"),
    [
        (KEYS, every_key_field(), KEY_COLUMNS),
        (RUNS, every_run_field(), RUN_COLUMNS),
        (USERS, every_user_field(), USER_COLUMNS),
    ],
)
def test_what_the_sink_sends_is_exactly_the_stream_declaration(
    template: dict[str, Any], table: str, row: dict[str, Any], columns: dict[str, str]
) -> None:
    record = stream_record(row, columns)
    assert set(record) == set(stream_columns(template, table))  # every declared column, nothing else
    assert record["TimeGenerated"] == row["loggedDate"]
