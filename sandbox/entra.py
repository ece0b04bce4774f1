"""Microsoft Entra ID (identity platform v2) emulator: OIDC metadata, JWKS and the client-credentials grant.

Apps are registered in code. A client authenticates with a secret (form or HTTP Basic), with a
certificate (``client_assertion`` signed by a registered certificate's key, as MSAL builds it: PS256 +
``x5t#S256``, or RS256 + ``x5t``), or with a federated credential (an external IdP's JWT whose iss / sub
/ aud match a registered federated identity credential). A certificate that is not uploaded is accepted
by subject name and issuer (``add_trusted_subject``) when the assertion carries its chain in ``x5c``.
People sign in through public client apps with the device code or the browser (authorization code +
PKCE) flow: ``users`` (``sandbox.entra_users``). Refusals carry the real AADSTS codes and HTTP
statuses, so the product's error handling meets what it will meet in Azure.

azure-identity reaches it with ``authority=entra.url`` and ``disable_instance_discovery=True``
(instance discovery would ask login.microsoftonline.com about this unknown host).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote

import jwt
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from sandbox.entra_users import USER_GRANTS, UserFlowRefusal, UserSignIn
from sandbox.https import Fault, HttpsEmulator, Request, Response, retry_after_header
from sandbox.tls import LocalCA

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
DEFAULT_TOKEN_LIFETIME = 3599
ASSERTION_LEEWAY = 300  # seconds of clock skew tolerated on client assertions

PublicKey = RSAPublicKey | EllipticCurvePublicKey


class TokenError(ValueError):
    """An access token the emulator did not issue, or not for this audience / tenant, or expired."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # malformed | signature | expired | audience | issuer


@dataclass(frozen=True)
class FederatedCredential:
    issuer: str
    subject: str
    audience: str
    key: PublicKey


@dataclass(frozen=True)
class TrustedSubject:
    """Subject name / issuer trust: any certificate with this subject that chains to ``issuer``."""

    subject: x509.Name
    issuer: x509.Certificate


@dataclass
class App:
    tenant_id: str
    client_id: str
    object_id: str
    secrets: list[str] = field(default_factory=list)
    certificates: list[x509.Certificate] = field(default_factory=list)
    federated: list[FederatedCredential] = field(default_factory=list)
    trusted_subjects: list[TrustedSubject] = field(default_factory=list)


class _Refusal(Exception):
    """Internal: a token request Entra would refuse."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.code, self.description = status, error, code, description


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _chains_to(chain: list[x509.Certificate], anchor: x509.Certificate) -> bool:
    """Each certificate is signed by the next one, and the walk reaches ``anchor``."""
    current = chain[0]
    for parent in [*chain[1:], anchor]:
        if current == anchor:
            return True
        try:
            current.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature):
            return False
        current = parent
    return current == anchor


def _object_id(tenant_id: str, client_id: str) -> str:
    """A stable service-principal object id per app and tenant."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{tenant_id}:{client_id}"))


class EntraEmulator(HttpsEmulator):
    """``/{tenant}/v2.0/.well-known/openid-configuration``, ``/{tenant}/discovery/v2.0/keys`` and
    ``POST /{tenant}/oauth2/v2.0/token``; ``fail_next`` applies to the token endpoint only."""

    max_body_bytes = 1024 * 1024

    def __init__(self, ca: LocalCA) -> None:
        super().__init__(ca)
        self._signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_der = self._signing_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.key_id = _b64url(hashlib.sha256(public_der).digest()[:20])
        self.token_lifetime = DEFAULT_TOKEN_LIFETIME
        self._lock = threading.Lock()
        self._apps: dict[str, dict[str, App]] = {}
        self._issued: list[dict[str, Any]] = []
        self.users = UserSignIn(self)  # people: device code and browser sign-in through public client apps

    # -- registration ------------------------------------------------------------------------------
    def register_app(self, tenant_id: str, client_id: str, client_secret: str | None = None) -> App:
        """Register (or return) an app in a tenant; the tenant exists once it has an app."""
        with self._lock:
            apps = self._apps.setdefault(tenant_id, {})
            app = apps.get(client_id)
            if app is None:
                app = apps[client_id] = App(tenant_id, client_id, _object_id(tenant_id, client_id))
            if client_secret is not None and client_secret not in app.secrets:
                app.secrets.append(client_secret)
            return app

    def add_secret(self, tenant_id: str, client_id: str, client_secret: str) -> None:
        self.register_app(tenant_id, client_id, client_secret)

    def remove_secret(self, tenant_id: str, client_id: str, client_secret: str) -> None:
        with self._lock:
            self._app(tenant_id, client_id).secrets.remove(client_secret)

    def add_certificate(self, tenant_id: str, client_id: str, certificate: x509.Certificate | bytes) -> None:
        """Upload a certificate (object or PEM) as a credential of the app."""
        cert = certificate if isinstance(certificate, x509.Certificate) else x509.load_pem_x509_certificate(certificate)
        with self._lock:
            certificates = self._app(tenant_id, client_id).certificates
            if cert not in certificates:
                certificates.append(cert)

    def remove_certificate(self, tenant_id: str, client_id: str, certificate: x509.Certificate) -> None:
        """Delete a certificate credential (the last step of a rotation)."""
        with self._lock:
            self._app(tenant_id, client_id).certificates.remove(certificate)

    def add_trusted_subject(
        self, tenant_id: str, client_id: str, *, subject: x509.Name, issuer: x509.Certificate
    ) -> None:
        """Trust certificates by subject name and issuer (no upload): the assertion must carry its chain (x5c)."""
        with self._lock:
            self._app(tenant_id, client_id).trusted_subjects.append(TrustedSubject(subject, issuer))

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
        with self._lock:
            self._app(tenant_id, client_id).federated.append(FederatedCredential(issuer, subject, audience, key))

    def _app(self, tenant_id: str, client_id: str) -> App:
        try:
            return self._apps[tenant_id][client_id]
        except KeyError:
            raise KeyError(f"no app {client_id} in tenant {tenant_id}") from None

    # -- tokens --------------------------------------------------------------------------------------
    def issuer(self, tenant_id: str) -> str:
        return f"{self.url}/{tenant_id}/v2.0"

    def token_endpoint(self, tenant_id: str) -> str:
        return f"{self.url}/{tenant_id}/oauth2/v2.0/token"

    @property
    def tokens_issued(self) -> int:
        with self._lock:
            return len(self._issued)

    @property
    def issued(self) -> list[dict[str, Any]]:
        """Claims of every token issued, oldest first."""
        with self._lock:
            return list(self._issued)

    def issue_token(
        self,
        tenant_id: str,
        client_id: str,
        audience: str,
        *,
        lifetime: int | None = None,
        auth_method: str = "1",
        **extra_claims: Any,
    ) -> str:
        """Sign an app-only access token (also for tests: e.g. ``lifetime=-60`` gives an expired one)."""
        now = int(time.time())
        object_id = _object_id(tenant_id, client_id)
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": self.issuer(tenant_id),
            "iat": now,
            "nbf": now,
            "exp": now + (self.token_lifetime if lifetime is None else lifetime),
            # v1 (appid/appidacr) and v2 (azp/azpacr) names both, so either kind of consumer finds them.
            "appid": client_id,
            "appidacr": auth_method,
            "azp": client_id,
            "azpacr": auth_method,
            "idtyp": "app",
            "oid": object_id,
            "sub": object_id,
            "tid": tenant_id,
            "uti": _b64url(uuid.uuid4().bytes),
            "ver": "2.0",
            **extra_claims,
        }
        token = self.sign(claims)
        with self._lock:
            self._issued.append(claims)
        return token

    def sign(self, claims: dict[str, Any]) -> str:
        """A JWT signed with this issuer's key (access tokens, id tokens)."""
        return jwt.encode(claims, self._signing_key, algorithm="RS256", headers={"kid": self.key_id, "typ": "JWT"})

    def verify_token(self, token: str, audience: str, tenant_id: str | None = None) -> dict[str, Any]:
        """Claims of a token this emulator issued for ``audience`` (and ``tenant_id``); TokenError if not."""
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as error:
            raise TokenError("malformed", f"the token is malformed: {error}") from None
        if header.get("kid") != self.key_id:
            raise TokenError("signature", "the token is not signed by a key of this issuer")
        tid = str(unverified.get("tid", ""))
        with self._lock:
            known = tid in self._apps
        if not known or (tenant_id is not None and tid != tenant_id):
            expected = self.issuer(tenant_id) if tenant_id else "a known tenant"
            raise TokenError("issuer", f"Invalid issuer. Expected {expected}, found: {unverified.get('iss')}.")
        try:
            return dict(
                jwt.decode(
                    token,
                    self._signing_key.public_key(),
                    algorithms=["RS256"],
                    audience=audience,
                    issuer=self.issuer(tid),
                    options={"require": ["exp", "iat", "nbf", "aud", "iss", "tid"]},
                )
            )
        except jwt.InvalidAudienceError:
            raise TokenError(
                "audience", f"Invalid audience. Expected {audience}, found: {unverified.get('aud')}."
            ) from None
        except jwt.InvalidIssuerError:
            raise TokenError("issuer", f"Invalid issuer. Expected {self.issuer(tid)}.") from None
        except jwt.ExpiredSignatureError:
            raise TokenError("expired", "the token is expired") from None
        except jwt.PyJWTError as error:
            raise TokenError("signature", f"the token failed validation: {error}") from None

    # -- HTTP ----------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        tenant, route = parts[0], "/".join(parts[1:])
        if request.method == "GET" and route == "v2.0/.well-known/openid-configuration":
            return self._known_tenant(request, tenant) or Response.json(200, self._openid_configuration(tenant))
        if request.method == "GET" and route == "discovery/v2.0/keys":
            return self._known_tenant(request, tenant) or Response.json(200, self.jwks())
        if request.method == "POST" and route == "oauth2/v2.0/token":
            fault = self.take_fault()
            if fault is not None:
                return self.raw_fault(fault) or self._fault(request, fault)
            try:
                return self._token(request, tenant)
            except (_Refusal, UserFlowRefusal) as refusal:
                return self._error(request, refusal.status, refusal.error, refusal.code, refusal.description)
        if route in ("oauth2/v2.0/devicecode", "oauth2/v2.0/authorize") and request.method in ("GET", "POST"):
            try:
                if route == "oauth2/v2.0/authorize":
                    return self._known_tenant(request, tenant) or self.users.authorize(request, tenant)
                form = self._form(request)
                return self._known_tenant(request, tenant) or self.users.device_authorization(form, tenant)
            except (_Refusal, UserFlowRefusal) as refusal:
                return self._error(request, refusal.status, refusal.error, refusal.code, refusal.description)
        return Response.json(404, {"error": "not_found", "error_description": f"no such endpoint: {request.path}"})

    def jwks(self) -> dict[str, Any]:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self._signing_key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "use": "sig", "kid": self.key_id}]}

    def _openid_configuration(self, tenant: str) -> dict[str, Any]:
        base = f"{self.url}/{tenant}"
        return {
            "issuer": self.issuer(tenant),
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": self.token_endpoint(tenant),
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid", "azp", "ver"],
            "request_uri_parameter_supported": False,
            "tenant_region_scope": "NA",
            "cloud_instance_name": "sandbox.local",
        }

    def _known_tenant(self, request: Request, tenant: str) -> Response | None:
        with self._lock:
            if tenant in self._apps:
                return None
        return self._error(request, 400, "invalid_tenant", 90002, self._tenant_not_found(tenant))

    @staticmethod
    def _tenant_not_found(tenant: str) -> str:
        return (
            f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing "
            "into the correct cloud. Check with your subscription administrator, this may happen if there are "
            "no active subscriptions for the tenant."
        )

    def _token(self, request: Request, tenant: str) -> Response:
        form = self._form(request)
        with self._lock:
            apps = dict(self._apps.get(tenant, {}))
        if not apps:
            raise _Refusal(400, "invalid_request", 90002, self._tenant_not_found(tenant))
        if form.get("grant_type") in USER_GRANTS:
            return self.users.token(form, tenant)
        basic_id, basic_secret = self._basic_auth(request)
        for name in ("grant_type", "client_id", "scope"):
            if not form.get(name) and not (name == "client_id" and basic_id):
                raise _Refusal(
                    400, "invalid_request", 900144, f"The request body must contain the following parameter: '{name}'."
                )
        if form["grant_type"] != "client_credentials":
            raise _Refusal(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{form['grant_type']}'. "
                "(The sandbox supports client_credentials only.)",
            )
        client_id = form.get("client_id") or basic_id or ""
        audience = self._audience(form["scope"])
        app = apps.get(client_id)
        if app is None:
            raise _Refusal(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can "
                "happen if the application has not been installed by the administrator of the tenant or consented "
                "to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
            )
        secret = form.get("client_secret") or basic_secret
        assertion = form.get("client_assertion")
        if secret and assertion:
            raise _Refusal(400, "invalid_request", 50027, "Only one client authentication method may be used.")
        if assertion:
            auth_method = self._check_assertion(app, tenant, assertion, form.get("client_assertion_type"))
        elif secret:
            with self._lock:
                valid = secret in app.secrets
            if not valid:
                raise _Refusal(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                    f"secret value, not the client secret ID, for a secret added to app '{client_id}'.",
                )
            auth_method = "1"
        else:
            raise _Refusal(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )
        token = self.issue_token(tenant, client_id, audience, auth_method=auth_method)
        payload = {
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "ext_expires_in": self.token_lifetime,
            "access_token": token,
        }
        return Response.json(200, payload, {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})

    @staticmethod
    def _form(request: Request) -> dict[str, str]:
        content_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            raise _Refusal(
                400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'."
            )
        parsed = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {name: values[0] for name, values in parsed.items()}

    @staticmethod
    def _basic_auth(request: Request) -> tuple[str | None, str | None]:
        header = request.header("Authorization") or ""
        if not header.startswith("Basic "):
            return None, None
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise _Refusal(401, "invalid_client", 7000215, "Invalid client secret provided.") from None
        return unquote(user), unquote(password)

    @staticmethod
    def _audience(scope: str) -> str:
        scopes = scope.split()
        if len(scopes) != 1:
            raise _Refusal(
                400,
                "invalid_scope",
                70011,
                f"The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid.",
            )
        if not scopes[0].endswith("/.default") or scopes[0] == "/.default":
            raise _Refusal(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows must have a scope "
                "value with /.default suffixed to the resource identifier (application ID URI).",
            )
        return scopes[0].removesuffix("/.default")

    # -- client assertions -------------------------------------------------------------------------
    def _check_assertion(self, app: App, tenant: str, assertion: str, assertion_type: str | None) -> str:
        if not assertion_type:
            raise _Refusal(
                400,
                "invalid_request",
                90014,
                "The required field 'client_assertion_type' is missing from the credential.",
            )
        if assertion_type != JWT_BEARER:
            raise _Refusal(400, "invalid_request", 50027, f"Unsupported client_assertion_type '{assertion_type}'.")
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise _Refusal(400, "invalid_request", 50027, "JWT token is invalid or malformed.") from None
        if claims.get("iss") == app.client_id:
            self._check_certificate_assertion(app, tenant, assertion, header)
        else:
            self._check_federated_assertion(app, assertion, claims)
        return "2"

    def _check_certificate_assertion(self, app: App, tenant: str, assertion: str, header: dict[str, Any]) -> None:
        with self._lock:
            certificates = list(app.certificates)
        presented = str(header.get("x5t#S256") or header.get("x5t") or "").rstrip("=")  # MSAL pads it
        algorithm = hashes.SHA256() if "x5t#S256" in header else hashes.SHA1()  # x5t is SHA-1 by spec
        match = next((c for c in certificates if _b64url(c.fingerprint(algorithm)) == presented), None)
        if match is None:
            match = self._trusted_chain_certificate(app, header, presented, algorithm)
        if match is None:
            raise _Refusal(
                401,
                "invalid_client",
                700027,
                "The certificate with identifier used to sign the client assertion is not registered on "
                f"application. [Reason - The key was not found., Thumbprint of key used by client: '{presented}']",
            )
        now = datetime.now(UTC)
        if not match.not_valid_before_utc <= now <= match.not_valid_after_utc:
            raise _Refusal(
                401,
                "invalid_client",
                700027,
                "Client assertion contains an invalid signature. [Reason - The key used is expired.]",
            )
        # Entra accepts the token endpoint, or its v2 issuer, as the assertion's audience.
        audiences = [self.token_endpoint(tenant), self.issuer(tenant)]
        self._verify_assertion(assertion, match.public_key(), audiences, ["RS256", "PS256"], app.client_id)

    def _trusted_chain_certificate(
        self, app: App, header: dict[str, Any], presented: str, algorithm: hashes.HashAlgorithm
    ) -> x509.Certificate | None:
        """The x5c leaf, when its subject is trusted and the chain leads from it to the trusted issuer."""
        with self._lock:
            trusted = list(app.trusted_subjects)
        encoded = header.get("x5c")
        if not trusted or not isinstance(encoded, list) or not encoded:
            return None
        try:
            chain = [x509.load_der_x509_certificate(base64.b64decode(item, validate=True)) for item in encoded]
        except (ValueError, TypeError, binascii.Error):
            raise _Refusal(400, "invalid_request", 50027, "JWT token is invalid or malformed: bad x5c.") from None
        leaf = chain[0]
        if _b64url(leaf.fingerprint(algorithm)) != presented:
            return None  # x5t must name the first certificate of the chain
        if any(leaf.subject == t.subject and _chains_to(chain, t.issuer) for t in trusted):
            return leaf
        return None

    def _check_federated_assertion(self, app: App, assertion: str, claims: dict[str, Any]) -> None:
        audiences = claims.get("aud")
        presented = audiences if isinstance(audiences, list) else [audiences]
        with self._lock:
            candidates = [
                f
                for f in app.federated
                if f.issuer == claims.get("iss") and f.subject == claims.get("sub") and f.audience in presented
            ]
        if not candidates:
            raise _Refusal(
                400,
                "invalid_request",
                70021,
                "No matching federated identity record found for presented assertion. "
                f"Assertion Issuer: '{claims.get('iss')}'. Assertion Subject: '{claims.get('sub')}'. "
                f"Assertion Audience: '{audiences}'.",
            )
        credential = candidates[0]
        algorithms = (
            ["RS256", "RS384", "RS512", "PS256"] if isinstance(credential.key, RSAPublicKey) else ["ES256", "ES384"]
        )
        self._verify_assertion(assertion, credential.key, [credential.audience], algorithms, None)

    @staticmethod
    def _verify_assertion(
        assertion: str, key: Any, audiences: list[str], algorithms: list[str], subject: str | None
    ) -> None:
        try:
            claims = jwt.decode(
                assertion,
                key,
                algorithms=algorithms,
                audience=audiences,
                leeway=ASSERTION_LEEWAY,
                options={"require": ["exp", "aud", "iss", "sub"]},
            )
        except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError):
            raise _Refusal(
                401, "invalid_client", 700024, "Client assertion is not within its valid time range."
            ) from None
        except jwt.InvalidAudienceError:
            raise _Refusal(
                401, "invalid_client", 50027, f"JWT token is invalid: its audience is not one of {audiences}."
            ) from None
        except jwt.InvalidSignatureError:
            raise _Refusal(401, "invalid_client", 700027, "Client assertion failed signature validation.") from None
        except jwt.PyJWTError as error:
            raise _Refusal(400, "invalid_request", 50027, f"JWT token is invalid or malformed. ({error})") from None
        if subject is not None and claims.get("sub") != subject:
            raise _Refusal(
                400, "invalid_request", 50027, "JWT token is invalid or malformed: sub must be the client id."
            )

    # -- errors --------------------------------------------------------------------------------------
    def _error(self, request: Request, status: int, error: str, code: int, description: str) -> Response:
        trace_id = str(uuid.uuid4())
        correlation_id = request.header("client-request-id") or str(uuid.uuid4())
        timestamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        payload = {
            "error": error,
            "error_description": f"AADSTS{code}: {description}\r\nTrace ID: {trace_id}\r\n"
            f"Correlation ID: {correlation_id}\r\nTimestamp: {timestamp}",
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"{self.url}/error?code={code}",
        }
        return Response.json(status, payload)

    def _fault(self, request: Request, fault: Fault) -> Response:
        response = self._error(
            request, fault.status, "temporarily_unavailable", 90033, "A transient error has occurred. Please try again."
        )
        return Response(response.status, response.body, {**response.headers, **retry_after_header(fault)})
