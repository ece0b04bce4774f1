"""Settings.for_query: what `keyreport query` needs (a workspace and a sign-in), and nothing of the sink's."""

from __future__ import annotations

import pytest

from keyreport.queries.client import function_hint
from keyreport.settings import ConfigError, Settings

WORKSPACE = "5a2c9e1f-7b4d-4c3a-8e6f-1b9d2a7c4e0f"


def test_a_workspace_is_all_it_needs() -> None:
    settings = Settings.for_query({"KEYREPORT_WORKSPACE_ID": WORKSPACE})
    assert settings.workspace_id == WORKSPACE and settings.azure.auth.name == "default"
    assert settings.logs_query_endpoint == "https://api.loganalytics.io"


@pytest.mark.parametrize(
    ("cloud", "endpoint"),
    [("usgov", "https://api.loganalytics.us"), ("china", "https://api.loganalytics.azure.cn")],
)
def test_the_endpoint_follows_the_cloud(cloud: str, endpoint: str) -> None:
    settings = Settings.for_query({"KEYREPORT_WORKSPACE_ID": WORKSPACE, "KEYREPORT_AZURE_CLOUD": cloud})
    assert settings.logs_query_endpoint == endpoint == settings.azure.cloud.logs_query_endpoint


def test_an_override_moves_the_host_but_not_the_audience() -> None:
    env = {"KEYREPORT_WORKSPACE_ID": WORKSPACE, "KEYREPORT_LOGS_QUERY_ENDPOINT": "https://la.internal.example/"}
    settings = Settings.for_query(env)
    assert settings.logs_query_endpoint == "https://la.internal.example"
    assert settings.azure.cloud.logs_query_endpoint == "https://api.loganalytics.io"


@pytest.mark.parametrize(
    ("env", "problems"),
    [
        ({}, ["KEYREPORT_WORKSPACE_ID is required for keyreport query"]),
        ({"KEYREPORT_WORKSPACE_ID": "workspace-1"}, ["KEYREPORT_WORKSPACE_ID='workspace-1' is not a GUID"]),
        (
            {"KEYREPORT_WORKSPACE_ID": WORKSPACE, "KEYREPORT_LOGS_QUERY_ENDPOINT": "http://la.internal"},
            ["KEYREPORT_LOGS_QUERY_ENDPOINT='http://la.internal' must be an https:// URL"],
        ),
        (
            {"KEYREPORT_WORKSPACE_ID": WORKSPACE, "KEYREPORT_AZURE_AUTH": "secret"},
            [
                "AZURE_TENANT_ID is required for KEYREPORT_AZURE_AUTH=secret",
                "AZURE_CLIENT_ID is required for KEYREPORT_AZURE_AUTH=secret",
                "KEYREPORT_AZURE_CLIENT_SECRET_ARN is required for KEYREPORT_AZURE_AUTH=secret",
            ],
        ),
    ],
)
def test_every_problem_is_listed(env: dict[str, str], problems: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.for_query(env)
    for problem in problems:
        assert any(found.startswith(problem) for found in caught.value.problems), caught.value.problems
    assert not any("KEYVAULT" in found or "DCE" in found for found in caught.value.problems)


def test_a_workspace_without_keyreports_functions_is_told_to_deploy_them() -> None:
    message = (
        "400 BadArgumentError: 'where' operator: Failed to resolve table or column expression named "
        "'KeyReport_CurrentKeys'"
    )
    assert "deploy azure/functions.json" in function_hint(message)
    assert function_hint("400 BadArgumentError: Failed to resolve column or scalar expression named 'Nope'") == ""
