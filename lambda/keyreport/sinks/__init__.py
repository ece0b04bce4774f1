"""Sinks take rows and say what was accepted and what failed; `build_sink` picks one from the settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

import requests
from azure.keyvault.secrets import SecretClient

from keyreport.azure_auth import build_credential, identity_options
from keyreport.secrets import CachedSecret, WorkspaceKey, key_vault_string
from keyreport.settings import ConfigError, Settings
from keyreport.sinks.base import Delivery, FailedBatch, Sink, Table
from keyreport.sinks.data_collector import DataCollectorSink
from keyreport.sinks.logs_ingestion import logs_ingestion_sink
from keyreport.sinks.stdout import StdoutSink
from keyreport.tls import trust_bundle

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from keyreport.aws_clients import AwsClients

__all__ = ["Delivery", "FailedBatch", "Sink", "Table", "build_sink"]


def http_session(settings: Settings) -> requests.Session:
    session = requests.Session()
    session.verify = trust_bundle(settings.ca_bundle)
    session.headers["User-Agent"] = "keyreport"
    return session


def build_sink(settings: Settings, aws: AwsClients, credential: TokenCredential | None = None) -> Sink:
    """The configured sink with its clients; built once per warm Lambda so caches carry over.

    ``credential`` replaces the one KEYREPORT_AZURE_AUTH describes (the CLI's interactive sign-in).
    """
    if settings.sink == "stdout":
        return StdoutSink()
    if settings.sink == "data_collector":
        assert settings.keyvault_url and settings.workspace_key_secret and settings.workspace_id
        credential = credential or build_credential(settings, aws)
        options = identity_options(settings)
        vault = SecretClient(
            settings.keyvault_url,
            credential,
            connection_verify=options["connection_verify"],
            verify_challenge_resource=settings.vault_in_cloud,
            # azure-core's default (10 retries, up to 2 min apart) would outlive a Lambda's deadline.
            retry_total=3,
            retry_backoff_factor=0.5,
            retry_backoff_max=8,
        )
        key = WorkspaceKey(
            CachedSecret(key_vault_string(vault, settings.workspace_key_secret), settings.secret_max_age_seconds)
        )
        return DataCollectorSink(
            workspace_id=settings.workspace_id,
            endpoint=settings.data_collector_endpoint,
            key=key,
            log_types={Table.KEYS: settings.log_type, Table.RUNS: settings.run_log_type},
            session=http_session(settings),
            max_bytes=settings.batch_max_bytes,
            azure_resource_id=settings.azure_resource_id,
        )
    if settings.sink == "logs_ingestion":
        return logs_ingestion_sink(settings, credential or build_credential(settings, aws))
    raise ConfigError([f"KEYREPORT_SINK={settings.sink} is not available in this version"])
