"""Builds the azure-identity credential for the configured mode and cloud."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from azure.core.credentials import AccessToken, TokenCredential
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential, DefaultAzureCredential

from keyreport.secrets import CachedSecret, secrets_manager_string
from keyreport.settings import ConfigError, Settings
from keyreport.tls import trust_bundle

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

IMPLEMENTED_MODES = ("secret", "default")


def identity_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments every azure-identity credential and Azure SDK client of this run shares."""
    options: dict[str, Any] = {
        "authority": settings.authority_host,
        "connection_verify": trust_bundle(settings.ca_bundle),
    }
    if settings.azure_authority_host:
        # A custom authority (private link, a test double) is not in Microsoft's instance metadata.
        options["disable_instance_discovery"] = True
    return options


class RotatingSecretCredential:
    """A ClientSecretCredential that follows rotation of its secret in Secrets Manager.

    The secret is re-read when its cached copy is older than the allowed age, and once more when Entra
    rejects it, so a rotated client secret needs no redeploy.
    """

    def __init__(self, secret: CachedSecret, build: Callable[[str], TokenCredential]) -> None:
        self._secret = secret
        self._build = build
        self._lock = threading.Lock()
        self._value: str | None = None
        self._credential: TokenCredential | None = None

    def _current(self, *, refresh: bool) -> TokenCredential:
        value = self._secret.get(refresh=refresh)
        with self._lock:
            if self._credential is None or value != self._value:
                self._value, self._credential = value, self._build(value)
            return self._credential

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        try:
            return self._current(refresh=False).get_token(*scopes, **kwargs)
        except ClientAuthenticationError:
            return self._current(refresh=True).get_token(*scopes, **kwargs)


def build_credential(settings: Settings, secretsmanager: Callable[[], SecretsManagerClient]) -> TokenCredential:
    options = identity_options(settings)
    mode = settings.azure_auth
    if mode == "secret":
        assert settings.azure_client_secret_arn and settings.azure_tenant_id and settings.azure_client_id
        tenant, client = settings.azure_tenant_id, settings.azure_client_id
        secret = CachedSecret(
            secrets_manager_string(secretsmanager(), settings.azure_client_secret_arn),
            max_age=settings.secret_max_age_seconds,
        )
        return RotatingSecretCredential(secret, lambda value: ClientSecretCredential(tenant, client, value, **options))
    if mode == "default":
        return DefaultAzureCredential(**options)
    raise ConfigError(
        [f"KEYREPORT_AZURE_AUTH={mode} is not available in this version (available: {', '.join(IMPLEMENTED_MODES)})"]
    )
