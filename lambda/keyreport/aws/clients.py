"""The function's own AWS clients (not the inventoried accounts'): one botocore config, made on first use, reused."""

from __future__ import annotations

import platform
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import botocore
from botocore.config import Config
from urllib3.util.timeout import Timeout

from keyreport import __version__, deadline

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
        # Upper bounds: every call's are cut further to the run's deadline (bound_by_deadline).
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        user_agent=f"keyreport/{__version__} Python/{platform.python_version()} Botocore/{botocore.__version__}",
        user_agent_extra=f"cfg/retry-mode#{retry_mode}",
    )


CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
#: botocore's standard and legacy modes wait at most 2**attempts s (capped at 20 s) before the next attempt.
MAX_BACKOFF_SECONDS = 20.0


class DeadlineTimeout(Timeout):
    """urllib3 clones a pool's Timeout for every request: the clone is cut to the run's deadline then."""

    def clone(self) -> Timeout:
        left = max(deadline.MIN_CALL_SECONDS, deadline.current().remaining())
        return Timeout(connect=min(CONNECT_TIMEOUT, left), read=min(READ_TIMEOUT, left))

    @property
    def connect_timeout(self) -> float:
        """What botocore pairs with a per-request read timeout (its `read_timeout` request context)."""
        return min(CONNECT_TIMEOUT, max(deadline.MIN_CALL_SECONDS, deadline.current().remaining()))


def _refuse_after_deadline(request: Any, **_: Any) -> None:
    deadline.current().timeouts(CONNECT_TIMEOUT, READ_TIMEOUT, f"AWS request to {urlparse(request.url).hostname}")


def _no_retry_past_deadline(attempts: int, **_: Any) -> bool | None:
    """False (botocore: do not retry) when the longest wait before the next attempt would pass the deadline."""
    wait = min(MAX_BACKOFF_SECONDS, 2.0**attempts)
    return False if not deadline.current().allows(wait + deadline.MIN_CALL_SECONDS) else None


def _no_expect_continue(params: dict[str, Any], **_: Any) -> None:
    """botocore waits up to 1 s for a "100 Continue" before sending an S3 body, outside any timeout."""
    params.get("headers", {}).pop("Expect", None)


def bound_by_deadline(client: Any) -> Any:
    """Every call of `client` respects the run's deadline: none starts without time left, connect and read
    timeouts are cut to what remains, and no retry waits past it. Returns the client."""
    client.meta.events.register_first("before-send", _refuse_after_deadline)
    # botocore calls the handlers of the most specific event name first: its retry handler's name, here.
    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register_first(f"needs-retry.{service}", _no_retry_past_deadline)
    client.meta.events.register(f"before-call.{service}", _no_expect_continue)  # after botocore adds it
    # botocore keeps one urllib3 Timeout per client (its http session's); there is no public per-call hook.
    http = getattr(getattr(client, "_endpoint", None), "http_session", None)
    if http is not None and hasattr(http, "_timeout") and hasattr(http, "_manager"):
        http._timeout = DeadlineTimeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT)
        http._manager.connection_pool_kw["timeout"] = http._timeout  # pools are made on first use
    return client


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

    def in_region(self, service: str, region: str) -> Any:
        """A client of `service` in another region (IAM's events, and so its trail and rules, are us-east-1's)."""
        key = f"{service}@{region}"
        with self._lock:
            if key not in self._clients:
                made = self.session.client(service, region_name=region, config=self.config)  # type: ignore[call-overload]
                self._clients[key] = bound_by_deadline(made)
            return self._clients[key]

    def _client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                client = self.session.client(service, config=self.config)  # type: ignore[call-overload]
                if service == "sts":
                    client = self._regional_sts(client)
                self._clients[service] = bound_by_deadline(client)
            return self._clients[service]

    def _regional_sts(self, client: Any) -> Any:
        if urlparse(client.meta.endpoint_url).hostname != GLOBAL_STS_HOST:
            return client  # already regional, or a VPC / custom endpoint the operator chose
        region = client.meta.region_name
        return self.session.client("sts", config=self.config, endpoint_url=f"https://sts.{region}.amazonaws.com")
