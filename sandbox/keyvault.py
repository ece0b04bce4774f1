"""Azure Key Vault secrets emulator: the bearer-challenge protocol, then ``GET /secrets/{name}[/{version}]``.

A request without a token gets ``401`` and ``WWW-Authenticate: Bearer authorization="{entra}/{tenant}",
resource="{vault origin}"``, exactly the challenge azure-keyvault-secrets parses; the token it then
fetches from the Entra emulator is verified (signature, audience = the vault origin, tenant, expiry).

azure-keyvault-secrets checks that the vault host is a *subdomain* of the challenge's resource host
(``x.vault.azure.net`` under ``vault.azure.net``); no local host satisfies that, so clients of this
emulator pass ``verify_challenge_resource=False``.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sandbox.entra import EntraEmulator, TokenError
from sandbox.https import Fault, HttpsEmulator, Request, Response, retry_after_header
from sandbox.tls import LocalCA

API_VERSIONS = frozenset({"2016-10-01", "7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "2025-07-01", "2026-04-01"})
_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")
_VERSION = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class SecretVersion:
    name: str
    version: str
    value: str
    created: int
    content_type: str | None = None


class KeyVaultEmulator(HttpsEmulator):
    """One vault at ``url``, trusting tokens from ``entra`` for ``tenant_id``; ``fail_next`` applies to
    ``/secrets`` requests, before authentication (429 answers ``Throttled``, others ``ServiceUnavailable``)."""

    max_body_bytes = 1024 * 1024

    def __init__(self, ca: LocalCA, entra: EntraEmulator, tenant_id: str) -> None:
        super().__init__(ca)
        self.entra = entra
        self.tenant_id = tenant_id
        self._lock = threading.Lock()
        self._secrets: dict[str, list[SecretVersion]] = {}  # by lower-cased name: names are case-insensitive
        self._forbidden: set[str] = set()
        self._reads = 0

    # -- test-facing API -----------------------------------------------------------------------------
    @property
    def resource(self) -> str:
        """The token audience this vault demands (its own origin; ``https://vault.azure.net`` in Azure)."""
        return self.url

    def set_secret(self, name: str, value: str, content_type: str | None = None) -> str:
        """Store a new version of ``name`` (it becomes the current one); returns the version id."""
        if not _NAME.fullmatch(name):
            raise ValueError(f"invalid secret name {name!r}: 1-127 letters, digits and dashes")
        version = SecretVersion(name, uuid.uuid4().hex, value, int(time.time()), content_type)
        with self._lock:
            self._secrets.setdefault(name.lower(), []).append(version)
        return version.version

    def forbid(self, client_id: str) -> None:
        """Answer this app's reads with 403 ForbiddenByRbac (a role assignment missing)."""
        with self._lock:
            self._forbidden.add(client_id)

    @property
    def reads(self) -> int:
        """Secrets served successfully."""
        with self._lock:
            return self._reads

    # -- HTTP ----------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        if parts[0] != "secrets":
            return _error(404, "NotFound", f"The sandbox vault serves /secrets only, not {request.path}.")
        fault = self.take_fault()
        if fault is not None:
            return self.raw_fault(fault) or _fault(fault)
        claims_or_refusal = self._authenticate(request)
        if isinstance(claims_or_refusal, Response):
            return claims_or_refusal
        claims = claims_or_refusal
        api_version = request.param("api-version")
        if not api_version:
            return _error(400, "BadParameter", "The 'api-version' query parameter is missing.")
        if api_version not in API_VERSIONS:
            return _error(400, "BadParameter", f"The specified version ({api_version}) is not recognized.")
        if request.method != "GET":
            return _error(405, "MethodNotAllowed", f"The sandbox vault serves GET only, not {request.method}.")
        if len(parts) not in (2, 3) or not _NAME.fullmatch(parts[1]):
            return _error(400, "BadParameter", f"The request URI contains an invalid name: {request.path}")
        name, version = parts[1], parts[2] if len(parts) == 3 else ""
        with self._lock:
            if claims.get("appid") in self._forbidden:
                return self._forbidden_response(claims, name)
            secret = self._find(name, version)
            if secret is not None:
                self._reads += 1
        if secret is None:
            shown = f"{name}/{version}" if version else name
            return _error(
                404,
                "SecretNotFound",
                f"A secret with (name/id) {shown} was not found in this key vault. If you recently deleted this "
                "secret you may be able to recover it using the correct recovery command. For help resolving "
                "this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
            )
        return Response.json(200, self._bundle(secret))

    def _authenticate(self, request: Request) -> dict[str, Any] | Response:
        header = request.header("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return self._unauthorized("AKV10000: Request is missing a Bearer or PoP token.")
        try:
            return self.entra.verify_token(token.strip(), self.resource, self.tenant_id)
        except TokenError as error:
            code = {"audience": "AKV10022: ", "issuer": "AKV10032: "}.get(error.reason, "")
            return self._unauthorized(f"{code}{error}")

    def _unauthorized(self, message: str) -> Response:
        challenge = f'Bearer authorization="{self.entra.url}/{self.tenant_id}", resource="{self.resource}"'
        return _error(401, "Unauthorized", message, {"WWW-Authenticate": challenge})

    def _find(self, name: str, version: str) -> SecretVersion | None:
        versions = self._secrets.get(name.lower(), [])
        if not version:
            return versions[-1] if versions else None
        if not _VERSION.fullmatch(version):
            return None
        return next((v for v in versions if v.version == version), None)

    def _bundle(self, secret: SecretVersion) -> dict[str, Any]:
        bundle: dict[str, Any] = {
            "value": secret.value,
            "id": f"{self.url}/secrets/{secret.name}/{secret.version}",
            "attributes": {
                "enabled": True,
                "created": secret.created,
                "updated": secret.created,
                "recoveryLevel": "Recoverable+Purgeable",
                "recoverableDays": 90,
            },
            "tags": {},
        }
        if secret.content_type is not None:
            bundle["contentType"] = secret.content_type
        return bundle

    def _forbidden_response(self, claims: dict[str, Any], name: str) -> Response:
        message = (
            "Caller is not authorized to perform action on resource.\r\n"
            f"Caller: appid={claims.get('appid')};oid={claims.get('oid')}\r\n"
            "Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'\r\n"
            f"Resource: '{self.url}/secrets/{name}'\r\n"
            "Assignment: (not found)\r\nDecisionReason: 'DeniedWithNoValidRBAC'"
        )
        payload = {"error": {"code": "Forbidden", "message": message, "innererror": {"code": "ForbiddenByRbac"}}}
        return Response.json(403, payload)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response.json(status, {"error": {"code": code, "message": message}}, headers)


def _fault(fault: Fault) -> Response:
    if fault.status == 429:
        code, message = "Throttled", "Request was not processed because too many requests were received."
    else:
        code, message = "ServiceUnavailable", "The service is temporarily unavailable (sandbox fault)."
    return _error(fault.status, code, message, retry_after_header(fault))
