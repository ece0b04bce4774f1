"""Secrets with a bounded age: reused by a warm Lambda, re-read on rotation without a redeploy."""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from keyreport.errors import first_line
from keyreport.log import logger

if TYPE_CHECKING:
    from azure.keyvault.secrets import SecretClient
    from mypy_boto3_secretsmanager import SecretsManagerClient


class SecretUnavailable(Exception):
    """A secret could not be fetched or is not usable; the message never contains the secret."""


class CachedSecret:
    """A value fetched at most once per `max_age` seconds, or again on demand after a rejection."""

    def __init__(self, fetch: Callable[[], str], max_age: float, clock: Callable[[], float] = time.monotonic):
        self._fetch = fetch
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._value: str | None = None
        self._fetched_at = 0.0

    def get(self, *, refresh: bool = False) -> str:
        with self._lock:
            stale = self._clock() - self._fetched_at >= self._max_age
            if self._value is None or refresh or stale:
                self._value = self._fetch()
                self._fetched_at = self._clock()
            return self._value


def secrets_manager_string(client: SecretsManagerClient, arn: str) -> Callable[[], str]:
    def fetch() -> str:
        try:
            value = client.get_secret_value(SecretId=arn).get("SecretString")
        except Exception as error:
            raise SecretUnavailable(f"cannot read {arn} from AWS Secrets Manager: {_reason(error)}") from None
        if not value:
            raise SecretUnavailable(f"{arn} has no SecretString (binary secrets are not supported)")
        return value.strip()

    return fetch


def key_vault_string(client: SecretClient, name: str) -> Callable[[], str]:
    def fetch() -> str:
        try:
            value = client.get_secret(name).value
        except Exception as error:
            raise SecretUnavailable(
                f"cannot read secret {name!r} from Key Vault {client.vault_url}: {_reason(error)}"
            ) from None
        if not value:
            raise SecretUnavailable(f"Key Vault secret {name!r} is empty")
        logger.info("workspace key read from Key Vault", extra={"secret": name})
        return value.strip()

    return fetch


class WorkspaceKey:
    """The Log Analytics shared key as HMAC key bytes (the secret holds it base64-encoded)."""

    def __init__(self, secret: CachedSecret) -> None:
        self._secret = secret

    def get(self, *, refresh: bool = False) -> bytes:
        try:
            key = base64.b64decode(self._secret.get(refresh=refresh), validate=True)
        except binascii.Error:
            raise SecretUnavailable(
                "the workspace key in Key Vault is not base64: store the workspace's primary or "
                "secondary key exactly as the portal shows it"
            ) from None
        if len(key) < 32:
            raise SecretUnavailable("the workspace key in Key Vault is too short to be a Log Analytics key")
        return key


def _reason(error: Exception) -> str:
    return f"{type(error).__name__}: {first_line(error)}"[:300]
