"""The Logs Ingestion hop: a POST of `[]` to the rule's stream, which the API answers 204 without storing a row
(Vector's azure_logs_ingestion healthcheck); without the Monitoring Metrics Publisher role on the rule, 403.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
from azure.core.rest import HttpRequest

from keyreport.check.explain import entra_failure, input_unavailable
from keyreport.check.reach import unreachable
from keyreport.errors import HopFailed, SecretUnavailable
from keyreport.sinks.logs_ingestion import ingestion_client

if TYPE_CHECKING:
    from keyreport.settings import LogsIngestionSettings
    from keyreport.wiring import Wiring

INGESTION_API_VERSION = "2023-01-01"


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
