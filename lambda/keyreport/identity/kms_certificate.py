"""A self-signed X.509 certificate for an AWS KMS RSA key, signed by KMS: what `kms` mode registers in Entra.

cryptography's builder signs only with keys it holds, so the certificate is assembled in two steps: the
builder produces the to-be-signed part (subject = issuer, the KMS public key, validity, extensions, and
the sha256WithRSAEncryption algorithm identifier), then KMS signs exactly those bytes. The builder's own
signature, made with a throwaway in-memory key, is discarded; only the KMS signature is kept.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from keyreport.errors import KmsKeyUnusable
from keyreport.identity.certificates import same_public_key
from keyreport.identity.kms_key import KmsSigningKey

MAX_DAYS = 3650
BACKDATE = timedelta(minutes=5)  # tolerate clock skew between here and Entra


def parse_subject(subject: str) -> x509.Name:
    """An RFC 4514 distinguished name such as ``CN=keyreport,O=Example``; ValueError if it is not one."""
    try:
        name = x509.Name.from_rfc4514_string(subject)
    except ValueError as error:
        raise ValueError(f"--subject {subject!r} is not a distinguished name like CN=keyreport ({error})") from None
    if not list(name):
        raise ValueError("--subject must not be empty (for example CN=keyreport)")
    return name


def build_certificate(
    key: KmsSigningKey,
    subject: x509.Name,
    days: int,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> x509.Certificate:
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"--days must be between 1 and {MAX_DAYS}")
    public_key = key.public_key
    now = clock()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(uuid.uuid4().int >> 1)  # positive, at most 127 bits: within RFC 5280's 20 octets
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    # Only the to-be-signed bytes and the algorithm identifier of this draft are used (see the module doc).
    draft = builder.sign(rsa.generate_private_key(public_exponent=65537, key_size=2048), hashes.SHA256())
    tbs = draft.tbs_certificate_bytes
    draft_der = draft.public_bytes(Encoding.DER)
    algorithm = _element_after(draft_der, tbs)
    signature = key.sign(tbs)
    certificate = x509.load_der_x509_certificate(_der(0x30, tbs + algorithm + _der(0x03, b"\x00" + signature)))
    # Proof before anyone uploads it: the signature verifies with the key inside, which is the KMS key.
    try:
        certificate.verify_directly_issued_by(certificate)
    except Exception:
        raise KmsKeyUnusable(f"KMS key {key.key_id} returned a signature that does not verify") from None
    if not same_public_key(certificate, public_key):
        raise KmsKeyUnusable("the certificate does not hold the KMS public key")  # cannot happen; never ship it
    return certificate


# -- minimal DER: only what assembling Certificate ::= SEQUENCE { tbs, algorithm, BIT STRING } needs ----------


def _der(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + content


def _element_after(certificate_der: bytes, tbs: bytes) -> bytes:
    """The TLV that follows the TBS inside the certificate's outer SEQUENCE: the signature AlgorithmIdentifier."""
    start = _header_length(certificate_der, 0) + len(tbs)
    header = _header_length(certificate_der, start)
    return certificate_der[start : start + header + _content_length(certificate_der, start)]


def _header_length(der: bytes, offset: int) -> int:
    first = der[offset + 1]
    return 2 if first < 0x80 else 2 + (first & 0x7F)


def _content_length(der: bytes, offset: int) -> int:
    first = der[offset + 1]
    if first < 0x80:
        return first
    count = first & 0x7F
    return int.from_bytes(der[offset + 2 : offset + 2 + count], "big")
