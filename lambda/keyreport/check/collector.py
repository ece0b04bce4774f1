"""The Data Collector hop: a SharedKey-signed POST of `[]`, which the API answers 200 without storing a row
(Vector's azure_monitor_logs healthcheck sends the same request). A wrong key answers the documented 403
`InvalidAuthorization`; any other refusal is told apart as a retired or closed endpoint.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import requests

from keyreport.check.reach import unreachable
from keyreport.errors import HopFailed, network_failure
from keyreport.sinks.data_collector import API_VERSION, SUPPORT_ENDED, SWITCH, retired, rfc1123_date, signed_headers

if TYPE_CHECKING:
    from keyreport.check.key_vault import WorkspaceKeyHop
    from keyreport.settings import DataCollectorSettings
    from keyreport.wiring import Wiring

EMPTY = b"[]"


def data_collector(wiring: Wiring, sink: DataCollectorSettings, key: WorkspaceKeyHop) -> str:
    if key.key is None:  # only when run alone: the runner reports this hop as not checked
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
        failure = unreachable(endpoint, error, "the Data Collector API", fix)
        network = network_failure(error)
        if network is not None and network.kind == "name":  # a retired service's host may stop resolving too
            failure.fix += f"; if KEYREPORT_WORKSPACE_ID is right, the endpoint may be retired: {SWITCH}"
        raise failure from None
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
    if retired(response.status_code, said) or response.status_code == 404:  # 404 to `[]`: not "too large"
        or_id = " (or KEYREPORT_WORKSPACE_ID is wrong)" if response.status_code == 404 else ""
        return HopFailed(
            detail,
            f"not a wrong key: the API refused the request itself{or_id}. "
            f"Support for the Data Collector API ended {SUPPORT_ENDED}; it may no longer take rows for workspace "
            f"{sink.workspace_id}",
            SWITCH,
        )
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
    return HopFailed(detail, "the Data Collector API refused the request", "see the answer above")
