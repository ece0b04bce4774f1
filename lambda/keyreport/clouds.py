"""Azure sovereign clouds: every host and audience that differs between them, switched together."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AzureCloud:
    name: str
    authority_host: str
    keyvault_suffix: str
    data_collector_suffix: str
    monitor_audience: str
    logs_query_endpoint: str
    # The audience Entra expects in a federated credential's external token (workload identity federation).
    federation_audience: str

    def data_collector_endpoint(self, workspace_id: str) -> str:
        return f"https://{workspace_id}.{self.data_collector_suffix}"


CLOUDS: dict[str, AzureCloud] = {
    "public": AzureCloud(
        name="public",
        authority_host="https://login.microsoftonline.com",
        keyvault_suffix="vault.azure.net",
        data_collector_suffix="ods.opinsights.azure.com",
        monitor_audience="https://monitor.azure.com",
        logs_query_endpoint="https://api.loganalytics.io",
        federation_audience="api://AzureADTokenExchange",
    ),
    "usgov": AzureCloud(
        name="usgov",
        authority_host="https://login.microsoftonline.us",
        keyvault_suffix="vault.usgovcloudapi.net",
        data_collector_suffix="ods.opinsights.azure.us",
        monitor_audience="https://monitor.azure.us",
        logs_query_endpoint="https://api.loganalytics.us",
        federation_audience="api://AzureADTokenExchangeUSGov",
    ),
    "china": AzureCloud(
        name="china",
        authority_host="https://login.chinacloudapi.cn",
        keyvault_suffix="vault.azure.cn",
        data_collector_suffix="ods.opinsights.azure.cn",
        monitor_audience="https://monitor.azure.cn",
        logs_query_endpoint="https://api.loganalytics.azure.cn",
        federation_audience="api://AzureADTokenExchangeChina",
    ),
}
