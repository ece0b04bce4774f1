"""`kms` mode: assertions and certificates signed by KMS (moto, in process), checked with independent verifiers."""

from __future__ import annotations

import base64
import hashlib
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import jwt
import pytest
from botocore.stub import Stubber
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from moto import mock_aws

from keyreport.errors import KmsKeyUnusable
from keyreport.identity.kms_assertion import ASSERTION_SECONDS, KmsClientAssertion, token_endpoint
from keyreport.identity.kms_certificate import build_certificate, parse_subject
from keyreport.identity.kms_key import KmsSigningKey
from sandbox.auth_modes import make_certificate

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

CLIENT = "0a1b2c3d-1111-2222-3333-444455556666"
AUDIENCE = token_endpoint("https://login.microsoftonline.us", "72f988bf-86f1-41af-91ab-2d7cd011db47")


@pytest.fixture
def kms() -> Iterator[KMSClient]:
    with mock_aws():
        yield boto3.client("kms", region_name="us-east-1")


def signing_key(kms: KMSClient, spec: str = "RSA_2048", usage: str = "SIGN_VERIFY") -> KmsSigningKey:
    key_id = kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]["KeyId"]  # type: ignore[arg-type]
    return KmsSigningKey(kms, key_id)


def kms_public_key(kms: KMSClient, key: KmsSigningKey) -> object:
    """Straight from KMS, not through keyreport."""
    return serialization.load_der_public_key(kms.get_public_key(KeyId=key.key_id)["PublicKey"])


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_the_certificate_is_self_signed_by_kms_and_holds_the_kms_public_key(kms: KMSClient, tmp_path: Path) -> None:
    key = signing_key(kms, "RSA_3072")
    certificate = build_certificate(key, parse_subject("CN=keyreport,O=Example"), 30)

    certificate.verify_directly_issued_by(certificate)  # signature checked by cryptography, not by keyreport
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert certificate.public_key().public_bytes(serialization.Encoding.DER, spki) == kms_public_key(
        kms, key
    ).public_bytes(serialization.Encoding.DER, spki)  # type: ignore[attr-defined]
    assert certificate.subject == certificate.issuer == parse_subject("CN=keyreport,O=Example")
    assert certificate.signature_hash_algorithm is not None and certificate.signature_hash_algorithm.name == "sha256"
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert timedelta(days=30) <= lifetime <= timedelta(days=30, minutes=6)
    eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    # A second, independent parser of the DER keyreport assembled around the KMS signature.
    path = tmp_path / "cert.pem"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    text = subprocess.run(
        ["openssl", "x509", "-in", str(path), "-noout", "-text"], capture_output=True, text=True, check=True
    ).stdout
    assert "Signature Algorithm: sha256WithRSAEncryption" in text and "Public-Key: (3072 bit)" in text


def test_the_assertion_is_what_entra_documents_and_verifies_with_the_certificate(kms: KMSClient) -> None:
    key = signing_key(kms)
    certificate = build_certificate(key, parse_subject("CN=keyreport"), 365)
    now = float(int(datetime.now(UTC).timestamp()))
    assertion = KmsClientAssertion(key, certificate, client_id=CLIENT, audience=AUDIENCE, clock=lambda: now)

    first, second = assertion(), assertion()

    header = jwt.get_unverified_header(first)
    der = certificate.public_bytes(serialization.Encoding.DER)
    assert header == {
        "alg": "RS256",
        "typ": "JWT",
        "x5t": b64url(certificate.fingerprint(hashes.SHA1())),
        "x5t#S256": b64url(certificate.fingerprint(hashes.SHA256())),
    }
    assert header["x5t#S256"] == b64url(hashlib.sha256(der).digest())
    claims = jwt.decode(
        first,
        certificate.public_key(),  # type: ignore[arg-type]
        algorithms=["RS256"],
        audience=AUDIENCE,
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
    )
    assert claims["aud"] == "https://login.microsoftonline.us/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token"
    assert claims["iss"] == claims["sub"] == CLIENT
    assert claims["nbf"] == claims["iat"] == int(now) and claims["exp"] == int(now) + ASSERTION_SECONDS
    assert claims["jti"] != jwt.decode(second, options={"verify_signature": False})["jti"]


def test_a_certificate_of_another_key_is_refused_before_entra_sees_it(kms: KMSClient) -> None:
    key = signing_key(kms)
    stranger = make_certificate("keyreport").certificate
    with pytest.raises(KmsKeyUnusable, match=r"does not hold the public key of KMS key .*keyreport kms-certificate"):
        KmsClientAssertion(key, stranger, client_id=CLIENT, audience=AUDIENCE)()


def test_an_expired_certificate_is_refused_with_the_date(kms: KMSClient) -> None:
    key = signing_key(kms)
    certificate = build_certificate(key, parse_subject("CN=keyreport"), 1)
    later = (datetime.now(UTC) + timedelta(days=3)).timestamp()
    with pytest.raises(KmsKeyUnusable, match=r"expired on \d{4}-\d\d-\d\d: make a new one"):
        KmsClientAssertion(key, certificate, client_id=CLIENT, audience=AUDIENCE, clock=lambda: later)()


@pytest.mark.parametrize(
    ("spec", "usage", "says"),
    [
        ("ECC_NIST_P256", "SIGN_VERIFY", "has key spec ECC_NIST_P256; keyreport needs RSA_2048, RSA_3072 or RSA_4096"),
        ("RSA_2048", "ENCRYPT_DECRYPT", "has key usage ENCRYPT_DECRYPT; keyreport needs an RSA key with usage"),
        ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "has key usage ENCRYPT_DECRYPT"),
    ],
)
def test_a_key_that_cannot_sign_rs256_is_named_and_explained(kms: KMSClient, spec: str, usage: str, says: str) -> None:
    key = signing_key(kms, spec, usage)
    with pytest.raises(KmsKeyUnusable, match=says):
        build_certificate(key, parse_subject("CN=keyreport"), 30)


def test_a_missing_key_says_so(kms: KMSClient) -> None:
    with pytest.raises(KmsKeyUnusable, match=r"KMS key alias/nothing-here does not exist in this account and region"):
        KmsSigningKey(kms, "alias/nothing-here").public_key  # noqa: B018 - the property calls KMS


@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("DisabledException", "KMS key alias/k is disabled: enable it"),
        ("AccessDeniedException", "the function's role may not call kms:Sign on KMS key alias/k"),
        ("KMSInvalidStateException", "KMS key alias/k is not usable in its current state"),
        ("ThrottlingException", "kms:Sign on KMS key alias/k failed: ThrottlingException: slow down"),
    ],
)
def test_kms_refusals_when_signing_say_what_to_change(code: str, says: str) -> None:
    """moto signs even with a disabled key, so these answers of the real service are stubbed."""
    client = boto3.client("kms", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    with Stubber(client) as stub:
        stub.add_client_error("sign", code, "slow down")
        with pytest.raises(KmsKeyUnusable) as refused:
            KmsSigningKey(client, "alias/k").sign(b"header.claims")
    assert str(refused.value) == says or str(refused.value).startswith(says)


def test_messages_over_the_raw_limit_are_refused_locally(kms: KMSClient) -> None:
    with pytest.raises(KmsKeyUnusable, match="exceed the 4096-byte KMS Sign limit"):
        signing_key(kms).sign(b"x" * 4097)


@pytest.mark.parametrize(("subject", "days"), [("keyreport", 30), ("", 30), ("CN=keyreport", 0), ("CN=k", 3651)])
def test_bad_subject_or_validity_is_a_clear_value_error(kms: KMSClient, subject: str, days: int) -> None:
    with pytest.raises(ValueError, match=r"--subject|--days"):
        build_certificate(signing_key(kms), parse_subject(subject), days)
