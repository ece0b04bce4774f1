"""An RSA signing key that lives in AWS KMS: keyreport sends bytes to sign and never holds the private key."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Final

from botocore.exceptions import BotoCoreError, ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from keyreport.errors import KmsKeyUnusable

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

SIGNING_ALGORITHM: Final = "RSASSA_PKCS1_V1_5_SHA_256"  # RS256 in JOSE terms, sha256WithRSAEncryption in X.509
# KMS hashes RAW messages itself up to this size; what keyreport signs (a JWT header and claims, a
# certificate's TBS part) stays well below, so no digest is computed locally.
RAW_MESSAGE_LIMIT = 4096

_EXPLAINED = {
    "NotFoundException": "does not exist in this account and region (check KEYREPORT_KMS_KEY_ID and AWS_REGION)",
    "DisabledException": "is disabled: enable it, or point KEYREPORT_KMS_KEY_ID at the current key",
    "KMSInvalidStateException": "is not usable in its current state (pending deletion or import?)",
    "UnsupportedOperationException": "is a symmetric key: create one with --key-spec RSA_2048 --key-usage SIGN_VERIFY",
    "InvalidKeyUsageException": "is not a signing key: create one with --key-spec RSA_2048 --key-usage SIGN_VERIFY",
}


class KmsSigningKey:
    """`public_key` checks the key once (usage, spec, algorithm); `sign` returns PKCS#1 v1.5 SHA-256 signatures."""

    def __init__(self, kms: KMSClient, key_id: str) -> None:
        self.kms = kms
        self.key_id = key_id
        self._lock = threading.Lock()
        self._public_key: RSAPublicKey | None = None

    @property
    def public_key(self) -> RSAPublicKey:
        with self._lock:
            if self._public_key is None:
                self._public_key = self._fetch_public_key()
            return self._public_key

    def sign(self, message: bytes) -> bytes:
        if len(message) > RAW_MESSAGE_LIMIT:
            raise KmsKeyUnusable(f"{len(message)} bytes exceed the {RAW_MESSAGE_LIMIT}-byte KMS Sign limit")
        try:
            response = self.kms.sign(
                KeyId=self.key_id, Message=message, MessageType="RAW", SigningAlgorithm=SIGNING_ALGORITHM
            )
        except (ClientError, BotoCoreError) as error:
            raise KmsKeyUnusable(self._explain(error, "kms:Sign")) from None
        return response["Signature"]

    def _fetch_public_key(self) -> RSAPublicKey:
        try:
            response = self.kms.get_public_key(KeyId=self.key_id)
        except (ClientError, BotoCoreError) as error:
            raise KmsKeyUnusable(self._explain(error, "kms:GetPublicKey")) from None
        usage = response.get("KeyUsage")
        # CustomerMasterKeySpec is the deprecated name some implementations still return alone.
        spec = str(response.get("KeySpec") or response.get("CustomerMasterKeySpec") or "unknown")
        if usage != "SIGN_VERIFY":
            raise KmsKeyUnusable(
                f"KMS key {self.key_id} has key usage {usage}; keyreport needs an RSA key with usage SIGN_VERIFY"
            )
        if not spec.startswith("RSA_"):
            raise KmsKeyUnusable(
                f"KMS key {self.key_id} has key spec {spec}; keyreport needs RSA_2048, RSA_3072 or RSA_4096 "
                "(Entra verifies RS256 client assertions)"
            )
        if SIGNING_ALGORITHM not in response.get("SigningAlgorithms", []):
            raise KmsKeyUnusable(f"KMS key {self.key_id} does not offer {SIGNING_ALGORITHM}")
        public_key = serialization.load_der_public_key(response["PublicKey"])
        if not isinstance(public_key, RSAPublicKey):
            raise KmsKeyUnusable(f"KMS key {self.key_id} returned a public key that is not RSA")
        return public_key

    def _explain(self, error: ClientError | BotoCoreError, action: str) -> str:
        if isinstance(error, BotoCoreError):
            return f"cannot reach AWS KMS for {action} on {self.key_id}: {type(error).__name__}: {error}"[:300]
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("AccessDeniedException", "AccessDenied"):
            return f"the function's role may not call {action} on KMS key {self.key_id}: allow it in the role's policy"
        if code in _EXPLAINED:
            return f"KMS key {self.key_id} {_EXPLAINED[code]}"
        message = error.response.get("Error", {}).get("Message", "")
        return f"{action} on KMS key {self.key_id} failed: {code}: {message}"[:300]
