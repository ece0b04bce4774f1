"""Builds the azure-identity credential for the configured mode and cloud.

Best first: `federated` (an STS-signed JWT, nothing stored), `kms` (an assertion signed inside KMS),
`certificate` and `secret` (PEM / client secret in Secrets Manager, re-read on rotation), `default`
(DefaultAzureCredential, for workstations). The CLI adds device-code and browser sign-in for people.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from azure.core.credentials import AccessToken, TokenCredential
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import (
    CertificateCredential,
    ClientAssertionCredential,
    ClientSecretCredential,
    DefaultAzureCredential,
    DeviceCodeCredential,
    InteractiveBrowserCredential,
)

from keyreport.certificates import CertificateProblem, parse_certificate, parse_client_certificate
from keyreport.federation import WebIdentityToken
from keyreport.kms_assertion import KmsClientAssertion, token_endpoint
from keyreport.kms_key import KmsSigningKey
from keyreport.log import logger
from keyreport.secrets import CachedSecret, SecretUnavailable, secrets_manager_string
from keyreport.settings import ConfigError, Settings
from keyreport.tls import trust_bundle

if TYPE_CHECKING:
    from keyreport.aws_clients import AwsClients

INTERACTIVE_MODES = ("device-code", "browser")


class ClientCertificateUnusable(SecretUnavailable):
    """The PEM in Secrets Manager cannot be used as a client certificate; the message never quotes it."""


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


class RotatingCredential:
    """A credential made from a value kept in Secrets Manager (client secret, PEM) that follows its rotation.

    The value is re-read when its cached copy is older than the allowed age, and exactly once more when
    Entra rejects the credential, so rotating the secret or the certificate needs no redeploy.
    """

    def __init__(self, secret: CachedSecret, build: Callable[[str], TokenCredential], name: str) -> None:
        self._secret = secret
        self._build = build
        self._name = name
        self._lock = threading.Lock()
        self._value: str | None = None
        self._credential: TokenCredential | None = None

    def _current(self, *, refresh: bool) -> TokenCredential:
        value = self._secret.get(refresh=refresh)
        with self._lock:
            if self._credential is None or value != self._value:
                self._credential = self._build(value)  # first, so a value that fails to build is not kept
                self._value = value
            return self._credential

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        try:
            return self._current(refresh=False).get_token(*scopes, **kwargs)
        except ClientAuthenticationError:
            logger.info("Entra refused the credential; reading it again once", extra={"secret": self._name})
            return self._current(refresh=True).get_token(*scopes, **kwargs)


def build_credential(settings: Settings, aws: AwsClients) -> TokenCredential:
    """The credential for KEYREPORT_AZURE_AUTH; settings validation guarantees each mode's inputs exist."""
    options = identity_options(settings)
    mode = settings.azure_auth
    if mode == "default":
        return DefaultAzureCredential(**options)
    tenant, client = settings.azure_tenant_id, settings.azure_client_id
    assert tenant and client
    if mode == "federated":
        token = WebIdentityToken(aws.sts(), settings.azure_cloud.federation_audience)
        return ClientAssertionCredential(tenant, client, token, **options)
    if mode == "kms":
        assert settings.kms_key_id and settings.kms_certificate
        assertion = KmsClientAssertion(
            KmsSigningKey(aws.kms(), settings.kms_key_id),
            parse_certificate(settings.kms_certificate),
            client_id=client,
            audience=token_endpoint(settings.authority_host, tenant),
        )
        return ClientAssertionCredential(tenant, client, assertion, **options)
    if mode == "certificate":
        assert settings.azure_certificate_arn
        arn = settings.azure_certificate_arn
        pem = CachedSecret(secrets_manager_string(aws.secretsmanager(), arn), settings.secret_max_age_seconds)
        return RotatingCredential(pem, lambda text: _certificate_credential(tenant, client, arn, text, options), arn)
    if mode == "secret":
        assert settings.azure_client_secret_arn
        arn = settings.azure_client_secret_arn
        secret = CachedSecret(secrets_manager_string(aws.secretsmanager(), arn), settings.secret_max_age_seconds)
        return RotatingCredential(secret, lambda value: ClientSecretCredential(tenant, client, value, **options), arn)
    raise ConfigError([f"KEYREPORT_AZURE_AUTH={mode} is not a mode this version knows"])


def _certificate_credential(
    tenant: str, client: str, arn: str, pem: str, options: dict[str, Any]
) -> CertificateCredential:
    try:
        bundle = parse_client_certificate(pem)
    except CertificateProblem as problem:
        raise ClientCertificateUnusable(f"the PEM in {arn} {problem}") from None
    # A chain in the bundle means subject name / issuer trust: Entra then needs it in the x5c header.
    return CertificateCredential(
        tenant, client, certificate_data=bundle.pem, send_certificate_chain=bundle.has_chain, **options
    )


def interactive_credential(
    settings: Settings,
    how: str,
    *,
    tenant_id: str | None = None,
    client_id: str | None = None,
    allowed_tenants: Iterable[str] = (),
    prompt: Callable[[str, str, datetime], None] | None = None,
) -> TokenCredential:
    """A person signs in (the notebook scenario): device code, or a browser on this machine.

    ``client_id`` is a public client app registration; without one, azure-identity's development app is used.
    """
    options: dict[str, Any] = identity_options(settings)
    tenant = tenant_id or settings.azure_tenant_id
    if tenant:
        options["tenant_id"] = tenant
    if client_id:
        options["client_id"] = client_id
    options["additionally_allowed_tenants"] = list(allowed_tenants)
    if how == "device-code":
        return DeviceCodeCredential(prompt_callback=prompt, **options)
    if how == "browser":
        return InteractiveBrowserCredential(**options)
    raise ConfigError([f"--auth {how!r} is not one of: {', '.join(INTERACTIVE_MODES)}"])
