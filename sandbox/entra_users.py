"""People signing in through the Entra emulator: the device code flow (RFC 8628) and the authorization code
flow with PKCE (what a browser sign-in does), plus refresh tokens, for public client apps only.

Small on purpose: one active browser session per tenant (``sign_in_browser``), device codes approved
from code (``approve``), consent implied. The answers carry what MSAL and azure-identity need and
check: ``id_token`` (signed), ``client_info``, ``refresh_token``, the granted ``scope``; refusals use
Entra's error names and AADSTS codes (``authorization_pending`` while a code waits, ``invalid_grant``
for a PKCE mismatch, ``invalid_client`` for an app that is not a public client).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import string
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from sandbox.entra_common import NO_STORE, Endpoints, Refusal, b64url
from sandbox.entra_directory import Directory
from sandbox.entra_tokens import TokenAuthority
from sandbox.https import Request, Response

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
USER_GRANTS = frozenset({DEVICE_CODE_GRANT, "authorization_code", "refresh_token"})
OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
DEVICE_CODE_SECONDS = 900
POLL_INTERVAL = 1  # Entra says 5; the sandbox keeps tests quick (the client honours whatever it is told)
AUTH_CODE_SECONDS = 600


@dataclass(frozen=True)
class User:
    tenant_id: str
    username: str
    object_id: str
    name: str


@dataclass
class _DeviceCode:
    tenant_id: str
    client_id: str
    audience: str
    user_code: str
    expires_at: float
    user: User | None = None


@dataclass(frozen=True)
class _AuthCode:
    tenant_id: str
    client_id: str
    redirect_uri: str
    challenge: str
    audience: str
    user: User
    nonce: str | None
    expires_at: float


@dataclass(frozen=True)
class _Grant:
    tenant_id: str
    client_id: str
    user: User


@dataclass
class _State:
    users: dict[tuple[str, str], User] = field(default_factory=dict)
    public_clients: set[tuple[str, str]] = field(default_factory=set)
    browser: dict[str, User] = field(default_factory=dict)  # tenant -> who is signed in to the browser
    device_codes: dict[str, _DeviceCode] = field(default_factory=dict)
    auth_codes: dict[str, _AuthCode] = field(default_factory=dict)
    refresh_tokens: dict[str, _Grant] = field(default_factory=dict)


class UserSignIn:
    """People's sign-in through the public client apps of ``directory``; tokens come from ``tokens``."""

    def __init__(self, endpoints: Endpoints, directory: Directory, tokens: TokenAuthority) -> None:
        self._endpoints = endpoints
        self._directory = directory
        self._authority = tokens
        self._lock = threading.Lock()
        self._state = _State()

    # -- set-up, from code ------------------------------------------------------------------------
    def add_public_client(self, tenant_id: str, client_id: str) -> None:
        """Register an app that allows public client flows (device code, browser with PKCE)."""
        self._directory.register_app(tenant_id, client_id)
        with self._lock:
            self._state.public_clients.add((tenant_id, client_id))

    def add_user(self, tenant_id: str, username: str, name: str | None = None) -> User:
        user = User(
            tenant_id, username, str(uuid.uuid5(uuid.NAMESPACE_URL, f"user:{tenant_id}:{username}")), name or username
        )
        with self._lock:
            self._state.users[(tenant_id, username)] = user
        return user

    def sign_in_browser(self, tenant_id: str, username: str) -> None:
        """The person has a session in the browser: /authorize answers at once, without a sign-in page."""
        with self._lock:
            self._state.browser[tenant_id] = self._state.users[(tenant_id, username)]

    def pending_user_codes(self) -> list[str]:
        with self._lock:
            return [c.user_code for c in self._state.device_codes.values() if c.user is None]

    def approve(self, user_code: str, username: str) -> None:
        """What the person does at the verification page: enter the code and sign in."""
        with self._lock:
            code = next(c for c in self._state.device_codes.values() if c.user_code == user_code)
            code.user = self._state.users[(code.tenant_id, username)]

    # -- endpoints ----------------------------------------------------------------------------------
    def device_authorization(self, form: dict[str, str], tenant_id: str) -> Response:
        client_id = form.get("client_id", "")
        self._public_client(tenant_id, client_id)
        audience = _audience(form.get("scope", ""))
        device_code = secrets.token_urlsafe(32)
        user_code = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(9))
        with self._lock:
            self._state.device_codes[device_code] = _DeviceCode(
                tenant_id, client_id, audience, user_code, time.time() + DEVICE_CODE_SECONDS
            )
        uri = f"{self._endpoints.url}/devicelogin"
        return Response.json(
            200,
            {
                "device_code": device_code,
                "user_code": user_code,
                "verification_uri": uri,
                "expires_in": DEVICE_CODE_SECONDS,
                "interval": POLL_INTERVAL,
                "message": f"To sign in, use a web browser to open the page {uri} and enter the code {user_code} "
                "to authenticate.",
            },
        )

    def authorize(self, request: Request, tenant_id: str) -> Response:
        client_id = request.param("client_id") or ""
        self._public_client(tenant_id, client_id)
        redirect_uri = request.param("redirect_uri") or ""
        if urlsplit(redirect_uri).scheme != "http" or urlsplit(redirect_uri).hostname not in ("localhost", "127.0.0.1"):
            raise Refusal(
                400,
                "invalid_request",
                50011,
                f"The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs "
                f"configured for the application '{client_id}'. (The sandbox allows http://localhost only.)",
            )
        if request.param("response_type") != "code" or request.param("code_challenge_method") != "S256":
            raise Refusal(400, "invalid_request", 9002325, "Proof Key for Code Exchange (S256) is required.")
        with self._lock:
            user = self._state.browser.get(tenant_id)
        if user is None:  # a real page would ask for a password here; the sandbox has nobody to type it
            return Response(200, b"<html><body>Sign in to your account</body></html>", {"Content-Type": "text/html"})
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._state.auth_codes[code] = _AuthCode(
                tenant_id,
                client_id,
                redirect_uri,
                request.param("code_challenge") or "",
                _audience(request.param("scope") or ""),
                user,
                request.param("nonce"),
                time.time() + AUTH_CODE_SECONDS,
            )
        query = {"code": code, "state": request.param("state") or "", "client_info": _client_info(user)}
        return Response(302, b"", {"Location": f"{redirect_uri}?{urlencode(query)}"})

    def token(self, form: dict[str, str], tenant_id: str) -> Response:
        grant = form["grant_type"]
        client_id = form.get("client_id", "")
        self._public_client(tenant_id, client_id)
        if grant == DEVICE_CODE_GRANT:
            user, audience = self._redeem_device_code(form.get("device_code", ""), client_id)
        elif grant == "authorization_code":
            user, audience, nonce = self._redeem_auth_code(form, client_id)
            return self._tokens(user, client_id, audience, nonce)
        else:
            with self._lock:
                held = self._state.refresh_tokens.get(form.get("refresh_token", ""))
            if held is None or held.client_id != client_id or held.tenant_id != tenant_id:
                raise Refusal(400, "invalid_grant", 9002313, "Invalid request. Malformed or invalid refresh token.")
            user, audience = held.user, _audience(form.get("scope", ""))
        return self._tokens(user, client_id, audience, None)

    # -- internals ----------------------------------------------------------------------------------
    def _public_client(self, tenant_id: str, client_id: str) -> None:
        with self._lock:
            public = (tenant_id, client_id) in self._state.public_clients
        if not public:
            raise Refusal(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'. "
                f"(App '{client_id}' does not allow public client flows.)",
            )

    def _redeem_device_code(self, device_code: str, client_id: str) -> tuple[User, str]:
        with self._lock:
            pending = self._state.device_codes.get(device_code)
            if pending is None or pending.client_id != client_id:
                raise Refusal(400, "invalid_grant", 70000, "The provided device code is not valid.")
            if time.time() > pending.expires_at:
                del self._state.device_codes[device_code]
                raise Refusal(400, "expired_token", 70020, "The provided value for device_code is expired.")
            if pending.user is None:
                raise Refusal(
                    400, "authorization_pending", 70016, "OAuth 2.0 device flow error. Authorization is pending."
                )
            del self._state.device_codes[device_code]
            return pending.user, pending.audience

    def _redeem_auth_code(self, form: dict[str, str], client_id: str) -> tuple[User, str, str | None]:
        with self._lock:
            issued = self._state.auth_codes.pop(form.get("code", ""), None)
        if issued is None or issued.client_id != client_id or time.time() > issued.expires_at:
            raise Refusal(400, "invalid_grant", 70008, "The provided authorization code is expired or invalid.")
        if form.get("redirect_uri") != issued.redirect_uri:
            raise Refusal(400, "invalid_grant", 70002, "The redirect_uri does not match the one authorized.")
        verifier = form.get("code_verifier", "")
        computed = b64url(hashlib.sha256(verifier.encode()).digest())
        if not verifier or computed != issued.challenge:
            raise Refusal(400, "invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied.")
        return issued.user, issued.audience, issued.nonce

    def _tokens(self, user: User, client_id: str, audience: str, nonce: str | None) -> Response:
        tenant = user.tenant_id
        access_token = self._authority.issue(
            tenant,
            client_id,
            audience,
            auth_method="0",  # a public client: no client authentication
            oid=user.object_id,
            sub=str(uuid.uuid5(uuid.NAMESPACE_URL, f"sub:{client_id}:{user.object_id}")),
            idtyp="user",
            scp="user_impersonation",
            upn=user.username,
            name=user.name,
        )
        now = int(time.time())
        id_claims: dict[str, Any] = {
            "aud": client_id,
            "iss": self._endpoints.issuer(tenant),
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "tid": tenant,
            "oid": user.object_id,
            "sub": user.object_id,
            "preferred_username": user.username,
            "name": user.name,
            "ver": "2.0",
        }
        if nonce:
            id_claims["nonce"] = nonce
        refresh_token = secrets.token_urlsafe(48)
        with self._lock:
            self._state.refresh_tokens[refresh_token] = _Grant(tenant, client_id, user)
        return Response.json(
            200,
            {
                "token_type": "Bearer",
                "scope": f"{audience}/user_impersonation openid profile offline_access",
                "expires_in": self._authority.lifetime,
                "ext_expires_in": self._authority.lifetime,
                "access_token": access_token,
                "refresh_token": refresh_token,
                "id_token": self._authority.sign(id_claims),
                "client_info": _client_info(user),
            },
            NO_STORE,
        )


def _audience(scope: str) -> str:
    resources = [s for s in scope.split() if s not in OIDC_SCOPES]
    if len(resources) != 1 or not resources[0].endswith("/.default"):
        raise Refusal(
            400,
            "invalid_scope",
            70011,
            f"The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid. "
            "(The sandbox expects one <resource>/.default scope.)",
        )
    return resources[0].removesuffix("/.default")


def _client_info(user: User) -> str:
    return b64url(json.dumps({"uid": user.object_id, "utid": user.tenant_id}).encode())
