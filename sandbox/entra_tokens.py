"""The Entra emulator's token authority: its signing key and JWKS, issuing access tokens and verifying them."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.entra_common import Endpoints, b64url
from sandbox.entra_directory import Directory, object_id

DEFAULT_TOKEN_LIFETIME = 3599


class TokenError(ValueError):
    """An access token the emulator did not issue, or not for this audience / tenant, or expired."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # malformed | signature | expired | audience | issuer


class TokenAuthority:
    """Signs (RS256, one key) and verifies the tokens of every tenant in ``directory``; keeps what it issued."""

    def __init__(self, endpoints: Endpoints, directory: Directory) -> None:
        self._endpoints = endpoints
        self._directory = directory
        self._signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_der = self._signing_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.key_id = b64url(hashlib.sha256(public_der).digest()[:20])
        self.lifetime = DEFAULT_TOKEN_LIFETIME
        self._lock = threading.Lock()
        self._issued: list[dict[str, Any]] = []

    @property
    def issued(self) -> list[dict[str, Any]]:
        """Claims of every token issued, oldest first."""
        with self._lock:
            return list(self._issued)

    def jwks(self) -> dict[str, Any]:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self._signing_key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "use": "sig", "kid": self.key_id}]}

    def issue(
        self,
        tenant_id: str,
        client_id: str,
        audience: str,
        *,
        lifetime: int | None = None,
        auth_method: str = "1",
        **extra_claims: Any,
    ) -> str:
        """Sign an app-only access token (``lifetime=-60`` gives an expired one)."""
        now = int(time.time())
        oid = object_id(tenant_id, client_id)
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": self._endpoints.issuer(tenant_id),
            "iat": now,
            "nbf": now,
            "exp": now + (self.lifetime if lifetime is None else lifetime),
            # v1 (appid/appidacr) and v2 (azp/azpacr) names both, so either kind of consumer finds them.
            "appid": client_id,
            "appidacr": auth_method,
            "azp": client_id,
            "azpacr": auth_method,
            "idtyp": "app",
            "oid": oid,
            "sub": oid,
            "tid": tenant_id,
            "uti": b64url(uuid.uuid4().bytes),
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

    def verify(self, token: str, audience: str, tenant_id: str | None = None) -> dict[str, Any]:
        """Claims of a token this authority issued for ``audience`` (and ``tenant_id``); TokenError if not."""
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as error:
            raise TokenError("malformed", f"the token is malformed: {error}") from None
        if header.get("kid") != self.key_id:
            raise TokenError("signature", "the token is not signed by a key of this issuer")
        tid = str(unverified.get("tid", ""))
        if not self._directory.known(tid) or (tenant_id is not None and tid != tenant_id):
            expected = self._endpoints.issuer(tenant_id) if tenant_id else "a known tenant"
            raise TokenError("issuer", f"Invalid issuer. Expected {expected}, found: {unverified.get('iss')}.")
        try:
            return dict(
                jwt.decode(
                    token,
                    self._signing_key.public_key(),
                    algorithms=["RS256"],
                    audience=audience,
                    issuer=self._endpoints.issuer(tid),
                    options={"require": ["exp", "iat", "nbf", "aud", "iss", "tid"]},
                )
            )
        except jwt.InvalidAudienceError:
            raise TokenError(
                "audience", f"Invalid audience. Expected {audience}, found: {unverified.get('aud')}."
            ) from None
        except jwt.InvalidIssuerError:
            raise TokenError("issuer", f"Invalid issuer. Expected {self._endpoints.issuer(tid)}.") from None
        except jwt.ExpiredSignatureError:
            raise TokenError("expired", "the token is expired") from None
        except jwt.PyJWTError as error:
            raise TokenError("signature", f"the token failed validation: {error}") from None
