"""The azure-identity credential of each sign-in mode, for the configured cloud (one function per mode).

Best first: `federated` (an STS-signed JWT, nothing stored), `kms` (an assertion signed inside KMS),
`certificate` and `secret` (PEM / client secret in Secrets Manager, re-read on rotation), `default`
(DefaultAzureCredential, for workstations). Each mode's settings type (keyreport.settings) names its
function here; keyreport.wiring calls it. People signing in at the CLI: keyreport.identity.interactive.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from azure.core.credentials import AccessToken, TokenCredential
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import (
    CertificateCredential,
    ClientAssertionCredential,
    ClientSecretCredential,
    DefaultAzureCredential,
)

from keyreport.deadline import azure_request_hook
from keyreport.errors import CertificateProblem, ClientCertificateUnusable
from keyreport.identity.certificates import parse_certificate, parse_client_certificate
from keyreport.identity.deadline_retry import DeadlineRetryPolicy
from keyreport.identity.federation import WebIdentityToken
from keyreport.identity.kms_assertion import KmsClientAssertion, token_endpoint
from keyreport.identity.kms_key import KmsSigningKey
from keyreport.identity.secret_cache import CachedSecret, secrets_manager_string
from keyreport.log import logger
from keyreport.tls import trust_bundle

if TYPE_CHECKING:
    from keyreport.aws.clients import AwsClients
    from keyreport.settings import AzureSettings, CertificateAuth, DefaultAuth, FederatedAuth, KmsAuth, SecretAuth


def identity_options(azure: AzureSettings) -> dict[str, Any]:
    """Keyword arguments every azure-identity credential and Azure SDK client of this run shares."""
    options: dict[str, Any] = {
        "authority": azure.authority_host,
        "connection_verify": trust_bundle(azure.ca_bundle),
        # Every token request's timeouts cut to the run's deadline (azure-core's default read timeout is 300 s).
        "raw_request_hook": azure_request_hook,
    }
    if azure.authority_override:
        # A custom authority (private link, a test double) is not in Microsoft's instance metadata.
        options["disable_instance_discovery"] = True
    return options


def service_principal_options(azure: AzureSettings) -> dict[str, Any]:
    """identity_options for an app's own credential: retries that never wait past the run's deadline."""
    return identity_options(azure) | {"retry_policy_class": DeadlineRetryPolicy}


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


def default(auth: DefaultAuth, azure: AzureSettings, aws: AwsClients) -> TokenCredential:
    return DefaultAzureCredential(**identity_options(azure))


def federated(auth: FederatedAuth, azure: AzureSettings, aws: AwsClients) -> TokenCredential:
    token = WebIdentityToken(aws.sts(), azure.cloud.federation_audience)
    return ClientAssertionCredential(auth.tenant_id, auth.client_id, token, **service_principal_options(azure))


def kms(auth: KmsAuth, azure: AzureSettings, aws: AwsClients) -> TokenCredential:
    assertion = KmsClientAssertion(
        KmsSigningKey(aws.kms(), auth.key_id),
        parse_certificate(auth.certificate),
        client_id=auth.client_id,
        audience=token_endpoint(azure.authority_host, auth.tenant_id),
    )
    return ClientAssertionCredential(auth.tenant_id, auth.client_id, assertion, **service_principal_options(azure))


def certificate(auth: CertificateAuth, azure: AzureSettings, aws: AwsClients) -> TokenCredential:
    arn, options = auth.certificate_arn, service_principal_options(azure)
    pem = CachedSecret(secrets_manager_string(aws.secretsmanager(), arn), azure.secret_max_age_seconds)
    return RotatingCredential(
        pem, lambda text: _certificate_credential(auth.tenant_id, auth.client_id, arn, text, options), arn
    )


def client_secret(auth: SecretAuth, azure: AzureSettings, aws: AwsClients) -> TokenCredential:
    arn, options = auth.client_secret_arn, service_principal_options(azure)
    secret = CachedSecret(secrets_manager_string(aws.secretsmanager(), arn), azure.secret_max_age_seconds)
    return RotatingCredential(
        secret, lambda value: ClientSecretCredential(auth.tenant_id, auth.client_id, value, **options), arn
    )


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
