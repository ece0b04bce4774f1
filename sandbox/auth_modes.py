"""What each ``KEYREPORT_AZURE_AUTH`` mode needs on both sides of the sandbox, set up the way a person would.

- ``secret``: the client secret in Secrets Manager (seeded by the stack).
- ``certificate``: a self-signed certificate registered on the app; key + certificate PEM in Secrets Manager.
- ``kms``: an RSA_2048 SIGN_VERIFY key in KMS and its certificate made by ``keyreport kms-certificate``'s
  code (signed inside KMS), registered on the app; no private key exists outside moto's KMS.
- ``federated``: the Lambda's execution role, its session credentials (what Lambda hands the function),
  the account's web identity issuer in STS, and the app trusting that issuer with the role ARN as subject.
- ``default``: DefaultAzureCredential's environment variables (a developer's workstation).

moto's state is process-wide and reset before each test, so AWS resources are (re)created on every
``env(mode)`` call; Entra keeps its registrations and is only told about what changed.
"""

from __future__ import annotations

import base64
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from keyreport.identity.kms_certificate import build_certificate, parse_subject
from keyreport.identity.kms_key import KmsSigningKey
from sandbox.aws import AwsSandbox
from sandbox.entra import EntraEmulator
from sandbox.estate import seed_client_secret
from sandbox.sts_federation import WebIdentityIssuer, issuer_for

AUTH_MODES = ("secret", "certificate", "kms", "federated", "default")
CERTIFICATE_SECRET_NAME = "keyreport/azure-certificate"
LAMBDA_ROLE_NAME = "keyreport-lambda"
KMS_ALIAS = "alias/keyreport-entra"

_LAMBDA_TRUST_POLICY = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},'
    '"Action":"sts:AssumeRole"}]}'
)


@dataclass(frozen=True)
class ClientCertificate:
    """A key and its certificate, as a person makes them with openssl; ``pem`` is what goes into Secrets Manager."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def pem(self) -> str:
        key = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        certificates = [self.certificate, *self.chain]
        return (key + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)).decode()


def make_certificate(
    common_name: str,
    *,
    issuer: ClientCertificate | None = None,
    days: int = 365,
    ca: bool = False,
) -> ClientCertificate:
    """Self-signed, or signed by ``issuer`` (whose chain is carried along)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    certificate = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    chain = (issuer.certificate, *issuer.chain) if issuer else ()
    return ClientCertificate(key, certificate, chain)


class AuthModes:
    """Registers each mode's credential with Entra and AWS; ``env(mode)`` returns the variables for it."""

    def __init__(
        self, aws: AwsSandbox, entra: EntraEmulator, tenant_id: str, client_id: str, client_secret: str
    ) -> None:
        self.aws, self.entra, self.tenant_id, self.client_id = aws, entra, tenant_id, client_id
        self.client_secret = client_secret
        self.client_certificate = make_certificate("keyreport-sandbox")
        entra.add_certificate(tenant_id, client_id, self.client_certificate.certificate)
        self.issuer: WebIdentityIssuer = issuer_for(aws.account_id)
        self.role_arn = f"arn:aws:iam::{aws.account_id}:role/{LAMBDA_ROLE_NAME}"
        entra.add_federated_credential(
            tenant_id, client_id, issuer=self.issuer.url, subject=self.role_arn, key=self.issuer.public_key
        )
        self.kms_key_id = ""
        self.kms_certificate: x509.Certificate | None = None

    def env(self, mode: str) -> dict[str, str]:
        if mode not in AUTH_MODES:
            raise ValueError(f"auth mode {mode!r} is not one of {AUTH_MODES}")
        common = {"KEYREPORT_AZURE_AUTH": mode, "AZURE_TENANT_ID": self.tenant_id, "AZURE_CLIENT_ID": self.client_id}
        if mode == "certificate":
            return {**common, "KEYREPORT_AZURE_CERTIFICATE_ARN": self.store_certificate(self.client_certificate)}
        if mode == "kms":
            return {**common, **self._kms()}
        if mode == "federated":
            return {**common, **self._federated()}
        if mode == "default":
            # EnvironmentCredential, DefaultAzureCredential's first link, reads these on a workstation.
            return {**common, "AZURE_CLIENT_SECRET": self.client_secret}
        return common

    def store_certificate(self, certificate: ClientCertificate) -> str:
        """Put a key + certificate PEM into Secrets Manager (a new version if it exists); returns the ARN."""
        return seed_client_secret(self.aws, CERTIFICATE_SECRET_NAME, certificate.pem)

    def _kms(self) -> dict[str, str]:
        kms = self.aws.client("kms")
        self.kms_key_id = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="RSA_2048")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=KMS_ALIAS, TargetKeyId=self.kms_key_id)
        certificate = build_certificate(KmsSigningKey(kms, KMS_ALIAS), parse_subject("CN=keyreport"), days=365)
        if self.kms_certificate is not None:
            self.entra.remove_certificate(self.tenant_id, self.client_id, self.kms_certificate)
        self.entra.add_certificate(self.tenant_id, self.client_id, certificate)
        self.kms_certificate = certificate
        der = certificate.public_bytes(serialization.Encoding.DER)
        return {"KEYREPORT_KMS_KEY_ID": KMS_ALIAS, "KEYREPORT_KMS_CERTIFICATE": base64.b64encode(der).decode()}

    def _federated(self) -> dict[str, str]:
        """The execution role and the session credentials Lambda would put into the function's environment."""
        iam = self.aws.client("iam")
        with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
            iam.create_role(RoleName=LAMBDA_ROLE_NAME, AssumeRolePolicyDocument=_LAMBDA_TRUST_POLICY)
        session = self.aws.client("sts").assume_role(RoleArn=self.role_arn, RoleSessionName="keyreport")
        credentials = session["Credentials"]
        return {
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"],
        }
