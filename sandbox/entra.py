"""Microsoft Entra ID (identity platform v2) emulator: OIDC metadata, JWKS and the client-credentials grant.

Apps are registered in code. A client authenticates with a secret (form or HTTP Basic), with a
certificate (``client_assertion`` signed by a registered certificate's key, as MSAL builds it: PS256 +
``x5t#S256``, or RS256 + ``x5t``), or with a federated credential (an external IdP's JWT whose iss / sub
/ aud match a registered federated identity credential). A certificate that is not uploaded is accepted
by subject name and issuer (``add_trusted_subject``) when the assertion carries its chain in ``x5c``.
People sign in through public client apps with the device code or the browser (authorization code +
PKCE) flow: ``users`` (``sandbox.entra_users``). Refusals carry the real AADSTS codes and HTTP
statuses, so the product's error handling meets what it will meet in Azure.

This module routes requests and keeps the public interface; the work is done by its parts, which never import
it: ``entra_directory`` (apps and credentials), ``entra_tokens`` (signing, issuing, verifying),
``entra_grants`` and ``entra_assertions`` (the client-credentials grant), ``entra_users`` (people) and
``entra_common`` (refusals, error answers, URLs and the OIDC document).

azure-identity reaches it with ``authority=entra.url`` and ``disable_instance_discovery=True``
(instance discovery would ask login.microsoftonline.com about this unknown host).
"""

from __future__ import annotations

from typing import Any

from cryptography import x509

from sandbox.entra_assertions import ASSERTION_LEEWAY, JWT_BEARER
from sandbox.entra_common import Endpoints, Refusal, parse_form, tenant_not_found
from sandbox.entra_directory import (
    TOKEN_EXCHANGE_AUDIENCE,
    App,
    Directory,
    FederatedCredential,
    PublicKey,
    TrustedSubject,
)
from sandbox.entra_grants import ClientCredentials
from sandbox.entra_tokens import DEFAULT_TOKEN_LIFETIME, TokenAuthority, TokenError
from sandbox.entra_users import USER_GRANTS, UserSignIn
from sandbox.https import Fault, HttpsEmulator, Request, Response, retry_after_header
from sandbox.tls import LocalCA

__all__ = [
    "ASSERTION_LEEWAY",
    "DEFAULT_TOKEN_LIFETIME",
    "JWT_BEARER",
    "TOKEN_EXCHANGE_AUDIENCE",
    "App",
    "EntraEmulator",
    "FederatedCredential",
    "PublicKey",
    "TokenError",
    "TrustedSubject",
]


class EntraEmulator(HttpsEmulator):
    """``/{tenant}/v2.0/.well-known/openid-configuration``, ``/{tenant}/discovery/v2.0/keys`` and
    ``POST /{tenant}/oauth2/v2.0/token``; ``fail_next`` applies to the token endpoint only."""

    max_body_bytes = 1024 * 1024

    def __init__(self, ca: LocalCA) -> None:
        super().__init__(ca)
        self._endpoints = Endpoints(lambda: self.url)
        self._directory = Directory()
        self._tokens = TokenAuthority(self._endpoints, self._directory)
        self._client_credentials = ClientCredentials(self._endpoints, self._directory, self._tokens)
        self.key_id = self._tokens.key_id
        #: Sign an app-only access token (also for tests: e.g. ``lifetime=-60`` gives an expired one).
        self.issue_token = self._tokens.issue
        # people: device code and browser sign-in through public client apps
        self.users = UserSignIn(self._endpoints, self._directory, self._tokens)

    @property
    def token_lifetime(self) -> int:
        """Seconds an issued token lasts (``expires_in``); settable."""
        return self._tokens.lifetime

    @token_lifetime.setter
    def token_lifetime(self, seconds: int) -> None:
        self._tokens.lifetime = seconds

    # -- registration ------------------------------------------------------------------------------
    def register_app(self, tenant_id: str, client_id: str, client_secret: str | None = None) -> App:
        """Register (or return) an app in a tenant; the tenant exists once it has an app."""
        return self._directory.register_app(tenant_id, client_id, client_secret)

    def add_secret(self, tenant_id: str, client_id: str, client_secret: str) -> None:
        self._directory.register_app(tenant_id, client_id, client_secret)

    def remove_secret(self, tenant_id: str, client_id: str, client_secret: str) -> None:
        self._directory.remove_secret(tenant_id, client_id, client_secret)

    def add_certificate(self, tenant_id: str, client_id: str, certificate: x509.Certificate | bytes) -> None:
        """Upload a certificate (object or PEM) as a credential of the app."""
        self._directory.add_certificate(tenant_id, client_id, certificate)

    def remove_certificate(self, tenant_id: str, client_id: str, certificate: x509.Certificate) -> None:
        """Delete a certificate credential (the last step of a rotation)."""
        self._directory.remove_certificate(tenant_id, client_id, certificate)

    def add_trusted_subject(
        self, tenant_id: str, client_id: str, *, subject: x509.Name, issuer: x509.Certificate
    ) -> None:
        """Trust certificates by subject name and issuer (no upload): the assertion must carry its chain (x5c)."""
        self._directory.add_trusted_subject(tenant_id, client_id, TrustedSubject(subject, issuer))

    def add_federated_credential(
        self,
        tenant_id: str,
        client_id: str,
        *,
        issuer: str,
        subject: str,
        key: PublicKey,
        audience: str = TOKEN_EXCHANGE_AUDIENCE,
    ) -> None:
        """Trust JWTs from ``issuer`` about ``subject`` for ``audience``, verified with ``key``.

        Real Entra fetches the issuer's keys from its OIDC discovery document; the emulator is given the
        key directly, so an issuer with no reachable discovery endpoint (AWS STS in the sandbox) works.
        """
        credential = FederatedCredential(issuer, subject, audience, key)
        self._directory.add_federated_credential(tenant_id, client_id, credential)

    # -- tokens --------------------------------------------------------------------------------------
    def issuer(self, tenant_id: str) -> str:
        return self._endpoints.issuer(tenant_id)

    def token_endpoint(self, tenant_id: str) -> str:
        return self._endpoints.token_endpoint(tenant_id)

    @property
    def tokens_issued(self) -> int:
        return len(self._tokens.issued)

    @property
    def issued(self) -> list[dict[str, Any]]:
        """Claims of every token issued, oldest first."""
        return self._tokens.issued

    def sign(self, claims: dict[str, Any]) -> str:
        """A JWT signed with this issuer's key (access tokens, id tokens)."""
        return self._tokens.sign(claims)

    def verify_token(self, token: str, audience: str, tenant_id: str | None = None) -> dict[str, Any]:
        """Claims of a token this emulator issued for ``audience`` (and ``tenant_id``); TokenError if not."""
        return self._tokens.verify(token, audience, tenant_id)

    def jwks(self) -> dict[str, Any]:
        return self._tokens.jwks()

    # -- HTTP ----------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        tenant, route = parts[0], "/".join(parts[1:])
        if request.method == "GET" and route == "v2.0/.well-known/openid-configuration":
            return self._known_tenant(request, tenant) or Response.json(
                200, self._endpoints.openid_configuration(tenant)
            )
        if request.method == "GET" and route == "discovery/v2.0/keys":
            return self._known_tenant(request, tenant) or Response.json(200, self.jwks())
        if request.method == "POST" and route == "oauth2/v2.0/token":
            fault = self.take_fault()
            if fault is not None:
                return self.raw_fault(fault) or self._fault(request, fault)
            try:
                return self._token(request, tenant)
            except Refusal as refusal:
                return self._endpoints.error(request, refusal)
        if route in ("oauth2/v2.0/devicecode", "oauth2/v2.0/authorize") and request.method in ("GET", "POST"):
            try:
                if route == "oauth2/v2.0/authorize":
                    return self._known_tenant(request, tenant) or self.users.authorize(request, tenant)
                form = parse_form(request)
                return self._known_tenant(request, tenant) or self.users.device_authorization(form, tenant)
            except Refusal as refusal:
                return self._endpoints.error(request, refusal)
        return Response.json(404, {"error": "not_found", "error_description": f"no such endpoint: {request.path}"})

    def _token(self, request: Request, tenant: str) -> Response:
        form = parse_form(request)
        if not self._directory.known(tenant):
            raise Refusal(400, "invalid_request", 90002, tenant_not_found(tenant))
        if form.get("grant_type") in USER_GRANTS:
            return self.users.token(form, tenant)
        return self._client_credentials.token(request, form, tenant)

    def _known_tenant(self, request: Request, tenant: str) -> Response | None:
        if self._directory.known(tenant):
            return None
        return self._endpoints.error(request, Refusal(400, "invalid_tenant", 90002, tenant_not_found(tenant)))

    def _fault(self, request: Request, fault: Fault) -> Response:
        refusal = Refusal(
            fault.status, "temporarily_unavailable", 90033, "A transient error has occurred. Please try again."
        )
        response = self._endpoints.error(request, refusal)
        return Response(response.status, response.body, {**response.headers, **retry_after_header(fault)})
