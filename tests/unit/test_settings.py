from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from keyreport.settings import VARIABLES, ConfigError, DataCollectorSettings, Settings, StdoutSettings
from keyreport.validation import log_type_problem, looks_like
from tests.unit.settings_helpers import SECRET_MODE_APP, problems_with

WS = "3f2b7c1e-5d4a-4b8e-9c0f-1a2b3c4d5e6f"
GOOD = {
    "KEYREPORT_SINK": "data_collector",  # chosen explicitly: the default is logs_ingestion
    "KEYREPORT_WORKSPACE_ID": WS,
    "KEYREPORT_KEYVAULT_URL": "https://kv-keyreport.vault.azure.net",
    "KEYREPORT_WORKSPACE_KEY_SECRET": "la-workspace-key",
    **SECRET_MODE_APP,
}


def problems(**changes: str) -> list[str]:
    return problems_with(GOOD, **changes)


def endpoint(settings: Settings) -> str:
    assert isinstance(settings.sink, DataCollectorSettings)
    return settings.sink.endpoint(settings.azure.cloud)


def test_good_settings_parse_with_defaults() -> None:
    settings = Settings.from_env(GOOD)
    assert settings.sink.name == "data_collector" and settings.log_type == "AWS_Access_Key_Report"
    assert settings.run_log_type == "AWS_Access_Key_Report_Run"
    assert endpoint(settings) == f"https://{WS}.ods.opinsights.azure.com"
    assert settings.azure.authority_host == "https://login.microsoftonline.com"
    assert settings.aws_retry_mode == "standard"


def test_settings_are_frozen_and_hashable() -> None:
    settings = Settings.from_env(GOOD)
    with pytest.raises(AttributeError):
        settings.sink = StdoutSettings()  # type: ignore[misc]
    assert {settings: 1}[Settings.from_env(GOOD)] == 1


def test_sovereign_cloud_switches_hosts_together() -> None:
    gov = Settings.from_env(GOOD | {"KEYREPORT_AZURE_CLOUD": "usgov"})
    assert endpoint(gov) == f"https://{WS}.ods.opinsights.azure.us"
    assert gov.azure.authority_host == "https://login.microsoftonline.us"
    china = Settings.from_env(GOOD | {"KEYREPORT_AZURE_CLOUD": "China"})
    assert endpoint(china).endswith(".ods.opinsights.azure.cn")


def test_endpoint_override_wins() -> None:
    settings = Settings.from_env(GOOD | {"KEYREPORT_DATA_COLLECTOR_ENDPOINT": "https://127.0.0.1:8443/"})
    assert endpoint(settings) == "https://127.0.0.1:8443"


def test_missing_workspace_id() -> None:
    assert problems(KEYREPORT_WORKSPACE_ID="<unset>") == [
        "KEYREPORT_WORKSPACE_ID is required for KEYREPORT_SINK=data_collector"
    ]


@pytest.mark.parametrize("value", ["not-a-guid", "3f2b7c1e5d4a4b8e9c0f1a2b3c4d5e6f", "{" + WS + "}"])
def test_workspace_id_not_a_guid(value: str) -> None:
    [problem] = problems(KEYREPORT_WORKSPACE_ID=value)
    assert problem.startswith(f"KEYREPORT_WORKSPACE_ID={value!r}") and "GUID" in problem


@pytest.mark.parametrize("value", ["AWS-Keys", "a b", "x" * 101, "Report$"])
def test_invalid_log_type(value: str) -> None:
    [problem] = problems(KEYREPORT_LOG_TYPE=value)
    assert "KEYREPORT_LOG_TYPE" in problem and "Log-Type" in problem


def test_log_type_must_leave_room_for_the_run_and_users_tables() -> None:
    [problem] = problems(KEYREPORT_LOG_TYPE="x" * 95)
    assert "leaves no room for the users type" in problem
    assert log_type_problem("x" * 94) is None


def test_unknown_sink() -> None:
    [problem] = problems(KEYREPORT_SINK="splunk")
    assert problem == "KEYREPORT_SINK='splunk' is not one of: data_collector, logs_ingestion, stdout"


def test_key_vault_url_must_be_https() -> None:
    [problem] = problems(KEYREPORT_KEYVAULT_URL="http://kv.vault.azure.net")
    assert problem == "KEYREPORT_KEYVAULT_URL='http://kv.vault.azure.net' must be an https:// URL"


def test_unknown_auth_mode_and_cloud() -> None:
    found = problems(KEYREPORT_AZURE_AUTH="password", KEYREPORT_AZURE_CLOUD="mars")
    assert any(p.startswith("KEYREPORT_AZURE_AUTH='password'") for p in found)
    assert any(p.startswith("KEYREPORT_AZURE_CLOUD='mars'") for p in found)


def test_secret_mode_needs_its_secret_and_app() -> None:
    found = problems(KEYREPORT_AZURE_CLIENT_SECRET_ARN="<unset>", AZURE_CLIENT_ID="<unset>")
    assert "AZURE_CLIENT_ID is required for KEYREPORT_AZURE_AUTH=secret" in found
    assert "KEYREPORT_AZURE_CLIENT_SECRET_ARN is required for KEYREPORT_AZURE_AUTH=secret" in found


def test_bad_numbers_and_files(tmp_path: Path) -> None:
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("hello")
    found = problems(
        KEYREPORT_BATCH_MAX_BYTES="lots",
        KEYREPORT_IAM_CONCURRENCY="0",
        KEYREPORT_CA_BUNDLE=str(not_pem),
        KEYREPORT_AZURE_CLIENT_SECRET_ARN="keyreport-secret",
    )
    assert "KEYREPORT_BATCH_MAX_BYTES='lots' is not a whole number" in found
    assert "KEYREPORT_IAM_CONCURRENCY=0 must be between 1 and 64" in found
    assert f"KEYREPORT_CA_BUNDLE={str(not_pem)!r} contains no PEM certificate" in found
    assert "KEYREPORT_AZURE_CLIENT_SECRET_ARN='keyreport-secret' is not an ARN" in found


def test_batch_size_cannot_exceed_the_data_collector_limit() -> None:
    [problem] = problems(KEYREPORT_BATCH_MAX_BYTES=str(30_000_001))
    assert "must be between 1024 and 30000000" in problem


def test_every_problem_is_listed_at_once() -> None:
    found = problems(
        KEYREPORT_WORKSPACE_ID="nope",
        KEYREPORT_SINK="kafka",
        KEYREPORT_KEYVAULT_URL="ftp://x",
        KEYREPORT_LOG_TYPE="bad-type",
    )
    assert len(found) == 4
    assert "KEYREPORT_SINK='kafka'" in str(ConfigError(found))


def test_dry_run_needs_no_azure_settings() -> None:
    assert Settings.from_env({"KEYREPORT_SINK": "stdout"}).sink.name == "stdout"
    assert Settings.from_env({}, KEYREPORT_SINK="stdout").sink.name == "stdout"


def test_every_variable_read_is_documented_in_settings() -> None:
    source = Path(sys.modules[Settings.__module__].__file__ or "").read_text()
    read = set(re.findall(r'"((?:KEYREPORT|AZURE)_[A-Z_]+)"', source))
    assert read == set(VARIABLES)


def test_cli_config_error_is_a_message_not_a_traceback() -> None:
    env = {"PATH": "/usr/bin:/bin", "KEYREPORT_WORKSPACE_ID": "nope", "KEYREPORT_SINK": "data_collector"}
    done = subprocess.run(
        [sys.executable, "-m", "keyreport.cli", "run"], check=False, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "KEYREPORT_WORKSPACE_ID='nope' is not a GUID" in done.stderr
    assert "KEYREPORT_KEYVAULT_URL is required" in done.stderr


# Secrets as people paste them: a workspace key, an Entra client secret, an AWS secret access key, a JWT, a PEM.
PASTED_SECRETS = {
    "workspace key": base64.b64encode(bytes(range(7, 71))).decode(),
    "client secret": "Xk8Q~4vGz1mD.pQ9rT_sW2yL7nB-cF3hJ6kA0eUo",
    "AWS secret key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLE7Q",
    "token": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJrZXlyZXBvcnQifQ.c2lnbmF0dXJlLWJ5dGVz",
    "PEM": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----",
    "hex key": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",  # openssl rand -hex 32
}


@pytest.mark.parametrize("secret", PASTED_SECRETS.values(), ids=PASTED_SECRETS.keys())
@pytest.mark.parametrize("name", sorted(VARIABLES))
def test_a_secret_pasted_into_any_variable_is_described_never_echoed(name: str, secret: str) -> None:
    try:
        Settings.from_env(GOOD | {name: secret})
    except ConfigError as error:
        text = str(error)
        assert secret not in text and secret[:16] not in text and secret.lower() not in text.lower()
        assert name in text


def test_the_usual_mistakes_are_named_for_what_they_look_like() -> None:
    key, client_secret = PASTED_SECRETS["workspace key"], PASTED_SECRETS["client secret"]
    assert problems(KEYREPORT_WORKSPACE_KEY_SECRET=key) == [
        "KEYREPORT_WORKSPACE_KEY_SECRET looks like a base64 key, not a secret name: "
        "set the name of the Key Vault secret that holds it"
    ]
    assert problems(KEYREPORT_WORKSPACE_KEY_SECRET=PASTED_SECRETS["hex key"]) == [
        "KEYREPORT_WORKSPACE_KEY_SECRET looks like a hex key, not a secret name: "
        "set the name of the Key Vault secret that holds it"
    ]
    Settings.from_env(GOOD | {"AZURE_CLIENT_ID": "3f2b7c1e5d4a4b8e9c0f1a2b3c4d5e6f"})  # a GUID without dashes
    assert problems(KEYREPORT_AZURE_CLIENT_SECRET_ARN=client_secret) == [
        "KEYREPORT_AZURE_CLIENT_SECRET_ARN looks like an Entra client secret, not an ARN: "
        "keep the value in Secrets Manager and set the secret's ARN here"
    ]
    assert problems(AZURE_CLIENT_ID=client_secret) == [
        "AZURE_CLIENT_ID looks like an Entra client secret, but no keyreport variable holds a secret: "
        "keep it in Secrets Manager or Key Vault and name it here"
    ]
    [problem] = problems(KEYREPORT_WORKSPACE_ID="3f2b7c1e5d4a4b8e9c0f1a2b3c4d5e6fXYZ")
    assert problem == (
        "KEYREPORT_WORKSPACE_ID is not a GUID (the workspace id looks like 1b2c3d4e-...; see the workspace's "
        "Overview page) (the value is 35 characters long, not shown: it may be a secret)"
    )


@pytest.mark.parametrize(
    "value",
    ["AWS_Access_Key_Report_Production_Account1", "KeyReport/Production2024Accounts", "la-workspace-key-prod-01"],
)
def test_names_are_never_taken_for_secrets(value: str) -> None:
    assert looks_like(value) is None


def test_a_ca_bundle_path_too_long_for_the_file_system_is_a_problem_not_a_traceback() -> None:
    value = "/tmp/" + "x" * 300  # ENAMETOOLONG: Path.is_file() raised it, with the value in the traceback
    [problem] = problems(KEYREPORT_CA_BUNDLE=value)
    assert problem.startswith("KEYREPORT_CA_BUNDLE does not name a readable file") and value not in problem


def test_owner_tags_default_to_owner_and_team_and_may_be_none_at_all() -> None:
    assert Settings.from_env(GOOD).owner_tags == ("owner", "team")
    assert Settings.from_env(GOOD, KEYREPORT_OWNER_TAGS="").owner_tags == ()
    assert Settings.from_env(GOOD, KEYREPORT_OWNER_TAGS=" Cost Center , team ").owner_tags == ("Cost Center", "team")
    assert Settings.from_env(GOOD, KEYREPORT_OWNER_TAGS="owner").tag_rules.owner_tags == ("owner",)
    assert Settings.from_env(GOOD).max_exception_days == 365
    assert Settings.from_env(GOOD, KEYREPORT_MAX_EXCEPTION_DAYS="90").tag_rules.max_exception_days == 90


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("owner,,team", "KEYREPORT_OWNER_TAGS has an empty tag name (a comma too many?)"),
        ("owner;team", "KEYREPORT_OWNER_TAGS has a tag name IAM would not accept"),
        ("x" * 129, "KEYREPORT_OWNER_TAGS has a tag name longer than 128 characters"),
        ("Owner,team,OWNER", "KEYREPORT_OWNER_TAGS names a tag twice (IAM tag keys ignore case)"),
        ("keyreport-exception", "KEYREPORT_OWNER_TAGS='keyreport-exception' names a keyreport- tag"),
    ],
)
def test_a_bad_owner_tag_list_is_a_clear_problem(value: str, problem: str) -> None:
    [found] = problems(KEYREPORT_OWNER_TAGS=value)
    assert found.startswith(problem) and found.endswith("(a comma list of IAM tag keys)")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0", "KEYREPORT_MAX_EXCEPTION_DAYS=0 must be between 1 and 3650"),
        ("3651", "KEYREPORT_MAX_EXCEPTION_DAYS=3651 must be between 1 and 3650"),
        ("a year", "KEYREPORT_MAX_EXCEPTION_DAYS='a year' is not a whole number"),
    ],
)
def test_a_bad_exception_maximum_is_a_clear_problem(value: str, problem: str) -> None:
    assert problems(KEYREPORT_MAX_EXCEPTION_DAYS=value) == [problem]


def test_a_bad_tag_setting_ends_the_cli_with_exit_code_2_and_no_traceback() -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "KEYREPORT_SINK": "stdout",
        "KEYREPORT_OWNER_TAGS": "owner,,team",
        "KEYREPORT_MAX_EXCEPTION_DAYS": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "keyreport.cli", "run"], check=False, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "KEYREPORT_OWNER_TAGS has an empty tag name" in done.stderr
    assert "KEYREPORT_MAX_EXCEPTION_DAYS=0 must be between 1 and 3650" in done.stderr
