"""Entra client assertions signed by AWS KMS: the certificate's private key never leaves the HSM.

The assertion is exactly what MSAL builds from a local certificate (RFC 7523 private_key_jwt, Entra's
"certificate credentials" format), only the RS256 signature comes from `kms:Sign`.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from keyreport.errors import KmsKeyUnusable
from keyreport.identity.certificates import b64url, same_public_key, thumbprint_headers
from keyreport.identity.kms_key import KmsSigningKey
from keyreport.log import logger

ASSERTION_SECONDS = 600  # Entra docs: "keep it short, 5-10 minutes after nbf"
EXPIRY_WARNING = timedelta(days=30)


def token_endpoint(authority: str, tenant_id: str) -> str:
    """Where the assertion is presented, and so its audience (the v2 token endpoint of the tenant)."""
    base = authority.rstrip("/")
    if "://" not in base:
        base = "https://" + base
    return f"{base}/{tenant_id}/oauth2/v2.0/token"


class KmsClientAssertion:
    """The ClientAssertionCredential callback: a new signed assertion each time Entra is asked for a token."""

    def __init__(
        self,
        key: KmsSigningKey,
        certificate: x509.Certificate,
        *,
        client_id: str,
        audience: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = key
        self._certificate = certificate
        self._client_id = client_id
        self._audience = audience
        self._clock = clock
        self._header = {"alg": "RS256", "typ": "JWT", **thumbprint_headers(certificate)}
        self._checked = False
        self._lock = threading.Lock()

    def __call__(self) -> str:
        self._check_certificate()
        now = int(self._clock())
        claims = {
            "aud": self._audience,
            "iss": self._client_id,
            "sub": self._client_id,
            "jti": str(uuid.uuid4()),
            "iat": now,
            "nbf": now,
            "exp": now + ASSERTION_SECONDS,
        }
        signing_input = f"{_segment(self._header)}.{_segment(claims)}"
        return f"{signing_input}.{b64url(self._key.sign(signing_input.encode('ascii')))}"

    def _check_certificate(self) -> None:
        """Once per container: the certificate must be this key's and still valid, or Entra will refuse it."""
        with self._lock:
            if self._checked:
                return
            certificate, key_id = self._certificate, self._key.key_id
            thumbprint = certificate.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - as the portal shows it
            if not same_public_key(certificate, self._key.public_key):
                raise KmsKeyUnusable(
                    f"the certificate in KEYREPORT_KMS_CERTIFICATE (thumbprint {thumbprint}) does not hold the public "
                    f"key of KMS key {key_id}: make it with `keyreport kms-certificate --key-id {key_id}`"
                )
            now = datetime.fromtimestamp(self._clock(), UTC)
            expires = certificate.not_valid_after_utc
            if now >= expires:
                raise KmsKeyUnusable(
                    f"the certificate in KEYREPORT_KMS_CERTIFICATE (thumbprint {thumbprint}) expired on "
                    f"{expires:%Y-%m-%d}: make a new one with `keyreport kms-certificate` and register it in Entra"
                )
            if expires - now < EXPIRY_WARNING:
                logger.warning(
                    "the KMS certificate registered in Entra expires soon",
                    extra={"thumbprint": thumbprint, "expires": expires.isoformat()},
                )
            self._checked = True


def _segment(value: Mapping[str, object]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())
