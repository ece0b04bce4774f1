"""X.509 certificates and PEM bundles as keyreport receives them; errors name what is wrong, never the content."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from keyreport.errors import CertificateProblem

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.DOTALL)
_CERTIFICATE = "CERTIFICATE"
_PRIVATE_KEYS = ("PRIVATE KEY", "RSA PRIVATE KEY")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parse_certificate(text: str) -> x509.Certificate:
    """One certificate, as PEM or as the base64 of its DER on one line (what `keyreport kms-certificate` prints)."""
    text = text.strip()
    if "-----BEGIN" in text:
        blocks = [m.group(0) for m in _PEM_BLOCK.finditer(text) if m.group(1) == _CERTIFICATE]
        if not blocks:
            raise CertificateProblem("contains no PEM certificate block")
        try:
            return x509.load_pem_x509_certificate(blocks[0].encode())
        except ValueError:
            raise CertificateProblem("holds a PEM certificate block that is not a valid certificate") from None
    try:
        der = base64.b64decode("".join(text.split()), validate=True)
        return x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError):
        raise CertificateProblem("is neither a PEM certificate nor the base64 of a DER certificate") from None


def thumbprint_headers(certificate: x509.Certificate) -> dict[str, str]:
    """JWS header members naming the certificate: x5t (SHA-1, what Entra documents for RS256) and x5t#S256."""
    return {
        "x5t": b64url(certificate.fingerprint(hashes.SHA1())),  # noqa: S303 - a thumbprint, not a security hash
        "x5t#S256": b64url(certificate.fingerprint(hashes.SHA256())),
    }


def same_public_key(certificate: x509.Certificate, public_key: RSAPublicKey) -> bool:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    ours = certificate.public_key().public_bytes(serialization.Encoding.DER, spki)
    return ours == public_key.public_bytes(serialization.Encoding.DER, spki)


@dataclass(frozen=True)
class ClientCertificate:
    """What `certificate` mode reads from Secrets Manager: the key, its certificate, and any chain above it."""

    pem: bytes  # the bundle as stored: azure-identity reads it as is
    certificate: x509.Certificate
    chain_length: int  # certificates in the bundle, the signing one included

    @property
    def has_chain(self) -> bool:
        return self.chain_length > 1


def parse_client_certificate(text: str) -> ClientCertificate:
    """Checks a PEM bundle the way Entra will use it: one unencrypted RSA key, its certificate first."""
    blocks = [(m.group(1), m.group(0)) for m in _PEM_BLOCK.finditer(text)]
    if not blocks:
        raise CertificateProblem("holds no PEM blocks: store the private key and the certificate, both PEM")
    labels = [label for label, _ in blocks]
    if "ENCRYPTED PRIVATE KEY" in labels:
        raise CertificateProblem("holds an encrypted private key: store it unencrypted (Secrets Manager encrypts it)")
    keys = [block for label, block in blocks if label in _PRIVATE_KEYS]
    certificates = [block for label, block in blocks if label == _CERTIFICATE]
    if len(keys) != 1:
        raise CertificateProblem(f"must hold exactly one private key (found {len(keys)})")
    if not certificates:
        raise CertificateProblem("holds a private key but no certificate")
    try:
        key = serialization.load_pem_private_key(keys[0].encode(), password=None)
    except TypeError:  # a legacy "Proc-Type: 4,ENCRYPTED" key
        raise CertificateProblem(
            "holds an encrypted private key: store it unencrypted (Secrets Manager encrypts it)"
        ) from None
    except ValueError:
        raise CertificateProblem("holds a private key block that cannot be read") from None
    if not isinstance(key, RSAPrivateKey):
        raise CertificateProblem("holds a non-RSA private key: Entra client assertions here are RSA-signed")
    try:
        parsed = [x509.load_pem_x509_certificate(block.encode()) for block in certificates]
    except ValueError:
        raise CertificateProblem("holds a certificate block that is not a valid certificate") from None
    leaf = next((c for c in parsed if same_public_key(c, key.public_key())), None)
    if leaf is None:
        raise CertificateProblem("holds no certificate for its private key")
    if leaf is not parsed[0]:
        raise CertificateProblem("must list the private key's own certificate before the chain")
    return ClientCertificate(text.encode(), leaf, len(parsed))
