"""The one place that builds what a run talks to from Settings: AWS clients, Azure credential, sink, spill bucket.

The Lambda handler and every CLI command get their clients here. A Wiring is built once per configuration
and reused by a warm Lambda, so cached secrets and tokens carry over between invocations. Azure SDKs are
imported only when a sink or credential that needs them is built.
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any

import requests

from keyreport import watchdog
from keyreport.aws.clients import AwsClients, aws_config
from keyreport.deployment_key import DeploymentKey
from keyreport.errors import SecretUnavailable
from keyreport.identity.secret_cache import secrets_manager_string
from keyreport.log import logger
from keyreport.settings import AzureSettings, QuerySettings, Settings, builder
from keyreport.spill.bucket import SpillBucket
from keyreport.tls import trust_bundle

if TYPE_CHECKING:
    import boto3
    from azure.core.credentials import TokenCredential

    from keyreport.sinks import Sink


def credential_for(azure: AzureSettings, aws: AwsClients) -> TokenCredential:
    """The credential of the configured sign-in mode (its settings type names the function that makes it)."""
    made: TokenCredential = builder(azure.auth)(azure.auth, azure, aws)
    return made


def http_session(azure: AzureSettings) -> requests.Session:
    """A requests session that trusts the public roots plus KEYREPORT_CA_BUNDLE."""
    session = requests.Session()
    session.verify = trust_bundle(azure.ca_bundle)
    session.headers["User-Agent"] = "keyreport"
    return session


RANDOM_KEY_WARNING = (
    "KEYREPORT_FINGERPRINT_SECRET_ARN is not set: this dry run's fingerprints use a random key and match no other run's"
)


class Wiring:
    """Everything one configuration talks to, each part built on first use."""

    def __init__(self, settings: Settings, session: boto3.Session, credential: TokenCredential | None = None) -> None:
        """`credential` replaces the one KEYREPORT_AZURE_AUTH describes (a person signing in at the CLI)."""
        watchdog.install()  # every network call of what this builds gets a total time, not only per read
        self.settings = settings
        self.session = session
        self.config = aws_config(
            retry_mode=settings.aws_retry_mode,
            max_attempts=settings.aws_max_attempts,
            concurrency=settings.iam_concurrency,
        )
        self.aws = AwsClients(session, self.config)
        self._credential = credential
        self._lock = threading.Lock()

    def credential(self) -> TokenCredential:
        with self._lock:
            if self._credential is None:
                self._credential = credential_for(self.settings.azure, self.aws)
            return self._credential

    def http(self) -> requests.Session:
        return http_session(self.settings.azure)

    @functools.cached_property
    def sink(self) -> Sink:
        sink: Sink = builder(self.settings.sink)(self.settings.sink, self.settings, self)
        return sink

    @functools.cached_property
    def deployment_key(self) -> DeploymentKey:
        """The fingerprint and spill keys, read from Secrets Manager once per Wiring (per cold start)."""
        arn = self.settings.fingerprint_secret_arn
        if arn is None:  # Settings allow this for the stdout dry run only
            logger.warning(RANDOM_KEY_WARNING)
            return DeploymentKey.throwaway()
        return DeploymentKey.from_secret(secrets_manager_string(self.aws.secretsmanager(), arn)(), arn)

    @functools.cached_property
    def spill(self) -> SpillBucket | None:
        if self.settings.spill_bucket is None:
            return None
        # The key is read when the first object is written or read: under that call's deadline.
        return SpillBucket(
            self.aws.client("s3"),
            self.settings.spill_bucket,
            lambda: self.deployment_key.spill,
            previous_mac_key=self._previous_spill_key,
        )

    def _previous_spill_key(self) -> bytes | None:
        """The spill key of the fingerprint secret's AWSPREVIOUS version: what verifies objects spilled before
        a rotation. None when there is no previous version (or it cannot be read: those objects wait)."""
        arn = self.settings.fingerprint_secret_arn
        if arn is None:
            return None
        try:
            secret = secrets_manager_string(self.aws.secretsmanager(), arn, stage="AWSPREVIOUS")()
            return DeploymentKey.from_secret(secret, f"{arn} (AWSPREVIOUS)").spill
        except SecretUnavailable as error:
            logger.info("no previous fingerprint key to verify older spill objects", extra={"reason": str(error)})
            return None

    def fingerprint_key(self) -> bytes:
        """The deployment's fingerprint key (read on first use: a run calls this under its deadline)."""
        return self.deployment_key.fingerprint

    def clients_for(self, session: boto3.Session) -> AwsClients:
        """Clients of another session (a member account's, through the member role) with this configuration."""
        return AwsClients(session, self.config)

    def client(self, service: str) -> Any:
        """A client of this function's own session (Organizations, SQS, STS for member roles)."""
        return self.aws.client(service)


_WARM: dict[Settings, Wiring] = {}


def warm_wiring(settings: Settings, session: boto3.Session) -> Wiring:
    """One Wiring per configuration for the life of a Lambda container."""
    if settings not in _WARM:
        _WARM[settings] = Wiring(settings, session)
    return _WARM[settings]


def query_credential(settings: QuerySettings, session: boto3.Session) -> TokenCredential:
    """`keyreport query` signs in as the configured mode; only secret, certificate, kms and federated reach AWS."""
    return credential_for(settings.azure, AwsClients(session))
