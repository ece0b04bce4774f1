"""Client assertions at the Entra emulator's token endpoint: certificate-signed, or federated from another IdP.

A certificate is one uploaded to the app, or one trusted by subject name and issuer whose chain comes in ``x5c``;
a federated assertion is an external IdP's JWT that matches one of the app's federated identity credentials.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from sandbox.entra_common import Endpoints, Refusal, b64url
from sandbox.entra_directory import App

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LEEWAY = 300  # seconds of clock skew tolerated on client assertions


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


class ClientAssertions:
    """Verifies a ``client_assertion`` against the credentials of an app (a snapshot: no locking needed)."""

    def __init__(self, endpoints: Endpoints) -> None:
        self._endpoints = endpoints

    def check(self, app: App, tenant: str, assertion: str, assertion_type: str | None) -> str:
        """The ``appidacr`` of a valid assertion ("2": certificate or federated); Refusal otherwise."""
        if not assertion_type:
            raise Refusal(
                400,
                "invalid_request",
                90014,
                "The required field 'client_assertion_type' is missing from the credential.",
            )
        if assertion_type != JWT_BEARER:
            raise Refusal(400, "invalid_request", 50027, f"Unsupported client_assertion_type '{assertion_type}'.")
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise Refusal(400, "invalid_request", 50027, "JWT token is invalid or malformed.") from None
        if claims.get("iss") == app.client_id:
            self._check_certificate_assertion(app, tenant, assertion, header)
        else:
            self._check_federated_assertion(app, assertion, claims)
        return "2"

    def _check_certificate_assertion(self, app: App, tenant: str, assertion: str, header: dict[str, Any]) -> None:
        presented = str(header.get("x5t#S256") or header.get("x5t") or "").rstrip("=")  # MSAL pads it
        algorithm = hashes.SHA256() if "x5t#S256" in header else hashes.SHA1()  # x5t is SHA-1 by spec
        match = next((c for c in app.certificates if b64url(c.fingerprint(algorithm)) == presented), None)
        if match is None:
            match = _trusted_chain_certificate(app, header, presented, algorithm)
        if match is None:
            raise Refusal(
                401,
                "invalid_client",
                700027,
                "The certificate with identifier used to sign the client assertion is not registered on "
                f"application. [Reason - The key was not found., Thumbprint of key used by client: '{presented}']",
            )
        now = datetime.now(UTC)
        if not match.not_valid_before_utc <= now <= match.not_valid_after_utc:
            raise Refusal(
                401,
                "invalid_client",
                700027,
                "Client assertion contains an invalid signature. [Reason - The key used is expired.]",
            )
        # Entra accepts the token endpoint, or its v2 issuer, as the assertion's audience.
        audiences = [self._endpoints.token_endpoint(tenant), self._endpoints.issuer(tenant)]
        _verify_assertion(assertion, match.public_key(), audiences, ["RS256", "PS256"], app.client_id)

    @staticmethod
    def _check_federated_assertion(app: App, assertion: str, claims: dict[str, Any]) -> None:
        audiences = claims.get("aud")
        presented = audiences if isinstance(audiences, list) else [audiences]
        candidates = [
            f
            for f in app.federated
            if f.issuer == claims.get("iss") and f.subject == claims.get("sub") and f.audience in presented
        ]
        if not candidates:
            raise Refusal(
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
        _verify_assertion(assertion, credential.key, [credential.audience], algorithms, None)


def _trusted_chain_certificate(
    app: App, header: dict[str, Any], presented: str, algorithm: hashes.HashAlgorithm
) -> x509.Certificate | None:
    """The x5c leaf, when its subject is trusted and the chain leads from it to the trusted issuer."""
    trusted = app.trusted_subjects
    encoded = header.get("x5c")
    if not trusted or not isinstance(encoded, list) or not encoded:
        return None
    try:
        chain = [x509.load_der_x509_certificate(base64.b64decode(item, validate=True)) for item in encoded]
    except (ValueError, TypeError, binascii.Error):
        raise Refusal(400, "invalid_request", 50027, "JWT token is invalid or malformed: bad x5c.") from None
    leaf = chain[0]
    if b64url(leaf.fingerprint(algorithm)) != presented:
        return None  # x5t must name the first certificate of the chain
    if any(leaf.subject == t.subject and _chains_to(chain, t.issuer) for t in trusted):
        return leaf
    return None


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
        raise Refusal(401, "invalid_client", 700024, "Client assertion is not within its valid time range.") from None
    except jwt.InvalidAudienceError:
        raise Refusal(
            401, "invalid_client", 50027, f"JWT token is invalid: its audience is not one of {audiences}."
        ) from None
    except jwt.InvalidSignatureError:
        raise Refusal(401, "invalid_client", 700027, "Client assertion failed signature validation.") from None
    except jwt.PyJWTError as error:
        raise Refusal(400, "invalid_request", 50027, f"JWT token is invalid or malformed. ({error})") from None
    if subject is not None and claims.get("sub") != subject:
        raise Refusal(400, "invalid_request", 50027, "JWT token is invalid or malformed: sub must be the client id.")
