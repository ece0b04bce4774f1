"""Renders azure/functions.json: the workspace functions of queries/functions/*.kql as saved searches.

Each function becomes a saved search with a function alias, so `KeyReport_CurrentKeys()` resolves in the
workspace for the workbook, the alert rules, Sentinel and `keyreport query`. `make render` writes the
template; tests/azure/test_functions_template.py fails when the checked-in file differs from what this renders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from keyreport import queries
from scripts import arm

TEMPLATE_PATH = arm.ROOT / "azure" / "functions.json"
SAVED_SEARCH_API = "2020-08-01"
SAVED_SEARCH_TYPE = "Microsoft.OperationalInsights/workspaces/savedSearches"
CATEGORY = "keyreport"


def saved_search_name(function: str) -> str:
    """The saved search's resource name: stable, so a redeployment updates the function in place."""
    return f"keyreport-{function}"


def _resource_id(function: str) -> str:
    return f"resourceId('{SAVED_SEARCH_TYPE}', parameters('workspaceName'), '{saved_search_name(function)}')"


def function_resource(function: queries.Function) -> dict[str, Any]:
    """One function; it depends on the functions it calls, so they exist when the workspace checks its body."""
    return {
        "type": SAVED_SEARCH_TYPE,
        "apiVersion": SAVED_SEARCH_API,
        "name": f"[format('{{0}}/{{1}}', parameters('workspaceName'), '{saved_search_name(function.id)}')]",
        "dependsOn": [f"[{_resource_id(callee)}]" for callee in queries.calls(function.text)],
        "properties": {
            "category": CATEGORY,
            "displayName": function.title,
            "query": function.text,
            "functionAlias": function.id,
            "version": 2,
        },
    }


def render() -> dict[str, Any]:
    """The whole deployment template."""
    return arm.template(
        "keyreport's workspace functions (queries/functions/*.kql) as saved searches with a function alias: the "
        "current state and thresholds every query, the workbook and the alert rules start from. Deploy into the "
        "workspace's resource group before the workbook and the alert rules.",
        __file__,
        parameters={
            "workspaceName": arm.parameter(
                "string", "Name of the existing Log Analytics workspace (in this resource group)."
            ),
        },
        resources=[function_resource(function) for function in queries.functions().values()],
    )


def rendered() -> dict[Path, str]:
    """The file this module generates, and its content."""
    return {TEMPLATE_PATH: arm.json_text(render())}
