"""AWS IAM outbound identity federation for the sandbox: ``sts:GetWebIdentityToken``, which moto lacks.

:class:`WebIdentityIssuer` is one account's issuer (``https://<id>.tokens.sts.global.api.aws``) with its
own RSA signing key; :func:`install` teaches this process's moto server the action, so boto3 reaches it
over HTTP like any other STS call. What the real service does and the sandbox mirrors:

- the caller is whoever signed the request: an assumed role's token names the *role* ARN as ``sub``
  (not the session), as AWS documents for Lambda execution roles;
- ``aud`` is the requested audience (one, or a list), ``exp`` = now + DurationSeconds (60..3600,
  default 300), ``iss`` the account's issuer; AWS claims sit under ``https://sts.amazonaws.com/``;
- an account that has not enabled the feature gets ``OutboundWebIdentityFederationDisabledException``
  (403), and a principal whose policy lacks the action gets ``AccessDenied`` (403).

Only RS256 is signed here (AWS also offers ES384; keyreport asks for RS256).
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from moto.core.exceptions import AccessDeniedError
from moto.core.responses import ActionResult
from moto.sts.exceptions import STSClientError, STSValidationError
from moto.sts.responses import TokenResponse

DEFAULT_SECONDS = 300
ALGORITHMS = ("RS256", "ES384")
_ISSUERS: dict[str, WebIdentityIssuer] = {}
_INSTALL_LOCK = threading.Lock()


class WebIdentityIssuer:
    """The token issuer of one AWS account; register its ``public_key`` with Entra as the federated issuer's key."""

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        self.url = f"https://{uuid.uuid4()}.tokens.sts.global.api.aws"
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_id = uuid.uuid4().hex
        self.enabled = True
        self.denied: set[str] = set()  # principal ARNs whose policy does not allow sts:GetWebIdentityToken
        self._lock = threading.Lock()
        self.issued: list[dict[str, Any]] = []

    @property
    def public_key(self) -> RSAPublicKey:
        return self._key.public_key()

    def token(self, caller_arn: str, audiences: list[str], seconds: int, region: str) -> tuple[str, datetime]:
        now = datetime.now(UTC).replace(microsecond=0)
        expires = now + timedelta(seconds=seconds)
        claims: dict[str, Any] = {
            "iss": self.url,
            "aud": audiences[0] if len(audiences) == 1 else audiences,
            "sub": principal_arn(caller_arn),
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "jti": str(uuid.uuid4()),
            "https://sts.amazonaws.com/": {"aws_account": self.account_id, "source_region": region},
        }
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.key_id, "typ": "JWT"})
        with self._lock:
            self.issued.append(claims)
        return token, expires


def principal_arn(caller_arn: str) -> str:
    """``arn:aws:sts::1:assumed-role/Role/session`` -> ``arn:aws:iam::1:role/Role``; other ARNs unchanged."""
    parts = caller_arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        role = parts[5].split("/")[1]
        return f"arn:{parts[1]}:iam::{parts[4]}:role/{role}"
    return caller_arn


def issuer_for(account_id: str) -> WebIdentityIssuer:
    """The account's issuer (created on first use), with the action installed in moto."""
    install()
    with _INSTALL_LOCK:
        if account_id not in _ISSUERS:
            _ISSUERS[account_id] = WebIdentityIssuer(account_id)
        return _ISSUERS[account_id]


def install() -> None:
    """Add GetWebIdentityToken to moto's STS responses in this process (idempotent)."""
    with _INSTALL_LOCK:
        if not hasattr(TokenResponse, "get_web_identity_token"):
            TokenResponse.get_web_identity_token = _get_web_identity_token  # type: ignore[attr-defined]


def _get_web_identity_token(self: TokenResponse) -> ActionResult:
    audiences = self._get_param("Audience") or []
    algorithm = self._get_param("SigningAlgorithm")
    seconds = self._get_int_param("DurationSeconds", DEFAULT_SECONDS)
    if not audiences or not 1 <= len(audiences) <= 10:
        raise STSValidationError("Audience must list 1 to 10 values")
    if algorithm not in ALGORITHMS:
        raise STSValidationError(f"SigningAlgorithm must be one of {', '.join(ALGORITHMS)}")
    if algorithm != "RS256":
        raise STSValidationError("the sandbox issuer signs RS256 only")
    if not 60 <= seconds <= 3600:
        raise STSValidationError("DurationSeconds must be between 60 and 3600")
    _, caller_arn, account_id = self.backend.get_caller_identity(self.get_access_key(), self.region)
    with _INSTALL_LOCK:
        issuer = _ISSUERS.get(account_id)
    if issuer is None or not issuer.enabled:
        raise STSClientError(
            "OutboundWebIdentityFederationDisabledException",
            "The outbound web identity federation feature is not enabled for this account.",
        )
    if principal_arn(caller_arn) in issuer.denied:
        raise AccessDeniedError(caller_arn, "sts:GetWebIdentityToken")
    token, expires = issuer.token(caller_arn, list(audiences), seconds, self.region)
    return ActionResult({"WebIdentityToken": token, "Expiration": expires})
