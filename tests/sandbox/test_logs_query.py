"""The Log Analytics query emulator on its own: raw HTTPS requests, the service's answers and refusals."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from sandbox.data_collector import format_datetime
from sandbox.entra import EntraEmulator
from sandbox.logs_query import PUBLIC_AUDIENCE, LogsQueryEmulator
from sandbox.tls import LocalCA
from tests.sandbox.conftest import CLIENT, TENANT, WORKSPACE

TABLE = "Rows_CL"


class Store:
    """A stand-in for an ingestion emulator's read-back: two rows, one 3 days old."""

    def __init__(self) -> None:
        now = datetime.now(UTC).replace(microsecond=0)
        self.stored = [
            {"TimeGenerated": format_datetime(now - timedelta(hours=1)), "name_s": "recent", "n_d": 1.0},
            {"TimeGenerated": format_datetime(now - timedelta(days=3)), "name_s": "old", "n_d": 2.0},
        ]

    def tables(self) -> dict[str, int]:
        return {TABLE: len(self.stored)}

    def columns(self, table: str) -> dict[str, str]:
        return {"name_s": "string", "n_d": "real"}

    def rows(self, table: str) -> list[dict[str, Any]]:
        return list(self.stored)


@pytest.fixture
def emulator(local_ca: LocalCA, entra: EntraEmulator) -> Iterator[LogsQueryEmulator]:
    with LogsQueryEmulator(local_ca, entra, TENANT, WORKSPACE, [Store()]) as running:
        yield running


def post(
    emulator: LogsQueryEmulator, bundle: str, body: Any, token: str | None, workspace: str = WORKSPACE
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(
        f"{emulator.url}/v1/workspaces/{workspace}/query", json=body, headers=headers, verify=bundle, timeout=10
    )


def token(entra: EntraEmulator, audience: str = PUBLIC_AUDIENCE) -> str:
    return entra.issue_token(TENANT, CLIENT, audience)


def test_answers_with_tables_columns_and_rows(emulator: LogsQueryEmulator, entra: EntraEmulator, bundle: str) -> None:
    answer = post(emulator, bundle, {"query": f"{TABLE} | project name_s, n_d"}, token(entra))
    assert answer.status_code == 200
    [table] = answer.json()["tables"]
    assert table["name"] == "PrimaryResult"
    assert table["columns"] == [{"name": "name_s", "type": "string"}, {"name": "n_d", "type": "real"}]
    assert sorted(table["rows"]) == [["old", 2.0], ["recent", 1.0]]


@pytest.mark.parametrize("timespan", ["P1D", "PT86400.0S", "{start}/{end}", "{start}/P1D"])
def test_a_timespan_limits_the_rows(
    emulator: LogsQueryEmulator, entra: EntraEmulator, bundle: str, timespan: str
) -> None:
    end = datetime.now(UTC) + timedelta(minutes=1)
    text = timespan.format(start=(end - timedelta(days=1)).isoformat(), end=end.isoformat())
    answer = post(emulator, bundle, {"query": f"{TABLE} | project name_s", "timespan": text}, token(entra))
    assert answer.status_code == 200, answer.text
    assert answer.json()["tables"][0]["rows"] == [["recent"]]


@pytest.mark.parametrize(
    ("body", "status", "code", "inner"),
    [
        ({"query": f"{TABLE} | where nope > 1"}, 400, "BadArgumentError", "SemanticError"),
        ({"query": f"{TABLE} | where"}, 400, "BadArgumentError", "SyntaxError"),
        (
            {"query": f"{TABLE} | make-series c=count() on TimeGenerated step 1h"},
            400,
            "BadArgumentError",
            "SandboxUnsupported",
        ),
        ({"query": ""}, 400, "BadArgumentError", "QueryValidationError"),
        ({"query": TABLE, "timespan": "yesterday"}, 400, "BadArgumentError", "QueryValidationError"),
    ],
)
def test_bad_queries_get_the_services_error_shape(
    emulator: LogsQueryEmulator, entra: EntraEmulator, bundle: str, body: Any, status: int, code: str, inner: str
) -> None:
    answer = post(emulator, bundle, body, token(entra))
    assert answer.status_code == status
    error = answer.json()["error"]
    assert (error["code"], error["innererror"]["code"]) == (code, inner)


def test_refusals(emulator: LogsQueryEmulator, entra: EntraEmulator, bundle: str) -> None:
    query = {"query": TABLE}
    assert post(emulator, bundle, query, None).json()["error"]["code"] == "AuthorizationRequiredError"
    wrong = post(emulator, bundle, query, token(entra, "https://management.azure.com"))
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "InvalidTokenError")
    other = post(emulator, bundle, query, token(entra), workspace="00000000-0000-0000-0000-000000000000")
    assert (other.status_code, other.json()["error"]["code"]) == (404, "WorkspaceNotFoundError")
    emulator.forbid(CLIENT)
    assert post(emulator, bundle, query, token(entra)).status_code == 403
