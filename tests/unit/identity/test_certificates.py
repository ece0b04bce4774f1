"""`certificate` mode's input, the PEM in Secrets Manager: every way it can be wrong, named without quoting it."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keyreport.errors import CertificateProblem
from keyreport.identity.certificates import parse_certificate, parse_client_certificate
from sandbox.auth_modes import ClientCertificate, make_certificate

LEAF = make_certificate("keyreport")
CA = make_certificate("Example Issuing CA", ca=True)
ISSUED = make_certificate("keyreport.example.com", issuer=CA)


def pem(certificate: ClientCertificate) -> str:
    return certificate.pem


def key_pem(certificate: ClientCertificate, encryption: serialization.KeySerializationEncryption) -> str:
    return certificate.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    ).decode()


def cert_pem(certificate: ClientCertificate) -> str:
    return certificate.certificate.public_bytes(serialization.Encoding.PEM).decode()


def test_key_and_certificate_parse_without_a_chain() -> None:
    bundle = parse_client_certificate(pem(LEAF))
    assert bundle.certificate == LEAF.certificate and not bundle.has_chain


def test_a_chain_after_the_certificate_is_recognised() -> None:
    bundle = parse_client_certificate(pem(ISSUED))
    assert bundle.certificate == ISSUED.certificate and bundle.has_chain and bundle.chain_length == 2


def test_the_order_of_key_and_certificate_does_not_matter() -> None:
    assert parse_client_certificate(cert_pem(LEAF) + key_pem(LEAF, serialization.NoEncryption())).certificate


def ec_bundle() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode() + cert_pem(LEAF)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("not a pem at all", "holds no PEM blocks: store the private key and the certificate, both PEM"),
        (cert_pem(LEAF), "must hold exactly one private key (found 0)"),
        (pem(LEAF) + key_pem(ISSUED, serialization.NoEncryption()), "must hold exactly one private key (found 2)"),
        (key_pem(LEAF, serialization.NoEncryption()), "holds a private key but no certificate"),
        (
            key_pem(LEAF, serialization.BestAvailableEncryption(b"pw")) + cert_pem(LEAF),
            "holds an encrypted private key: store it unencrypted",
        ),
        (key_pem(LEAF, serialization.NoEncryption()) + cert_pem(ISSUED), "holds no certificate for its private key"),
        (
            key_pem(ISSUED, serialization.NoEncryption()) + cert_pem(CA) + cert_pem(ISSUED),
            "must list the private key's own certificate before the chain",
        ),
        (
            key_pem(LEAF, serialization.NoEncryption())
            + "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "holds a certificate block that is not a valid certificate",
        ),
        (
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n" + cert_pem(LEAF),
            "holds a private key block that cannot be read",
        ),
        (ec_bundle(), "holds a non-RSA private key"),
    ],
)
def test_each_mistake_is_named(text: str, says: str) -> None:
    with pytest.raises(CertificateProblem) as problem:
        parse_client_certificate(text)
    assert str(problem.value).startswith(says)
    body = [line for line in text.splitlines() if len(line) > 40]  # base64 lines of key or certificate
    assert not any(line in str(problem.value) for line in body)


def test_a_legacy_encrypted_rsa_key_is_recognised() -> None:
    legacy = LEAF.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(b"pw"),
    ).decode()
    with pytest.raises(CertificateProblem, match="encrypted private key"):
        parse_client_certificate(legacy + cert_pem(LEAF))


def test_a_single_certificate_parses_as_pem_or_one_line_base64_der() -> None:
    der = LEAF.certificate.public_bytes(serialization.Encoding.DER)
    assert parse_certificate(cert_pem(LEAF)) == LEAF.certificate
    assert parse_certificate(base64.b64encode(der).decode()) == LEAF.certificate
    with pytest.raises(CertificateProblem, match="neither a PEM certificate nor the base64"):
        parse_certificate(base64.b64encode(der[:100]).decode())
    with pytest.raises(CertificateProblem, match="contains no PEM certificate block"):
        parse_certificate(key_pem(LEAF, serialization.NoEncryption()))
