"""KEYREPORT_SINK=logs_ingestion end to end: the real handler, azure-monitor-ingestion and azure-identity over
TLS against the Logs Ingestion emulator, which enforces the rule deployed from azure/logs-ingestion.json."""

from __future__ import annotations

import gzip
import json
import time
from typing import Any

import boto3
import pytest
import requests

from keyreport.deadline import Deadline
from keyreport.errors import RunFailed
from keyreport.records import format_timestamp, mask_key_id
from keyreport.settings import Settings
from keyreport.sinks import Table
from keyreport.wiring import Wiring
from sandbox.logs_ingestion import MAX_CALL_BYTES
from sandbox.stack import CLIENT_ID, DCR_ID, TENANT_ID
from tests import schema
from tests.integration.conftest import KEYS_TABLE, RUNS_TABLE, USERS_TABLE, World, cold_start, dumps

# What differs between two runs by construction; everything else stored must be identical across sinks.
PER_RUN = frozenset({"RunId_g", "loggedDate_t", "TimeGenerated"})
# Filled by the Data Collector API only (the DCR-based path has no SourceSystem).
COLLECTOR_ONLY = frozenset({"SourceSystem"})


@pytest.fixture
def ingestion_world(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    """The seeded world of conftest, configured as a Logs Ingestion deployment: no workspace key, no vault."""
    stack = world.stack
    stack.ingestion.faults.clear()
    stack.ingestion.assign_publisher(DCR_ID, stack.entra.register_app(TENANT_ID, CLIENT_ID).object_id)
    world.configure(monkeypatch, stack.env(sink="logs_ingestion"))
    cold_start()
    return world


def stored(world: World, run_id: str, table: str = KEYS_TABLE) -> list[dict[str, Any]]:
    return [row for row in world.stack.ingestion.rows(table) if row.get("RunId_g") == run_id]


def uploads_since(world: World, count: int) -> list[Any]:
    return world.stack.ingestion.uploads[count:]


def test_handler_ships_every_key_through_the_logs_ingestion_api(ingestion_world: World) -> None:
    world = ingestion_world
    reads_before = world.stack.keyvault.reads

    summary = world.invoke()

    assert summary["Status"] == "ok" and summary["Sink"] == "logs_ingestion"
    assert summary["Keys"] == summary["RecordsShipped"] == world.estate.key_count
    rows = {row["KeyFingerprint_s"]: row for row in stored(world, summary["RunId"])}
    assert len(rows) == world.estate.key_count
    for key in world.estate.keys:
        row = rows[world.key_fingerprint(key.access_key_id)]
        assert row["AccessKeyId_s"] == mask_key_id(key.access_key_id)
        assert (row["user_s"], row["UserArn_s"], row["Status_s"]) == (key.user_name, key.user_arn, key.status)
        assert row["CreateDate_t"] == format_timestamp(key.create_date)
        assert row["NeverUsed_b"] is key.never_used
        assert row["TimeGenerated"] == row["loggedDate_t"]
    assert world.stack.keyvault.reads == reads_before  # this sink needs no workspace key
    [run] = stored(world, summary["RunId"], RUNS_TABLE)
    assert run["Sink_s"] == "logs_ingestion" and run["RecordsShipped_d"] == world.estate.key_count


def test_requests_are_gzip_bearer_authenticated_and_within_one_megabyte(
    ingestion_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = ingestion_world
    monkeypatch.setenv("KEYREPORT_BATCH_MAX_BYTES", "8192")  # several requests from a small estate
    before = len(world.stack.ingestion.uploads)

    summary = world.invoke()

    uploads = uploads_since(world, before)
    keys = [upload for upload in uploads if upload.table == KEYS_TABLE]
    assert len(keys) > 3 and sum(upload.records for upload in keys) == world.estate.key_count
    for upload in uploads:
        assert upload.content_encoding == "gzip" and upload.headers["Content-Encoding"] == "gzip"
        assert upload.body_bytes <= MAX_CALL_BYTES and upload.payload_bytes <= 8192
        assert upload.headers["Authorization"].startswith("Bearer ")
        assert upload.rule_id == DCR_ID
    assert {upload.stream for upload in uploads} == {f"Custom-{t}" for t in (KEYS_TABLE, RUNS_TABLE, USERS_TABLE)}
    assert summary["RecordsShipped"] == world.estate.key_count
    # The token was asked for the Azure Monitor audience, and once per run (cached by azure-core).
    audiences = {claims["aud"] for claims in world.stack.entra.issued}
    assert "https://monitor.azure.com" in audiences


def test_a_large_estate_is_split_under_the_services_limit_by_default(ingestion_world: World) -> None:
    """~4,000 records do not fit one call: the default chunking keeps every request under 1 MiB."""
    world = ingestion_world
    sink = Wiring(Settings.from_env(), boto3.Session()).sink
    rows = [
        {"loggedDate": "2024-06-01T00:00:00Z", "account_number": "123456789012", "user": f"user-{i:05d}" * 4,
         "UserArn": f"arn:aws:iam::123456789012:user/user-{i:05d}", "AccessKeyId": "AKIA...MPLE",
         "KeyFingerprint": f"kf1-{i:040x}", "Status": "Active", "NeverUsed": True,
         "RunId": "0b6f2e5c-4a7d-4e1b-9c3f-2d8a6e1f7b40"}
        for i in range(4000)
    ]  # fmt: skip
    before = len(world.stack.ingestion.uploads)

    delivery = sink.send(Table.KEYS, iter(rows), Deadline.after(120))

    uploads = uploads_since(world, before)
    assert delivery.shipped == 4000 and not delivery.failed_batches
    assert len(uploads) >= 2
    assert all(upload.payload_bytes <= 1_000_000 and upload.body_bytes <= MAX_CALL_BYTES for upload in uploads)


def test_429_and_503_are_retried_and_nothing_is_lost(ingestion_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world = ingestion_world
    monkeypatch.setenv("KEYREPORT_BATCH_MAX_BYTES", "8192")
    ingestion = world.stack.ingestion
    seen = len(ingestion.history)
    ingestion.fail_next(500)  # no Retry-After: full-jitter backoff (at most 1 s before the second attempt)
    ingestion.fail_next(429, 2, retry_after=0.1)
    ingestion.fail_next(503, retry_after=0)

    summary = world.invoke()

    assert summary["Status"] == "ok" and summary["RecordsShipped"] == world.estate.key_count
    assert len(stored(world, summary["RunId"])) == world.estate.key_count
    statuses = [exchange.status for exchange in ingestion.history[seen:] if "/streams/" in exchange.target]
    assert statuses[:4] == [500, 429, 429, 503] and statuses.count(204) >= 4


def test_a_failed_chunk_is_counted_and_the_others_still_go(
    ingestion_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = ingestion_world
    monkeypatch.setenv("KEYREPORT_BATCH_MAX_BYTES", "8192")
    monkeypatch.delenv("KEYREPORT_SPILL_BUCKET", raising=False)  # count the failure, do not spill it
    world.stack.ingestion.fail_next(400)  # not retryable: the first chunk is refused for good

    with pytest.raises(RunFailed) as failed:
        world.invoke()

    summary = failed.value.summary
    assert 0 < summary.failed < world.estate.key_count
    assert summary.shipped + summary.failed == world.estate.key_count
    assert len(stored(world, summary.run_id)) == summary.shipped


def test_without_the_role_assignment_the_run_fails_with_a_hint(
    ingestion_world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world = ingestion_world
    world.stack.ingestion.revoke_publisher(DCR_ID, world.stack.entra.register_app(TENANT_ID, CLIENT_ID).object_id)

    with pytest.raises(RunFailed) as failed:
        world.invoke()

    summary = failed.value.summary
    assert summary.shipped == 0 and summary.failed + summary.spilled == world.estate.key_count
    logged = capsys.readouterr().err
    assert "403 OperationFailed" in logged and "Monitoring Metrics Publisher" in logged
    assert "eyJ" not in logged and world.stack.client_secret not in logged  # no token, no secret


def test_retries_stop_before_the_lambda_deadline(ingestion_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world = ingestion_world
    monkeypatch.setenv("KEYREPORT_DEADLINE_MARGIN_SECONDS", "2")
    world.stack.ingestion.fail_next(503, 1000, retry_after=3)  # a storm that outlasts the invocation
    started = time.monotonic()

    with pytest.raises(RunFailed) as failed:
        world.invoke(timeout_seconds=8)

    assert time.monotonic() - started < 8
    summary = failed.value.summary
    assert summary.shipped == 0 and summary.failed + summary.spilled == world.estate.key_count


def test_stored_columns_are_exactly_the_contract(ingestion_world: World) -> None:
    ingestion_world.invoke()
    assert ingestion_world.stack.ingestion.columns(KEYS_TABLE) == schema.columns(KEYS_TABLE)
    assert ingestion_world.stack.ingestion.columns(RUNS_TABLE) == schema.columns(RUNS_TABLE)
    assert ingestion_world.stack.ingestion.columns(USERS_TABLE) == schema.columns(USERS_TABLE)


def test_both_sinks_store_the_same_rows_for_the_same_estate(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The migration promise: whichever sink wrote them, the rows (and so every query) are the same."""
    collector_summary = world.invoke()
    collector_rows = world.rows(collector_summary["RunId"])
    collector_run = world.rows(collector_summary["RunId"], RUNS_TABLE)

    world.configure(monkeypatch, world.stack.env(sink="logs_ingestion"))
    cold_start()
    ingestion_summary = world.invoke()
    ingestion_rows = stored(world, ingestion_summary["RunId"])
    ingestion_run = stored(world, ingestion_summary["RunId"], RUNS_TABLE)

    def comparable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        kept = [{k: v for k, v in row.items() if k not in PER_RUN | COLLECTOR_ONLY} for row in rows]
        return sorted(kept, key=lambda row: json.dumps(row, sort_keys=True))

    assert len(collector_rows) == len(ingestion_rows) == world.estate.key_count
    assert comparable(collector_rows) == comparable(ingestion_rows)
    for rows in (collector_rows, ingestion_rows):
        assert all(row["TimeGenerated"] == row["loggedDate_t"] for row in rows)
    # The run rows differ only where the runs themselves did (sink name, duration).
    differing = {"Sink_s", "DurationSeconds_d"}
    assert comparable([{k: v for k, v in collector_run[0].items() if k not in differing}]) == comparable(
        [{k: v for k, v in ingestion_run[0].items() if k not in differing}]
    )
    assert (collector_run[0]["Sink_s"], ingestion_run[0]["Sink_s"]) == ("data_collector", "logs_ingestion")
    collector_users = world.rows(collector_summary["RunId"], USERS_TABLE)
    ingestion_users = stored(world, ingestion_summary["RunId"], USERS_TABLE)
    assert len(collector_users) == world.estate.user_count + 1  # and the root user
    assert comparable(collector_users) == comparable(ingestion_users)


def test_nothing_secret_reaches_the_stored_rows_or_the_wire(ingestion_world: World) -> None:
    world = ingestion_world
    summary = world.invoke()
    assert "eyJ" not in dumps(stored(world, summary["RunId"]))
    for secret in world.secrets():
        assert secret not in dumps(stored(world, summary["RunId"]) + stored(world, summary["RunId"], RUNS_TABLE))


def test_the_emulator_refuses_a_body_over_one_megabyte_even_when_it_compresses_well(ingestion_world: World) -> None:
    """The limit the sink's chunking is there for: 1 MiB uncompressed, whatever gzip makes of it."""
    world = ingestion_world
    token = world.stack.entra.issue_token(TENANT_ID, CLIENT_ID, "https://monitor.azure.com")
    body = gzip.compress(json.dumps([{"user_s": "x" * 1000}] * 1100).encode())
    assert len(body) < 100_000
    response = requests.post(
        f"{world.stack.ingestion.url}/dataCollectionRules/{DCR_ID}/streams/Custom-{KEYS_TABLE}?api-version=2023-01-01",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Content-Encoding": "gzip"},
        verify=str(world.stack.ca.ca_bundle_path),
        timeout=10,
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "ContentLengthLimitExceeded"


def test_a_dropped_connection_is_retried(ingestion_world: World) -> None:
    world = ingestion_world
    world.stack.ingestion.drop_next()  # the POST is sent, the answer never comes: retry (a duplicate beats a loss)

    summary = world.invoke()

    assert summary["Status"] == "ok" and len(stored(world, summary["RunId"])) == world.estate.key_count


def test_a_wrong_client_secret_fails_every_chunk_without_hammering_entra(
    ingestion_world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sandbox.estate import seed_client_secret
    from sandbox.stack import CLIENT_SECRET_NAME

    world = ingestion_world
    monkeypatch.setenv("KEYREPORT_BATCH_MAX_BYTES", "8192")
    monkeypatch.delenv("KEYREPORT_SPILL_BUCKET", raising=False)
    wrong = "kr~not-the-registered-secret-0123456789"
    seed_client_secret(world.stack.aws, CLIENT_SECRET_NAME, wrong)
    token_requests = sum(1 for e in world.stack.entra.history if e.target.endswith("/token"))

    with pytest.raises(RunFailed) as failed:
        world.invoke()

    summary = failed.value.summary
    assert summary.shipped == 0 and summary.failed == world.estate.key_count
    logged = capsys.readouterr().err
    assert "no Entra token for the Logs Ingestion API" in logged and "not sent: the Entra token" in logged
    assert wrong not in logged and world.stack.client_secret not in logged
    # one failing chunk per table asks Entra (with one re-read of the secret); the others are not attempted
    assert sum(1 for e in world.stack.entra.history if e.target.endswith("/token")) - token_requests <= 6


def test_a_row_too_big_for_any_request_fails_alone(ingestion_world: World) -> None:
    """Sending it would only earn a 413: it is failed (for the spill) and its neighbours still go."""
    world = ingestion_world
    sink = Wiring(Settings.from_env(), boto3.Session()).sink
    base = {"loggedDate": "2024-06-01T00:00:00Z", "account_number": "123456789012", "Status": "Active"}
    rows = [
        {**base, "user": "before", "RunId": "0b6f2e5c-4a7d-4e1b-9c3f-2d8a6e1f7b40"},
        {**base, "user": "x" * 1_100_000, "RunId": "0b6f2e5c-4a7d-4e1b-9c3f-2d8a6e1f7b40"},
        {**base, "user": "after", "RunId": "0b6f2e5c-4a7d-4e1b-9c3f-2d8a6e1f7b40"},
    ]
    before = len(world.stack.ingestion.uploads)

    delivery = sink.send(Table.KEYS, iter(rows), Deadline.after(60))

    assert delivery.shipped == 2
    [failed] = delivery.failed_batches
    assert [row["user"] for row in failed.rows] == ["x" * 1_100_000] and "1000000 bytes" in failed.reason
    shipped = [u for u in world.stack.ingestion.uploads[before:]]
    assert sum(u.records for u in shipped) == 2
