"""The function's own AWS clients (not the inventoried accounts'): one botocore config, made on first use, reused."""

from __future__ import annotations

import platform
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import botocore
from botocore.config import Config

from keyreport import __version__

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sts import STSClient


def aws_config(*, retry_mode: str, max_attempts: int, concurrency: int) -> Config:
    """Retry behaviour chosen explicitly, and enough pooled connections for the worker threads.

    A fixed User-Agent: botocore otherwise rebuilds it from a dozen components twice per call, about a
    fifth of its CPU per IAM call (bench/RESULTS.md); AWS still sees the SDK, its version and the retry mode.
    """
    return Config(
        retries={"mode": retry_mode, "total_max_attempts": max_attempts},  # type: ignore[arg-type]
        max_pool_connections=concurrency + 4,
        user_agent=f"keyreport/{__version__} Python/{platform.python_version()} Botocore/{botocore.__version__}",
        user_agent_extra=f"cfg/retry-mode#{retry_mode}",
    )


# The one host botocore still resolves STS to when AWS_STS_REGIONAL_ENDPOINTS=legacy is set.
GLOBAL_STS_HOST = "sts.amazonaws.com"


class AwsClients:
    """Secrets Manager, KMS and STS clients from one session, each built once (boto3 clients are thread-safe)."""

    def __init__(self, session: boto3.Session, config: Config | None = None) -> None:
        self.session = session
        self.config = config
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}

    def secretsmanager(self) -> SecretsManagerClient:
        client: SecretsManagerClient = self._client("secretsmanager")
        return client

    def kms(self) -> KMSClient:
        client: KMSClient = self._client("kms")
        return client

    def sts(self) -> STSClient:
        """STS at the region's own endpoint: GetWebIdentityToken is not served by the global one."""
        client: STSClient = self._client("sts")
        return client

    def client(self, service: str) -> Any:
        """Any other service's client (S3, SQS, Organizations), with the same configuration."""
        return self._client(service)

    def _client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                client = self.session.client(service, config=self.config)  # type: ignore[call-overload]
                if service == "sts":
                    client = self._regional_sts(client)
                self._clients[service] = client
            return self._clients[service]

    def _regional_sts(self, client: Any) -> Any:
        if urlparse(client.meta.endpoint_url).hostname != GLOBAL_STS_HOST:
            return client  # already regional, or a VPC / custom endpoint the operator chose
        region = client.meta.region_name
        return self.session.client("sts", config=self.config, endpoint_url=f"https://sts.{region}.amazonaws.com")
