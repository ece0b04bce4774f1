"""azure/sentinel/: the Microsoft Sentinel solution, checked offline.

Every analytics rule and hunting query against Azure-Sentinel's detection template schema (tests/azure/
sentinel_schema.py), every query through Microsoft's Kusto analyser with AWSCloudTrail declared, the package and
the connector as ARM (the checks azure/*.json get), and every file equal to what the library and the compliance
map render.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.mgmt.loganalytics import models as loganalytics

from keyreport import queries
from scripts import arm, render, render_sentinel
from scripts.sentinel import connector, controls, package, rules, solution, variants, workbook
from tests.azure import sentinel_rest, sentinel_schema
from tests.azure.test_resource_schemas import Problems, arm_body, check_rest_fields
from tests.azure.test_watchlist_template import watchlist_problems
from tests.queries import kusto, sentinel
from tests.queries.test_dashboards import strings

RENDERED = render_sentinel.rendered()
ARM_EXPRESSION = re.compile(r"^\[(?!\[).*\]$", re.DOTALL)
SAMPLE_ACCOUNTS = "'111122223333', '444455556666'"  # what the workbook puts in place of {Accounts}


def load_yaml(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


RULE_FILES = sorted(render_sentinel.rule_paths(), key=str)
HUNTING_FILES = sorted(render_sentinel.hunting_paths(), key=str)
PARSER_FILES = sorted(render_sentinel.parser_paths(), key=str)


def every_query() -> dict[str, str]:
    """Every query the solution runs, by where it sits in the checked-in files."""
    found: dict[str, str] = {}
    for path in RULE_FILES + HUNTING_FILES:
        found[f"{path.parent.name}/{path.name}"] = load_yaml(path)["query"]
    for path in PARSER_FILES:
        found[f"Parsers/{path.name}"] = load_yaml(path)["FunctionQuery"]
    for where, text in connector.queries().items():
        found[f"connector:{where}"] = text
    for where, text in workbook.panel_queries().items():
        found[f"workbook:{where}"] = text.replace("{Accounts}", SAMPLE_ACCOUNTS)
    template = load_json(render_sentinel.MAIN_TEMPLATE_PATH)
    for resource in template["resources"]:
        query = resource.get("properties", {}).get("query")
        if query:
            found[f"mainTemplate:{resource['name']}"] = query
    return found


@pytest.fixture(scope="module")
def analysis() -> dict[str, kusto.Analysis]:
    # As a workspace with Sentinel on has them: the functions with their Sentinel variants, and what Sentinel
    # defines (_GetWatchlist, the Watchlist table), the watchlist without items.
    functions: dict[str, kusto.Declaration] = {name: f.text for name, f in variants.sentinel_functions().items()}
    return kusto.analyse(every_query(), functions={**functions, **sentinel.functions()}, tables=sentinel.tables())


# -- rendered from the sources ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(RENDERED, key=str), ids=lambda p: solution.relative(p))
def test_checked_in_files_are_what_the_library_and_the_compliance_map_render(path: Path) -> None:
    assert path.exists(), f"{path} is missing: run `{render.COMMAND}`"
    assert path.read_text() == RENDERED[path], f"{path} is stale: run `{render.COMMAND}`"


def test_the_folder_holds_only_rendered_files() -> None:
    present = {path for path in solution.FOLDER.rglob("*") if path.is_file()}
    assert present == set(RENDERED), (
        f"not rendered (remove, or add to scripts/render_sentinel.py): {present - set(RENDERED)}"
    )


def test_the_layout_is_azure_sentinels() -> None:
    data = load_json(render_sentinel.SOLUTION_DATA_PATH)
    for key in ("Workbooks", "Data Connectors", "Parsers", "Analytic Rules", "Hunting Queries"):
        assert data[key], key
        for relative in data[key]:
            assert (solution.FOLDER / relative).is_file(), relative
            assert relative.split("/")[0] == key, relative
    assert (solution.FOLDER / data["Metadata"]).is_file()
    assert sorted(data["Parsers"]) == sorted(f"Parsers/{name}.yaml" for name in queries.functions())


def test_one_version_everywhere() -> None:
    version = solution.VERSION
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert load_json(render_sentinel.SOLUTION_DATA_PATH)["Version"] == version
    notes = render_sentinel.RELEASE_NOTES_PATH.read_text()
    assert re.search(rf"^\| {re.escape(version)} \| \d\d-\d\d-\d{{4}} \| .+ \|$", notes, re.MULTILINE)
    assert notes.index(f"| {version} |") == min(notes.index(f"| {v} |") for v, _, _ in solution.RELEASES)
    for path in RULE_FILES + HUNTING_FILES:
        assert load_yaml(path)["version"] == version, path.name
    template = load_json(render_sentinel.MAIN_TEMPLATE_PATH)
    [package_resource] = [r for r in template["resources"] if r["type"].endswith("/contentPackages")]
    assert package_resource["properties"]["version"] == version
    metadata = load_json(render_sentinel.METADATA_PATH)
    assert metadata["lastPublishDate"] == solution.RELEASES[0][1]
    assert {"publisherId", "offerId", "firstPublishDate", "providers", "categories", "support"} <= set(metadata)


# -- the detection template schema ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_every_analytics_rule_passes_the_detection_template_schema(path: Path) -> None:
    assert sentinel_schema.rule_problems(load_yaml(path)) == []


@pytest.mark.parametrize("path", HUNTING_FILES, ids=lambda p: p.name)
def test_every_hunting_query_passes_the_hunting_checks(path: Path) -> None:
    assert sentinel_schema.hunting_problems(load_yaml(path)) == []


def test_template_ids_are_unique_and_stable() -> None:
    ids = [load_yaml(path)["id"] for path in RULE_FILES + HUNTING_FILES + PARSER_FILES]
    assert len(set(ids)) == len(ids)
    assert rules.COLLECTOR_STOPPED.id == solution.stable_id("Content:collector-stopped")


BROKEN: list[tuple[str, Any, str]] = [
    ("queryPeriod", "15d", "queryPeriod: must be between 5 minutes and 14 days"),
    ("queryFrequency", "2m", "queryFrequency: must be between 5 minutes and 14 days"),
    ("queryFrequency", "30m", "at least 1 hour when queryPeriod is 2 days or more"),
    ("queryFrequency", "1 day", "is not <number><m|h|d>"),
    ("severity", "Critical", "severity: 'Critical'"),
    ("triggerOperator", ">", "triggerOperator"),
    ("triggerThreshold", 10_001, "triggerThreshold"),
    ("tactics", ["Persistance"], "'Persistance' is not a tactic"),
    ("relevantTechniques", ["T1078.4"], "'T1078.4' is not T<4 digits>"),
    ("customDetails", {"AwsAccountNumberOfTheFinding": "Account"}, "key 'AwsAccountNumberOfTheFinding'"),
    ("customDetails", {"1Account": "Account"}, "key '1Account'"),
    ("customDetails", {"Account": "Account Id"}, "value 'Account Id'"),
    ("entityMappings", [{"entityType": "Account", "fieldMappings": [{"identifier": "Name", "columnName": "A"}]}] * 6,
     "between 1 and 5 entities"),
    ("entityMappings", [{"entityType": "Account", "fieldMappings": [
        {"identifier": i, "columnName": "A"} for i in ("Name", "FullName", "Sid", "PUID")]}], "between 1 and 3"),
    ("entityMappings", [{"entityType": "Account", "fieldMappings": [{"identifier": "AccountId", "columnName": "A"}]}],
     "'AccountId' is not an identifier of Account"),
    ("entityMappings", [{"entityType": "Account", "fieldMappings": [
        {"identifier": "CloudAppAccountId", "columnName": "A"}]}], "Account needs one of"),
    ("entityMappings", [{"entityType": "AwsAccount", "fieldMappings": [{"identifier": "Name", "columnName": "A"}]}],
     "entity type 'AwsAccount' is unknown"),
    ("alertDetailsOverride", {"alertDisplayNameFormat": "{{A}} {{B}} {{C}} {{D}}"}, "at most 3"),
    ("eventGroupingSettings", {"aggregationKind": "AlertPerAccount"}, "aggregationKind"),
    ("id", "root-access-key", "is not a GUID"),
    ("requiredDataConnectors", [{"connectorId": "KeyReportAwsIamAccessKeys"}], "dataTypes required"),
    ("query", "union * | take 1", "refuses `search *` and `union *`"),
]  # fmt: skip


@pytest.mark.parametrize(("key", "value", "problem"), BROKEN, ids=[f"{k}={v!r}"[:60] for k, v, _ in BROKEN])
def test_the_schema_check_catches_what_the_repository_rejects(key: str, value: Any, problem: str) -> None:
    template = copy.deepcopy(load_yaml(RULE_FILES[0]))
    template[key] = value
    problems = sentinel_schema.rule_problems(template)
    assert any(problem in text for text in problems), problems


def test_a_rule_without_required_fields_is_refused() -> None:
    template = load_yaml(RULE_FILES[0])
    for key in ("requiredDataConnectors", "queryPeriod", "query", "triggerThreshold"):
        broken = {k: v for k, v in template.items() if k != key}
        assert any(text.startswith(key) for text in sentinel_schema.rule_problems(broken)), key


# -- what a SOC needs from each rule ----------------------------------------------------------------------------


def test_one_rule_per_control_above_informational_with_the_maps_severity_and_mitre() -> None:
    by_name = {path.stem: load_yaml(path) for path in RULE_FILES}
    hunting = {path.stem for path in HUNTING_FILES}
    assert set(controls.judged()) >= {"root-access-key", "console-mfa", "key-rotation-90-days"}
    for control in controls.judged().values():
        if control.severity == "Informational":
            assert control.id in hunting and control.id not in by_name
            continue
        rule = by_name[control.id]
        assert rule["severity"] == control.severity
        assert rule["tactics"] == list(control.mitre.tactics)
        assert rule["relevantTechniques"] == list(control.mitre.techniques)
        assert rule["query"].endswith(f'| where ControlId == "{control.id}"\n')
        assert rule.get("tags", []) == list(control.labelled) and control.text in rule["description"]
    assert "collector-stopped" in by_name


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_rules_name_their_connector_and_tables_and_alert_once_per_account(path: Path) -> None:
    rule = load_yaml(path)
    [ours] = [c for c in rule["requiredDataConnectors"] if c["connectorId"] == solution.CONNECTOR_ID]
    read = [table for table in solution.TABLES if table in rule["query"] or any(
        table in queries.functions()[name].text for name in queries.calls(rule["query"]))]  # fmt: skip
    assert ours["dataTypes"] == read and read
    assert rule["eventGroupingSettings"] == {"aggregationKind": "AlertPerResult"}
    grouping = rule["incidentConfiguration"]["groupingConfiguration"]
    assert grouping["enabled"] and grouping["matchingMethod"] == "Selected"
    assert grouping["groupByCustomDetails"] == ["AwsAccount"] and rule["customDetails"]["AwsAccount"] == "Account"
    assert "{{Account}}" in rule["alertDetailsOverride"]["alertDisplayNameFormat"]
    assert {"identifier": "Name", "columnName": "Account"} in rule["entityMappings"][0]["fieldMappings"]
    if path.stem != "collector-stopped":
        assert rule["entityMappings"][1] == rules.IAM_USER_ENTITY
        assert rule["customDetails"]["Credentials"] == "Credentials"  # the masked key ids
        assert re.search(r"by Account = account_number_s, ControlId\b", rule["query"])  # one row per account


DURATION = re.compile(r"(?:ago\(|=\s*)(\d+)([dhm])\b")


@pytest.mark.parametrize("path", RULE_FILES + HUNTING_FILES, ids=lambda p: p.name)
def test_no_rule_reads_a_window_longer_than_its_query_period(path: Path) -> None:
    template = load_yaml(path)
    period = sentinel_schema.span_seconds(template.get("queryPeriod", rules.QUERY_PERIOD)) or 0
    assert period <= 14 * 86_400
    bodies = [template["query"], *(queries.functions()[n].text for n in queries.calls(template["query"]))]
    for body in bodies:
        for amount, unit in DURATION.findall(body):
            assert int(amount) * {"d": 86_400, "h": 3600, "m": 60}[unit] <= period, (path.name, amount, unit)


def test_every_query_passes_the_kusto_analyser(analysis: dict[str, kusto.Analysis]) -> None:
    errors = [result.error_report() for result in analysis.values() if result.errors]
    assert errors == []
    assert len(analysis) >= len(RULE_FILES) + len(HUNTING_FILES) + len(PARSER_FILES) + 5


def test_the_analyser_rejects_a_cloudtrail_column_that_does_not_exist() -> None:
    [result] = kusto.analyse({"broken": "AWSCloudTrail | project UserIdentityAccessKey"}).values()
    assert result.errors


@pytest.mark.parametrize("path", RULE_FILES + HUNTING_FILES, ids=lambda p: p.name)
def test_entities_details_and_placeholders_name_result_columns(path: Path, analysis: dict[str, kusto.Analysis]) -> None:
    template = load_yaml(path)
    columns = set(analysis[f"{path.parent.name}/{path.name}"].column_names)
    assert sentinel_schema.columns_used(template) <= columns, sentinel_schema.columns_used(template) - columns


def test_the_full_key_id_never_leaves_cloudtrails_table(analysis: dict[str, kusto.Analysis]) -> None:
    hunt = load_yaml(render_sentinel.HUNTING_DIR / "key-use-cloudtrail.yaml")
    columns = analysis["Hunting Queries/key-use-cloudtrail.yaml"].column_names
    assert "UserIdentityAccessKeyId" not in columns and "AccessKey" in columns
    # The one place the full id is read is the masking expression inside CloudTrail's own projection.
    uses = [line.strip() for line in hunt["query"].splitlines() if "UserIdentityAccessKeyId" in line]
    assert all("substring(UserIdentityAccessKeyId" in line or "startswith" in line for line in uses), uses
    assert "first 4" in queries.library()[rules.CLOUDTRAIL_QUERY].description


# -- the package as ARM ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = load_json(render_sentinel.MAIN_TEMPLATE_PATH)
    return loaded


def test_main_template_is_a_deployment_template(template: dict[str, Any]) -> None:
    assert template["$schema"] == arm.ARM_SCHEMA
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", template["contentVersion"])
    for resource in template["resources"]:
        assert {"type", "apiVersion", "name"} <= set(resource), resource
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}(-preview)?", resource["apiVersion"])
    text = json.dumps(template["resources"]) + json.dumps(template["variables"])
    assert set(re.findall(r"parameters\('([A-Za-z0-9_-]+)'\)", text)) == set(template["parameters"])
    assert set(re.findall(r"variables\('([A-Za-z0-9_]+)'\)", text)) == set(template["variables"])


def test_main_template_expressions_are_bracketed_and_balanced(template: dict[str, Any]) -> None:
    for text in strings(template["resources"]):
        if re.search(r"\b(parameters|variables|resourceId|extensionResourceId|concat|format|guid)\(", text):
            assert ARM_EXPRESSION.match(text), f"an ARM function outside [...] is a literal string: {text[:120]}"
        if text.startswith("["):
            assert ARM_EXPRESSION.match(text) and text.count("(") == text.count(")"), text
            assert text.count("'") % 2 == 0, text


def test_main_template_deploys_every_piece_in_one_step(template: dict[str, Any]) -> None:
    kinds: dict[str, list[dict[str, Any]]] = {}
    for resource in template["resources"]:
        kinds.setdefault(resource["type"].rsplit("/", 1)[-1], []).append(resource)
    searches = {
        r["properties"].get("functionAlias") or r["properties"]["displayName"]: r for r in kinds["savedSearches"]
    }
    assert set(queries.functions()) <= set(searches)
    hunting = [r for r in kinds["savedSearches"] if r["properties"]["category"] == "Hunting Queries"]
    assert len(hunting) == len(HUNTING_FILES)
    assert len(kinds["alertRules"]) == len(RULE_FILES)
    assert len(kinds["tables"]) == 3 and all(r["condition"] == "[parameters('createTables')]" for r in kinds["tables"])
    [data_connector] = kinds["dataConnectors"]
    config = data_connector["properties"]["connectorUiConfig"]
    file = load_json(render_sentinel.CONNECTOR_PATH)
    assert config["connectivityCriteria"] == file["connectivityCriterias"] and "id" not in config
    assert {k: v for k, v in config.items() if k != "connectivityCriteria"} == {
        k: v for k, v in file.items() if k not in ("id", "connectivityCriterias")
    }
    [book] = kinds["workbooks"]
    assert book["properties"]["category"] == "sentinel" and book["kind"] == "shared"
    content = template["variables"]["workbookContent"]
    assert content == workbook.workbook("[subscription().id]", f"[{package.WORKSPACE_ID}]")
    assert content["fallbackResourceIds"] == [f"[{package.WORKSPACE_ID}]"]  # opens on the workspace it went to
    stripped = copy.deepcopy(content)
    defaults = {"Subscription": [], "Workspace": "value::1"}
    for parameter in stripped["items"][0]["content"]["parameters"]:
        if parameter["name"] in defaults:
            parameter["value"] = defaults[parameter["name"]]
    stripped["fallbackResourceIds"] = []
    assert json.dumps(stripped, sort_keys=True) == json.dumps(load_json(render_sentinel.WORKBOOK_PATH), sort_keys=True)
    metadata_kinds = sorted(r["properties"]["kind"] for r in kinds["metadata"])
    assert metadata_kinds.count("AnalyticsRule") == len(RULE_FILES)
    assert metadata_kinds.count("HuntingQuery") == len(HUNTING_FILES)
    assert metadata_kinds.count("Parser") == len(PARSER_FILES)
    [watchlist] = kinds["watchlists"]
    assert metadata_kinds.count("Watchlist") == 1 and watchlist["condition"] == "[parameters('createWatchlist')]"
    assert {"DataConnector", "Workbook"} <= set(metadata_kinds)
    assert len(kinds["contentPackages"]) == 1


def test_rules_are_created_after_the_functions_and_tables_their_queries_need(template: dict[str, Any]) -> None:
    names = {r["name"]: r for r in template["resources"]}
    for rule in (r for r in template["resources"] if r["type"].endswith("/alertRules")):
        depends = " ".join(rule["dependsOn"])
        for function in queries.calls(rule["properties"]["query"]):
            assert f"'keyreport-{function}'" in depends, function
        for table in solution.TABLES:
            assert f"'{table}'" in depends
    assert names  # dependsOn ids resolve to resources of this template:
    declared = {f"'{r['name'].split(chr(39))[-2]}'" for r in template["resources"] if "'" in r["name"]}
    for resource in template["resources"]:
        for dependency in resource.get("dependsOn", []):
            assert any(name in dependency for name in declared), dependency


def test_alert_rule_resources_are_the_yaml_templates(template: dict[str, Any]) -> None:
    by_name = {load_yaml(path)["name"]: load_yaml(path) for path in RULE_FILES}
    for resource in (r for r in template["resources"] if r["type"].endswith("/alertRules")):
        properties = resource["properties"]
        yaml_rule = by_name[properties["displayName"]]
        assert resource["kind"] == "Scheduled" and yaml_rule["id"] in resource["name"]
        assert properties["query"] == yaml_rule["query"] and properties["severity"] == yaml_rule["severity"]
        assert properties["queryPeriod"] == rules.iso_duration(yaml_rule["queryPeriod"])
        assert properties["techniques"] == sorted(
            {t.split(".")[0] for t in yaml_rule["relevantTechniques"]},
            key=[t.split(".")[0] for t in yaml_rule["relevantTechniques"]].index,
        )
        assert set(properties["subTechniques"]) == {t for t in yaml_rule["relevantTechniques"] if "." in t}
        assert properties["entityMappings"] == yaml_rule["entityMappings"]
        assert properties["customDetails"] == yaml_rule["customDetails"]
        assert properties["incidentConfiguration"] == yaml_rule["incidentConfiguration"]


def test_security_insights_resources_match_the_rest_specification(template: dict[str, Any]) -> None:
    found: list[str] = []
    for resource in template["resources"]:
        if resource["type"].endswith("/alertRules"):
            assert resource["apiVersion"] == "2023-12-01-preview" and resource["kind"] == "Scheduled"
            found += sentinel_rest.rule_problems(resource["properties"])
        elif resource["type"].endswith("/dataConnectors"):
            assert resource["kind"] == "GenericUI"
            found += sentinel_rest.problems(sentinel_rest.GENERIC_UI_CONNECTOR, resource["properties"])
        elif resource["type"].endswith("/metadata"):
            found += sentinel_rest.problems(sentinel_rest.METADATA, resource["properties"], resource["name"])
        elif resource["type"].endswith("/watchlists"):
            found += watchlist_problems(resource)
    assert found == []


RULE_BREAKS: list[tuple[str, Any, str]] = [
    ("queryPeriod", "14d", "not an ISO 8601 duration"),
    ("triggerOperator", "gt", "is not one of"),
    ("severity", "Critical", "is not one of"),
    ("tactic", None, "no such property"),
    ("incidentConfiguration", {"groupingConfiguration": {"enabled": True}}, "createIncident: required"),
    ("incidentConfiguration", {"createIncident": True, "groupingConfiguration": {
        "enabled": True, "reopenClosedIncident": False, "lookbackDuration": "P7D", "matchingMethod": "Selected"}},
     "Selected needs"),
    ("incidentConfiguration", {"createIncident": True, "groupingConfiguration": {
        "enabled": True, "reopenClosedIncident": False, "lookbackDuration": "P7D", "matchingMethod": "Selected",
        "groupByCustomDetails": ["AwsAccountId"]}}, "does not define"),
    ("entityMappings", [{"entityType": "AwsAccount", "fieldMappings": []}], "is not one of"),
    ("suppressionEnabled", "false", "expected bool"),
]  # fmt: skip


@pytest.mark.parametrize(("key", "value", "problem"), RULE_BREAKS, ids=[k for k, _, _ in RULE_BREAKS])
def test_the_rest_check_catches_what_the_api_rejects(
    template: dict[str, Any], key: str, value: Any, problem: str
) -> None:
    [rule] = [r for r in template["resources"] if r["type"].endswith("/alertRules")][:1]
    properties = copy.deepcopy(rule["properties"])
    properties[key] = value
    assert any(problem in text for text in sentinel_rest.rule_problems(properties)), sentinel_rest.rule_problems(
        properties
    )


def test_the_rest_check_catches_a_connector_in_the_repository_format() -> None:
    found = sentinel_rest.problems(sentinel_rest.GENERIC_UI_CONNECTOR, {"connectorUiConfig": connector.definition()})
    assert any("connectivityCriterias: no such property" in text for text in found)
    assert any("connectivityCriteria: required" in text for text in found)


def test_saved_searches_and_tables_match_the_rest_models(template: dict[str, Any]) -> None:
    problems: Problems = []
    for resource in template["resources"]:
        if resource["type"].endswith("/savedSearches"):
            body = arm_body(resource)
            check_rest_fields(loganalytics.SavedSearchProperties, body["properties"], resource["name"], problems)
            for tag in body["properties"].get("tags", []):
                check_rest_fields(loganalytics.Tag, tag, f"{resource['name']}.tags", problems)
        elif resource["type"].endswith("/tables"):
            check_rest_fields(loganalytics.TableProperties, resource["properties"], resource["name"], problems)
    assert problems == []


def test_create_ui_definition_feeds_the_template() -> None:
    ui = load_json(render_sentinel.UI_DEFINITION_PATH)
    main = load_json(render_sentinel.MAIN_TEMPLATE_PATH)
    assert ui["handler"] == "Microsoft.Azure.CreateUIDef" and ui["version"] == "0.1.2-preview"
    outputs = ui["parameters"]["outputs"]
    assert set(outputs) <= set(main["parameters"])
    required = {name for name, p in main["parameters"].items() if "defaultValue" not in p}
    assert required <= set(outputs)
    basics = {element["name"] for element in ui["parameters"]["basics"]}
    steps = {step["name"]: {e["name"] for e in step["elements"]} for step in ui["parameters"]["steps"]}
    for name, value in outputs.items():
        assert ARM_EXPRESSION.match(value), name
        for element in re.findall(r"basics\('([^']+)'\)", value):
            assert element in basics, (name, element)
        for step, element in re.findall(r"steps\('([^']+)'\)\.(\w+)", value):
            assert element in steps[step], (name, step, element)
    assert outputs["workspace"] == "[basics('workspace')]"


# -- the connector ----------------------------------------------------------------------------------------------


def test_connector_covers_the_three_tables_and_connects_on_a_recent_complete_run() -> None:
    definition = load_json(render_sentinel.CONNECTOR_PATH)
    assert definition["id"] == solution.CONNECTOR_ID
    assert [d["name"] for d in definition["dataTypes"]] == list(solution.TABLES)
    [criteria] = definition["connectivityCriterias"]
    assert criteria["type"] == "IsConnectedQuery"
    assert "KeyReport_CompleteRuns()" in criteria["value"][0] and "IsConnected" in criteria["value"][0]
    assert len(definition["instructionSteps"]) >= 3
    for key in ("title", "publisher", "descriptionMarkdown", "graphQueries", "sampleQueries", "availability",
                "permissions"):  # fmt: skip
        assert definition[key], key


# -- the workbook -----------------------------------------------------------------------------------------------


def test_workbook_picks_its_workspace_filters_accounts_and_keeps_current_state_off_the_time_picker() -> None:
    book = load_json(render_sentinel.WORKBOOK_PATH)
    [parameters] = [item for item in book["items"] if item["type"] == 9]
    declared = {p["name"]: p for p in parameters["content"]["parameters"]}
    assert declared["Subscription"]["type"] == 6 and declared["Workspace"]["type"] == 5
    assert declared["Accounts"]["multiSelect"] and declared["Accounts"]["typeSettings"]["selectAllValue"] == "*"
    panels = {item["name"]: item for item in book["items"] if item["type"] == 3}
    for name, item in panels.items():
        content = item["content"]
        assert content["crossComponentResources"] == ["{Workspace}"], name
        panel = next(p for p in workbook.TABS_AND_ITEMS if isinstance(p, workbook.Panel) and p.query == name)
        assert ("timeContextFromParameter" in content) == (panel.span_ms is None), name
        assert content["query"].startswith(queries.library()[name].text), name
    for name in ("failing-by-account", "rotation-due", "root-keys", "ingestion-last-run", "key-use-cloudtrail"):
        assert "timeContextFromParameter" not in panels[name]["content"], name
        assert "{Accounts}" in panels[name]["content"]["query"], name


def test_account_filter_is_applied_only_where_the_result_has_an_account(analysis: dict[str, kusto.Analysis]) -> None:
    for item in workbook.TABS_AND_ITEMS:
        if isinstance(item, workbook.Panel) and item.per_account:
            assert "Account" in analysis[f"workbook:panel:{item.query}"].column_names, item.query


def test_workbook_has_freshness_compliance_and_the_cloudtrail_tab_with_its_fallback() -> None:
    book = load_json(render_sentinel.WORKBOOK_PATH)
    [tabs] = [item for item in book["items"] if item["type"] == 11]
    assert [link["id"] for link in tabs["content"]["links"]] == ["state", "freshness", "compliance", "key-use"]
    shown = {item["name"]: item for item in book["items"]}
    table = shown["controls"]["content"]["json"]
    for control in controls.controls().values():
        assert f"| {control.title} | {control.text} | {control.severity} |" in table
    visibility = {c["parameterName"]: c["value"] for c in shown["key-use-cloudtrail"]["conditionalVisibilities"]}
    assert visibility == {"tab": "key-use", workbook.CLOUDTRAIL_PARAMETER: "yes"}
    fallback = {c["parameterName"]: c["value"] for c in shown["enable-cloudtrail"]["conditionalVisibilities"]}
    assert fallback == {"tab": "key-use", workbook.CLOUDTRAIL_PARAMETER: "no"}
    assert "Amazon Web Services S3" in shown["enable-cloudtrail"]["content"]["json"]
    assert shown["ingestion-last-run"]["content"]["timeContext"]["durationMs"] == workbook.FRESHNESS_MS


def test_workbook_metadata_names_the_workbook_and_its_dependencies() -> None:
    [entry] = load_json(render_sentinel.WORKBOOK_METADATA_PATH)
    assert (solution.FOLDER / entry["templateRelativePath"]).is_file()
    assert entry["dataTypesDependencies"] == list(solution.TABLES)
    assert entry["dataConnectorsDependencies"] == [solution.CONNECTOR_ID]
    assert entry["version"] == solution.VERSION


def test_package_module_builds_rule_properties_from_the_templates() -> None:
    properties = package.alert_rule_properties(rules.analytic_rules()[0])
    assert properties["enabled"] == "[parameters('enableAnalyticsRules')]"
    assert properties["triggerOperator"] == "GreaterThan"


def test_the_guide_documents_every_parameter_and_the_rules_it_names() -> None:
    guide = (arm.ROOT / "docs" / "sentinel.md").read_text()
    for name in load_json(render_sentinel.MAIN_TEMPLATE_PATH)["parameters"]:
        assert f"| `{name}` |" in guide, name
    for name in ("collector-stopped.yaml", "key-use-cloudtrail.yaml", "failing-by-account", "KeyReport_Thresholds"):
        assert name in guide, name
    for identifier in ("Name", "CloudAppAccountId"):
        assert f"| `{identifier}` |" in guide
    control_rule = next(path for path in RULE_FILES if path.stem != "collector-stopped")
    for detail in load_yaml(control_rule)["customDetails"]:
        assert f"`{detail}`" in guide, detail
