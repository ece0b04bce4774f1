"""The sink hops: an empty batch, which both ingestion APIs accept without creating a row.

- Data Collector API: a SharedKey-signed POST of `[]` answers 200 and stores nothing (Vector's
  azure_monitor_logs healthcheck sends the same request); a wrong key answers 403.
- Logs Ingestion API: a POST of `[]` to the rule's stream answers 204 and stores nothing (Vector's
  azure_logs_ingestion healthcheck); without the Monitoring Metrics Publisher role on the rule, 403.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

import requests
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
from azure.core.rest import HttpRequest

from keyreport.check.explain import entra_failure, input_unavailable
from keyreport.check.reach import unreachable
from keyreport.errors import HopFailed, SecretUnavailable
from keyreport.sinks.data_collector import API_VERSION, rfc1123_date, signed_headers
from keyreport.sinks.logs_ingestion import ingestion_client

if TYPE_CHECKING:
    from keyreport.check.key_vault import WorkspaceKeyHop
    from keyreport.settings import DataCollectorSettings, LogsIngestionSettings
    from keyreport.wiring import Wiring

EMPTY = b"[]"
INGESTION_API_VERSION = "2023-01-01"


def data_collector(wiring: Wiring, sink: DataCollectorSettings, key: WorkspaceKeyHop) -> str:
    if key.key is None:
        raise HopFailed("not tried: the workspace key could not be read", "see the Key Vault line", "")
    settings = wiring.settings
    endpoint = sink.endpoint(settings.azure.cloud)
    headers = signed_headers(
        sink.workspace_id,
        key.key,
        settings.log_type,
        len(EMPTY),
        rfc1123_date(datetime.now(UTC)),
        resource_id=sink.resource_id,
    )
    session = wiring.http()
    try:
        response = session.post(
            f"{endpoint}/api/logs?api-version={API_VERSION}",
            data=EMPTY,
            headers=headers,
            timeout=(10, 30),
            verify=session.verify,
        )
    except requests.RequestException as error:
        fix = "allow egress to <workspace>.ods.opinsights.azure.com"
        raise unreachable(endpoint, error, "the Data Collector API", fix) from None
    if response.status_code in (200, 202):
        return f"{endpoint} accepted a signed empty batch for {settings.log_type} (no row created)"
    raise _collector_refusal(response, sink)


def _collector_refusal(response: requests.Response, sink: DataCollectorSettings) -> HopFailed:
    try:
        body = response.json()
        said = f"{body.get('Error', '')}: {body.get('Message', '')}"[:300]
    except (ValueError, AttributeError):
        said = response.reason or ""
    detail = f"the Data Collector API answered {response.status_code} {said}".strip()
    if response.status_code == 403 and "time" in said.lower():
        return HopFailed(detail, "clock skew: x-ms-date is too far from Azure's time", "synchronise the clock (NTP)")
    if response.status_code == 403 and "workspace id" in said.lower():
        return HopFailed(detail, "KEYREPORT_WORKSPACE_ID is not this workspace", "use the workspace's Workspace ID")
    if response.status_code == 403:
        return HopFailed(
            detail,
            f"wrong workspace key: Key Vault secret {sink.workspace_key_secret!r} holds a key, but not the key of "
            f"workspace {sink.workspace_id} (another workspace's, or one regenerated since)",
            "copy this workspace's primary key (Agents > Primary key) into the secret",
        )
    if response.status_code == 404:
        return HopFailed(detail, "no Data Collector API at this address", "check KEYREPORT_WORKSPACE_ID and the cloud")
    return HopFailed(detail, "the Data Collector API refused the request", "see the answer above")


def logs_ingestion(wiring: Wiring, sink: LogsIngestionSettings, stream: str) -> str:
    client = ingestion_client(sink, wiring.settings, wiring.credential())
    path = f"/dataCollectionRules/{quote(sink.dcr_id, safe='')}/streams/{quote(stream, safe='')}"
    request = HttpRequest("POST", path, params={"api-version": INGESTION_API_VERSION}, json=[])
    try:
        response = client.send_request(request)
    except ClientAuthenticationError as error:
        raise entra_failure(error, "Logs Ingestion") from None
    except SecretUnavailable as error:
        raise input_unavailable(error) from None
    except ServiceRequestError as error:
        fix = "check KEYREPORT_DCE_ENDPOINT and egress"
        raise unreachable(sink.dce_endpoint, error, "the data collection endpoint", fix) from None
    if response.status_code in (200, 204):
        return f"rule {sink.dcr_id} accepts stream {stream} (an empty upload, no row created)"
    raise _ingestion_refusal(response.status_code, response.text()[:300], sink, stream)


def _ingestion_refusal(status: int, said: str, sink: LogsIngestionSettings, stream: str) -> HopFailed:
    detail = f"the Logs Ingestion API answered {status}: {said}"
    if status == 403:
        return HopFailed(
            detail,
            f"DCR role missing: the app may not ingest through rule {sink.dcr_id} (or no rule has this immutable id)",
            "assign the app's service principal the Monitoring Metrics Publisher role on the data collection rule "
            "(azure/logs-ingestion.json does it when given the principal's object id); allow ~30 min to propagate",
        )
    if status == 401:
        return HopFailed(detail, "the token was not accepted", "check KEYREPORT_AZURE_CLOUD against the endpoint's")
    if status == 404:
        return HopFailed(
            detail,
            f"the rule does not declare stream {stream}, or the endpoint/rule id is wrong",
            "check KEYREPORT_DCE_ENDPOINT, KEYREPORT_DCR_ID (the immutable id, dcr-...) and the KEYREPORT_*STREAM "
            "names; a rule deployed before keyreport shipped IAM user rows lacks their stream: deploy "
            "azure/logs-ingestion.json again",
        )
    return HopFailed(detail, "the Logs Ingestion API refused the request", "see the answer above")
