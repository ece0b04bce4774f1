"""azure/functions.json: every workspace function of queries/functions/ as a saved search with a function alias,
checked offline against azure-mgmt-loganalytics' SavedSearch model and against the library it renders."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from azure.mgmt.loganalytics import models as loganalytics

from keyreport import queries
from scripts import arm, render, render_functions
from tests.azure.test_resource_schemas import Problems, arm_body, check_rest_fields

FUNCTIONS = queries.functions()


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(render_functions.TEMPLATE_PATH.read_text())
    return loaded


def searches(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {resource["properties"]["functionAlias"]: resource for resource in template["resources"]}


def test_the_checked_in_template_is_what_the_library_renders() -> None:
    expected = render_functions.rendered()[render_functions.TEMPLATE_PATH]
    assert render_functions.TEMPLATE_PATH.read_text() == expected, f"run `{render.COMMAND}`"


def test_every_function_is_deployed_verbatim_under_its_name(template: dict[str, Any]) -> None:
    deployed = searches(template)
    assert list(deployed) == list(FUNCTIONS)
    for name, resource in deployed.items():
        assert resource["type"] == "Microsoft.OperationalInsights/workspaces/savedSearches"
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", resource["apiVersion"])
        properties = resource["properties"]
        assert properties["query"] == FUNCTIONS[name].text
        assert properties["category"] == "keyreport" and properties["displayName"] == FUNCTIONS[name].title
        assert f"'keyreport-{name}'" in resource["name"] and "parameters('workspaceName')" in resource["name"]


def test_saved_searches_match_the_rest_model(template: dict[str, Any]) -> None:
    problems: Problems = []
    for name, resource in searches(template).items():
        body = arm_body(resource)
        assert set(body) == {"properties"}, name
        check_rest_fields(loganalytics.SavedSearchProperties, body["properties"], f"{name}.properties", problems)
        if not isinstance(body["properties"]["version"], int):
            problems.append(f"{name}: version must be an integer")
    assert problems == []


def test_a_function_is_deployed_after_the_functions_it_calls(template: dict[str, Any]) -> None:
    order = list(searches(template))
    for name, resource in searches(template).items():
        callees = [callee for callee in queries.calls(FUNCTIONS[name].text) if callee != name]
        assert resource["dependsOn"] == [
            f"[resourceId('Microsoft.OperationalInsights/workspaces/savedSearches', parameters('workspaceName'), "
            f"'keyreport-{callee}')]"
            for callee in queries.calls(FUNCTIONS[name].text)
        ]
        assert all(callee in order for callee in callees)


def test_the_template_declares_what_it_uses(template: dict[str, Any]) -> None:
    assert template["$schema"] == arm.ARM_SCHEMA
    text = json.dumps(template["resources"])
    assert set(re.findall(r"parameters\('([^']+)'\)", text)) == set(template["parameters"]) == {"workspaceName"}
