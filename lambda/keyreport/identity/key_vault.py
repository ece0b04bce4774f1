"""The Log Analytics workspace key, read from Key Vault with the run's credential and cached with a bounded age."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import TYPE_CHECKING

from azure.keyvault.secrets import SecretClient

from keyreport.deadline import azure_request_hook
from keyreport.errors import SecretUnavailable
from keyreport.identity.credentials import identity_options
from keyreport.identity.deadline_retry import DeadlineRetryPolicy
from keyreport.identity.secret_cache import CachedSecret, reason
from keyreport.log import logger

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from keyreport.settings import AzureSettings, DataCollectorSettings


def key_vault_string(client: SecretClient, name: str) -> Callable[[], str]:
    def fetch() -> str:
        try:
            value = client.get_secret(name).value
        except Exception as error:
            raise SecretUnavailable(
                f"cannot read secret {name!r} from Key Vault {client.vault_url}: {reason(error)}"
            ) from None
        if not value:
            raise SecretUnavailable(f"Key Vault secret {name!r} is empty")
        logger.info("workspace key read from Key Vault", extra={"secret": name})
        return value.strip()

    return fetch


class WorkspaceKey:
    """The Log Analytics shared key as HMAC key bytes (the secret holds it base64-encoded)."""

    def __init__(self, secret: CachedSecret) -> None:
        self._secret = secret

    def get(self, *, refresh: bool = False) -> bytes:
        try:
            key = base64.b64decode(self._secret.get(refresh=refresh), validate=True)
        except binascii.Error:
            raise SecretUnavailable(
                "the workspace key in Key Vault is not base64: store the workspace's primary or "
                "secondary key exactly as the portal shows it"
            ) from None
        if len(key) < 32:
            raise SecretUnavailable("the workspace key in Key Vault is too short to be a Log Analytics key")
        return key


def secret_client(sink: DataCollectorSettings, azure: AzureSettings, credential: TokenCredential) -> SecretClient:
    """A client of the vault the settings name, with retries that fit in a Lambda's deadline."""
    return SecretClient(
        sink.keyvault_url,
        credential,
        connection_verify=identity_options(azure)["connection_verify"],
        verify_challenge_resource=sink.vault_in_cloud(azure.cloud),
        raw_request_hook=azure_request_hook,  # transport timeouts cut to the run's deadline
        # azure-core's default (10 retries, up to 2 min apart) would outlive a Lambda's deadline.
        retry_policy=DeadlineRetryPolicy(retry_total=3, retry_backoff_factor=0.5, retry_backoff_max=8),
    )


def workspace_key(sink: DataCollectorSettings, azure: AzureSettings, credential: TokenCredential) -> WorkspaceKey:
    """The workspace key the Data Collector sink signs with, from the vault and secret the settings name."""
    fetch = key_vault_string(secret_client(sink, azure, credential), sink.workspace_key_secret)
    return WorkspaceKey(CachedSecret(fetch, azure.secret_max_age_seconds))
