"""The Logs Ingestion emulator is strict and honest: the real SDK is accepted, every documented refusal has
the service's status and error shape, and rows are stored exactly as the Data Collector emulator stores them."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.identity import ClientSecretCredential
from azure.monitor.ingestion import LogsIngestionClient, LogsUploadError

from sandbox.data_collector import DataCollectorEmulator
from sandbox.entra import EntraEmulator
from sandbox.logs_ingestion import MAX_CALL_BYTES, LogsIngestionEmulator, gzip_json
from sandbox.tls import LocalCA
from tests.sandbox.conftest import CLIENT, KEY, SECRET, TENANT, WORKSPACE
from tests.sandbox.test_emulators import post_logs

RULE = "dcr-00112233445566778899aabbccddeeff"
KEYS = "AWS_Access_Key_Report_CL"
STREAM = f"Custom-{KEYS}"
AUDIENCE = "https://monitor.azure.com"
NOW = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # the Data Collector keeps TimeGenerated only if recent
RECORD: dict[str, Any] = {
    "TimeGenerated": NOW,
    "loggedDate_t": NOW,
    "user_s": "alice",
    "CreateDate_t": "2023-01-02T03:04:05Z",
    "KeyAgeDays_d": 516,
    "NeverUsed_b": False,
    "RunId_g": "0B6F2E5C4A7D4E1B9C3F2D8A6E1F7B40",
}


@pytest.fixture
def ingestion(local_ca: LocalCA, entra: EntraEmulator) -> Iterator[LogsIngestionEmulator]:
    with LogsIngestionEmulator(local_ca, entra, WORKSPACE) as emulator:
        emulator.add_rule(RULE)
        emulator.assign_publisher(RULE, entra.register_app(TENANT, CLIENT).object_id)
        yield emulator


def token(entra: EntraEmulator, audience: str = AUDIENCE) -> str:
    return entra.issue_token(TENANT, CLIENT, audience)


def post(
    emulator: LogsIngestionEmulator,
    bundle: str,
    body: bytes,
    *,
    bearer: str | None,
    stream: str = STREAM,
    rule: str = RULE,
    query: str = "?api-version=2023-01-01",
    headers: dict[str, str] | None = None,
) -> requests.Response:
    all_headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    if bearer is not None:
        all_headers["Authorization"] = f"Bearer {bearer}"
    all_headers.update(headers or {})
    url = f"{emulator.url}/dataCollectionRules/{rule}/streams/{stream}{query}"
    return requests.post(url, data=body, headers=all_headers, verify=bundle, timeout=10)


def error_of(response: requests.Response) -> tuple[int, str]:
    code = response.json()["error"]["code"]
    assert response.headers["x-ms-error-code"] == code and response.json()["error"]["message"]
    return response.status_code, code


def test_an_empty_upload_answers_204_and_creates_nothing_but_needs_the_role(
    ingestion: LogsIngestionEmulator, entra: EntraEmulator, bundle: str
) -> None:
    """`[]` is what `keyreport check` (and Vector's healthcheck) sends: authorised like any upload, no row."""
    assert post(ingestion, bundle, gzip_json([]), bearer=token(entra)).status_code == 204
    assert ingestion.tables() == {}
    ingestion.revoke_publisher(RULE, entra.register_app(TENANT, CLIENT).object_id)
    assert error_of(post(ingestion, bundle, gzip_json([]), bearer=token(entra))) == (403, "OperationFailed")


def test_the_real_sdk_uploads_gzip_and_gets_204(
    ingestion: LogsIngestionEmulator, entra: EntraEmulator, bundle: str
) -> None:
    credential = ClientSecretCredential(
        TENANT, CLIENT, SECRET, authority=entra.url, disable_instance_discovery=True, connection_verify=bundle
    )
    client = LogsIngestionClient(ingestion.url, credential, connection_verify=bundle)
    failures: list[LogsUploadError] = []

    client.upload(RULE, STREAM, [RECORD, {**RECORD, "user_s": "bob"}], on_error=failures.append)

    assert not failures
    [upload] = ingestion.uploads
    assert upload.content_encoding == "gzip" and upload.records == 2 and upload.body_bytes < upload.payload_bytes
    assert [row["user_s"] for row in ingestion.rows(KEYS)] == ["alice", "bob"]
    assert ingestion.history[-1].status == 204


def test_rows_are_stored_like_the_data_collector_stores_them(
    ingestion: LogsIngestionEmulator, entra: EntraEmulator, local_ca: LocalCA, bundle: str
) -> None:
    assert post(ingestion, bundle, gzip_json([RECORD]), bearer=token(entra)).status_code == 204
    with DataCollectorEmulator(local_ca, WORKSPACE, KEY) as collector:
        fields = {name.rsplit("_", 1)[0]: value for name, value in RECORD.items() if name != "TimeGenerated"}
        response = post_logs(
            collector,
            bundle,
            [fields],
            log_type="AWS_Access_Key_Report",
            headers={"time-generated-field": "loggedDate"},
        )
        assert response.status_code == 200
        [via_collector] = collector.rows(KEYS)
    [via_ingestion] = ingestion.rows(KEYS)
    via_collector.pop("SourceSystem")  # the Data Collector API's own column
    assert via_ingestion == via_collector
    assert via_ingestion["RunId_g"] == "0b6f2e5c-4a7d-4e1b-9c3f-2d8a6e1f7b40"  # guid normalised
    assert via_ingestion["KeyAgeDays_d"] == 516.0 and isinstance(via_ingestion["KeyAgeDays_d"], float)


def test_read_back_api_serves_the_stored_rows(
    ingestion: LogsIngestionEmulator, entra: EntraEmulator, bundle: str
) -> None:
    post(ingestion, bundle, gzip_json([RECORD]), bearer=token(entra))
    tables = requests.get(f"{ingestion.url}/_sandbox/tables", verify=bundle, timeout=10).json()
    assert tables == {"tables": {KEYS: 1}}
    rows = requests.get(f"{ingestion.url}/_sandbox/tables/{KEYS}", verify=bundle, timeout=10).json()
    assert rows == ingestion.rows(KEYS)


@pytest.mark.parametrize(
    ("bearer", "expected"),
    [(None, (401, "InvalidToken")), ("not-a-jwt", (401, "InvalidToken")), ("vault", (401, "InvalidAudience"))],
)
def test_requests_without_a_monitor_token_get_401(
    ingestion: LogsIngestionEmulator, entra: EntraEmulator, bundle: str, bearer: str | None, expected: tuple[int, str]
) -> None:
    presented = token(entra, "https://vault.azure.net") if bearer == "vault" else bearer
    response = post(ingestion, bundle, gzip_json([RECORD]), bearer=presented)
    assert error_of(response) == expected
    assert not ingestion.rows(KEYS)


def test_a_principal_without_the_role_gets_the_services_403(
    ingestion: LogsIngestionEmulator, entra: EntraEmulator, bundle: str
) -> None:
    ingestion.revoke_publisher(RULE, entra.register_app(TENANT, CLIENT).object_id)
    response = post(ingestion, bundle, gzip_json([RECORD]), bearer=token(entra))
    assert error_of(response) == (403, "OperationFailed")
    assert "does not have access to ingest data for the data collection rule" in response.json()["error"]["message"]
    unknown_rule = post(ingestion, bundle, gzip_json([RECORD]), bearer=token(entra), rule="dcr-" + "0" * 32)
    assert error_of(unknown_rule) == (403, "OperationFailed")


def test_an_undeclared_stream_is_404(ingestion: LogsIngestionEmulator, entra: EntraEmulator, bundle: str) -> None:
    response = post(ingestion, bundle, gzip_json([RECORD]), bearer=token(entra), stream="Custom-Other_CL")
    assert error_of(response) == (404, "InvalidStream")


def test_an_undeclared_column_is_refused_not_dropped(
    ingestion: LogsIngestionEmulator, entra: EntraEmulator, bundle: str
) -> None:
    response = post(ingestion, bundle, gzip_json([RECORD, {**RECORD, "user": "alice"}]), bearer=token(entra))
    assert error_of(response) == (400, "InvalidStreamData")
    assert "Record 1 has property 'user'" in response.json()["error"]["message"]
    assert not ingestion.rows(KEYS)  # all or nothing, like the service


@pytest.mark.parametrize(
    ("column", "value"),
    [("KeyAgeDays_d", "516"), ("NeverUsed_b", "false"), ("CreateDate_t", "yesterday"), ("user_s", 5)],
)
def test_a_value_of_the_wrong_type_is_refused(
    ingestion: LogsIngestionEmulator, entra: EntraEmulator, bundle: str, column: str, value: Any
) -> None:
    response = post(ingestion, bundle, gzip_json([{**RECORD, column: value}]), bearer=token(entra))
    assert error_of(response) == (400, "InvalidStreamData")
    assert f"property '{column}'" in response.json()["error"]["message"]


def test_over_one_megabyte_on_the_wire_is_413(
    ingestion: LogsIngestionEmulator, entra: EntraEmulator, bundle: str
) -> None:
    body = b"\x1f\x8b" + b"\x00" * MAX_CALL_BYTES  # size alone decides, before the body is read
    response = post(ingestion, bundle, body, bearer=token(entra))
    assert error_of(response) == (413, "ContentLengthLimitExceeded")
    assert "Maximum allowed content length: 1048576 bytes (1 MB)" in response.json()["error"]["message"]


def test_over_one_megabyte_uncompressed_is_413_however_well_it_compresses(
    ingestion: LogsIngestionEmulator, entra: EntraEmulator, bundle: str
) -> None:
    body = gzip_json([{**RECORD, "user_s": "x" * 1000}] * 1100)
    assert len(body) < 50_000
    assert error_of(post(ingestion, bundle, body, bearer=token(entra))) == (413, "ContentLengthLimitExceeded")


def test_one_megabyte_exactly_fits(ingestion: LogsIngestionEmulator, entra: EntraEmulator, bundle: str) -> None:
    record = {**RECORD, "user_s": ""}
    filler = MAX_CALL_BYTES - len(json.dumps([record]))
    body = gzip.compress(json.dumps([{**record, "user_s": "y" * filler}]).encode())
    assert len(gzip.decompress(body)) == MAX_CALL_BYTES
    assert post(ingestion, bundle, body, bearer=token(entra)).status_code == 204


@pytest.mark.parametrize(
    ("body", "headers", "query", "expected"),
    [
        (b"\x1f\x8bnot gzip at all", {}, "?api-version=2023-01-01", (400, "InvalidContentEncoding")),
        (gzip_json({"not": "an array"}), {}, "?api-version=2023-01-01", (400, "InvalidPayload")),
        (
            gzip_json([RECORD]),
            {"Content-Encoding": "br"},
            "?api-version=2023-01-01",
            (415, "UnsupportedContentEncoding"),
        ),
        (gzip_json([RECORD]), {"Content-Type": "text/plain"}, "?api-version=2023-01-01", (415, "UnsupportedMediaType")),
        (gzip_json([RECORD]), {}, "", (400, "MissingApiVersionParameter")),
        (gzip_json([RECORD]), {}, "?api-version=2016-04-01", (400, "UnsupportedApiVersion")),
    ],
    # Explicit ids: gzip output carries a timestamp, and xdist workers must collect identical test names.
    ids=["not-gzip", "not-an-array", "brotli", "text-plain", "no-api-version", "old-api-version"],
)
def test_malformed_requests_get_the_services_error_shape(
    ingestion: LogsIngestionEmulator,
    entra: EntraEmulator,
    bundle: str,
    body: bytes,
    headers: dict[str, str],
    query: str,
    expected: tuple[int, str],
) -> None:
    response = post(ingestion, bundle, body, bearer=token(entra), headers=headers, query=query)
    assert error_of(response) == expected


def test_uncompressed_json_is_accepted_too(ingestion: LogsIngestionEmulator, entra: EntraEmulator, bundle: str) -> None:
    body = json.dumps([RECORD]).encode()
    response = post(ingestion, bundle, body, bearer=token(entra), headers={"Content-Encoding": ""})
    assert response.status_code == 204 and ingestion.uploads[-1].content_encoding is None


def test_faults_come_with_retry_after_and_the_sdk_reports_them_through_on_error(
    ingestion: LogsIngestionEmulator, entra: EntraEmulator, bundle: str
) -> None:
    ingestion.fail_next(429, retry_after=7)
    response = post(ingestion, bundle, gzip_json([RECORD]), bearer=token(entra))
    assert error_of(response) == (429, "TooManyRequests") and response.headers["Retry-After"] == "7"

    ingestion.fail_next(503)
    credential = ClientSecretCredential(
        TENANT, CLIENT, SECRET, authority=entra.url, disable_instance_discovery=True, connection_verify=bundle
    )
    client = LogsIngestionClient(ingestion.url, credential, connection_verify=bundle, retry_total=0)
    failures: list[LogsUploadError] = []
    client.upload(RULE, STREAM, [RECORD], on_error=failures.append)
    [failure] = failures
    assert isinstance(failure.error, HttpResponseError) and failure.error.status_code == 503
    assert failure.failed_logs == [RECORD]
