"""azure/exceptions-watchlist.json: the empty watchlist KeyReportExceptions and the Sentinel variant of
KeyReport_WatchlistExceptions, checked offline against the models of azure-mgmt-securityinsight (the watchlist,
api-version 2021-10-01) and azure-mgmt-loganalytics (the saved search), and against what the scripts render."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from azure.mgmt.loganalytics import models as loganalytics
from azure.mgmt.securityinsight import models as securityinsight
from azure.mgmt.securityinsight.operations import _watchlists_operations as watchlists_operations

from scripts import arm, render, render_functions, render_sentinel, render_watchlist
from scripts.sentinel import variants
from tests.azure.test_resource_schemas import Problems, arm_body, check_msrest, check_rest_fields

# Required by the stable specification's WatchlistProperties (and by every later stable version).
REQUIRED = ("displayName", "provider", "itemsSearchKey")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(render_watchlist.TEMPLATE_PATH.read_text())
    return loaded


def resource_of(template: dict[str, Any], kind: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [resource for resource in template["resources"] if resource["type"].endswith(kind)]
    assert len(found) == 1, kind
    return found[0]


def watchlist_problems(resource: dict[str, Any]) -> Problems:
    """A watchlist resource's body against the Watchlist model: names, nesting, JSON types, read-only ones, the
    source enumeration and the required properties."""
    problems: Problems = []
    check_msrest(securityinsight.Watchlist, arm_body(resource), "watchlist", problems)
    properties = resource.get("properties", {})
    problems += [f"watchlist.properties: lacks {key}" for key in REQUIRED if key not in properties]
    sources = {source.value for source in securityinsight.Source}
    if properties.get("source") not in sources:
        problems.append(f"watchlist.properties.source: {properties.get('source')!r} not in {sorted(sources)}")
    return problems


def test_the_checked_in_template_is_what_the_scripts_render() -> None:
    expected = render_watchlist.rendered()[render_watchlist.TEMPLATE_PATH]
    assert render_watchlist.TEMPLATE_PATH.read_text() == expected, f"run `{render.COMMAND}`"
    assert render_watchlist.TEMPLATE_PATH in render.rendered()


def test_the_watchlist_speaks_the_stable_api_the_models_describe(template: dict[str, Any]) -> None:
    request = watchlists_operations.build_create_or_update_request(
        subscription_id="00000000-0000-0000-0000-000000000000",
        resource_group_name="rg",
        workspace_name="ws",
        watchlist_alias=render_watchlist.ALIAS,
    )
    assert request.url.endswith("?api-version=2021-10-01")  # the version the installed models are generated for
    assert resource_of(template, "/watchlists")["apiVersion"] == render_watchlist.WATCHLIST_API == "2021-10-01"


def test_the_watchlist_matches_the_rest_model(template: dict[str, Any]) -> None:
    assert watchlist_problems(resource_of(template, "/watchlists")) == []


def test_the_watchlist_check_catches_what_it_is_for(template: dict[str, Any]) -> None:
    broken = copy.deepcopy(resource_of(template, "/watchlists"))
    properties = broken["properties"]
    properties["searchKey"] = properties.pop("itemsSearchKey")
    properties["numberOfLinesToSkip"] = "0"
    properties["source"] = "CSV upload"
    broken["systemData"] = {}
    text = "\n".join(watchlist_problems(broken))
    assert "watchlist.properties.searchKey: no such property" in text
    assert "watchlist.properties: lacks itemsSearchKey" in text
    assert "watchlist.properties.numberOfLinesToSkip: expected int, got str" in text
    assert "watchlist.properties.source: 'CSV upload' not in" in text
    assert "watchlist.systemData: read-only" in text


def test_the_watchlist_is_created_empty_on_the_workspace_searched_by_user(template: dict[str, Any]) -> None:
    watchlist = resource_of(template, "/watchlists")
    assert watchlist["type"] == "Microsoft.SecurityInsights/watchlists" and watchlist["name"] == "KeyReportExceptions"
    assert watchlist["scope"] == "[format('Microsoft.OperationalInsights/workspaces/{0}', parameters('workspaceName'))]"
    assert watchlist["condition"] == "[parameters('createWatchlist')]"
    properties = watchlist["properties"]
    assert properties["rawContent"] == "Account,User,Control,Key,Until,ApprovedBy,Reason\r\n"  # the header, no item
    assert (properties["contentType"], properties["numberOfLinesToSkip"]) == ("text/csv", 0)
    assert properties["itemsSearchKey"] == "User" and properties["source"] == "Local file"
    for column in render_watchlist.COLUMNS:  # the description documents every column
        assert re.search(rf"\b{column}\b", properties["description"]), column


def test_the_function_is_the_variant_saved_where_functions_json_saves_the_base(template: dict[str, Any]) -> None:
    search = resource_of(template, "/savedSearches")
    variant = variants.variants()[render_watchlist.FUNCTION]
    assert search["properties"]["query"] == variant.text and "_GetWatchlist" in variant.text
    functions = json.loads(render_functions.TEMPLATE_PATH.read_text())
    [base] = [r for r in functions["resources"] if r["properties"]["functionAlias"] == render_watchlist.FUNCTION]
    assert "_GetWatchlist" not in base["properties"]["query"]
    assert search["name"] == base["name"] and search["apiVersion"] == base["apiVersion"]  # the same saved search
    same = ("category", "functionAlias", "version")
    assert {key: search["properties"][key] for key in same} == {key: base["properties"][key] for key in same}
    problems: Problems = []
    check_rest_fields(loganalytics.SavedSearchProperties, arm_body(search)["properties"], "search", problems)
    assert problems == []


def test_the_template_declares_what_it_uses(template: dict[str, Any]) -> None:
    assert template["$schema"] == arm.ARM_SCHEMA
    text = json.dumps(template["resources"])
    assert set(re.findall(r"parameters\('([^']+)'\)", text)) == set(template["parameters"])
    assert set(template["parameters"]) == {"workspaceName", "createWatchlist"}
    assert template["parameters"]["createWatchlist"]["defaultValue"] is True


def test_the_sentinel_solution_creates_the_same_watchlist_and_saves_the_variant(template: dict[str, Any]) -> None:
    main = json.loads(render_sentinel.MAIN_TEMPLATE_PATH.read_text())
    packaged = resource_of(main, "/watchlists")
    assert packaged["type"] == "Microsoft.OperationalInsights/workspaces/providers/watchlists"
    assert packaged["apiVersion"] == render_watchlist.WATCHLIST_API
    assert packaged["name"].endswith("'/Microsoft.SecurityInsights/', 'KeyReportExceptions')]")
    assert packaged["properties"] == resource_of(template, "/watchlists")["properties"]
    assert packaged["condition"] == "[parameters('createWatchlist')]"
    assert watchlist_problems(packaged) == []
    [search] = [
        r
        for r in main["resources"]
        if r["type"].endswith("/savedSearches") and r["properties"].get("functionAlias") == render_watchlist.FUNCTION
    ]
    assert search["properties"]["query"] == resource_of(template, "/savedSearches")["properties"]["query"]
    parser = (render_sentinel.PARSERS_DIR / f"{render_watchlist.FUNCTION}.yaml").read_text()
    assert "_GetWatchlist(" in parser
