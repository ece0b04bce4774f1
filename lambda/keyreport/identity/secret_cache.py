"""Secrets with a bounded age (reused by a warm Lambda, re-read on rotation) and the Secrets Manager reader."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from keyreport.errors import SecretUnavailable, aws_credentials_problem, aws_hint, first_line

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


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


def secrets_manager_string(client: SecretsManagerClient, arn: str, stage: str | None = None) -> Callable[[], str]:
    """A reader of the secret's SecretString (of version stage `stage`, else AWSCURRENT)."""

    def fetch() -> str:
        try:
            if stage is None:
                value = client.get_secret_value(SecretId=arn).get("SecretString")
            else:
                value = client.get_secret_value(SecretId=arn, VersionStage=stage).get("SecretString")
        except Exception as error:
            why = aws_hint(error) or reason(error)
            unavailable = SecretUnavailable(f"cannot read {arn} from AWS Secrets Manager: {why}")
            unavailable.environment = aws_credentials_problem(error) is not None
            raise unavailable from None
        if not value:
            raise SecretUnavailable(f"{arn} has no SecretString (binary secrets are not supported)")
        return value.strip()

    return fetch


def reason(error: Exception) -> str:
    """An SDK error as `Type: first line`, short enough for a log line or a run row."""
    return f"{type(error).__name__}: {first_line(error)}"[:300]
