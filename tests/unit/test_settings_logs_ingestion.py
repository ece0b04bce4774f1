"""KEYREPORT_SINK=logs_ingestion: what it needs (no workspace key, no vault), defaults, and clear refusals."""

from __future__ import annotations

import subprocess
import sys

import pytest

from keyreport.settings import LogsIngestionSettings, Settings
from tests.unit.settings_helpers import SECRET_MODE_APP, problems_with

DCR = "dcr-00112233445566778899aabbccddeeff"
GOOD = {
    "KEYREPORT_SINK": "logs_ingestion",
    "KEYREPORT_DCE_ENDPOINT": "https://keyreport-dcr-a1b2.westeurope-1.ingest.monitor.azure.com",
    "KEYREPORT_DCR_ID": DCR,
    **SECRET_MODE_APP,
}


def problems(**changes: str) -> list[str]:
    return problems_with(GOOD, **changes)


def streams(settings: Settings) -> tuple[LogsIngestionSettings, str, str]:
    sink = settings.sink
    assert isinstance(sink, LogsIngestionSettings)
    return sink, sink.keys_stream(settings.log_type), sink.runs_stream(settings.log_type)


def test_needs_no_workspace_id_key_or_vault_and_defaults_the_streams() -> None:
    settings = Settings.from_env(GOOD)
    assert settings.sink.name == "logs_ingestion" and streams(settings)[0].dcr_id == DCR
    assert streams(settings)[1:] == ("Custom-AWS_Access_Key_Report_CL", "Custom-AWS_Access_Key_Report_Run_CL")
    assert settings.azure.cloud.monitor_audience == "https://monitor.azure.com"


def test_streams_follow_the_log_type_or_are_named() -> None:
    custom = Settings.from_env(GOOD | {"KEYREPORT_LOG_TYPE": "Keys"})
    assert streams(custom)[1:] == ("Custom-Keys_CL", "Custom-Keys_Run_CL")
    named = Settings.from_env(GOOD | {"KEYREPORT_STREAM": "Custom-A", "KEYREPORT_RUN_STREAM": "Custom-B"})
    assert streams(named)[1:] == ("Custom-A", "Custom-B")


def test_endpoint_and_rule_are_required() -> None:
    assert problems(KEYREPORT_DCE_ENDPOINT="<unset>", KEYREPORT_DCR_ID="<unset>") == [
        "KEYREPORT_DCE_ENDPOINT is required for KEYREPORT_SINK=logs_ingestion",
        "KEYREPORT_DCR_ID is required for KEYREPORT_SINK=logs_ingestion",
    ]


def test_a_resource_id_for_the_rule_gets_told_to_use_the_immutable_id() -> None:
    resource_id = "/subscriptions/0000/resourceGroups/sec/providers/Microsoft.Insights/dataCollectionRules/keyreport"
    [problem] = problems(KEYREPORT_DCR_ID=resource_id)
    assert problem.startswith("KEYREPORT_DCR_ID=") and "immutable id" in problem and "dcr-<32 hex digits>" in problem


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("KEYREPORT_DCR_ID", "dcr-XYZ", "is not a data collection rule immutable id"),
        ("KEYREPORT_STREAM", "AWS_Access_Key_Report_CL", "is not a custom stream name"),
        ("KEYREPORT_RUN_STREAM", "Custom-has space", "is not a custom stream name"),
        ("KEYREPORT_DCE_ENDPOINT", "http://insecure.example", "must be an https:// URL"),
    ],
)
def test_bad_values_are_named_with_the_problem(name: str, value: str, fragment: str) -> None:
    [problem] = problems(**{name: value})
    assert problem.startswith(f"{name}=") and fragment in problem


def test_cli_reports_bad_logs_ingestion_settings_without_a_traceback() -> None:
    env = GOOD | {"KEYREPORT_DCR_ID": "not-a-rule", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "keyreport.cli", "run"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "KEYREPORT_DCR_ID='not-a-rule' is not a data collection rule immutable id" in result.stderr
    assert "Traceback" not in result.stderr
