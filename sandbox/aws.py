"""The AWS side of the sandbox: moto's server, in this process, on a free loopback port.

In-process matters: moto keeps its state in module-level backends that the server threads share with
this process, so ``sandbox.estate`` can seed ages and last uses by adjusting moto's objects directly
(moto stamps everything with "now" and offers no API for that). The flip side: every ``AwsSandbox``
and every ``mock_aws`` in one process see the *same* state, ``reset()`` clears it for all of them, and
``mock_aws`` resets it when it starts and stops.
"""

from __future__ import annotations

import logging
import os
import threading
import urllib.request
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, overload

import boto3
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.server import ThreadedMotoServer

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_organizations import OrganizationsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sts import STSClient

# Dummy credentials: moto accepts any signature, and maps an access key it did not issue to its
# default account (123456789012) unless MOTO_ACCOUNT_ID says otherwise.
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"

# Variables that would make a boto3 client in a merged environment go somewhere else or fail:
# a named profile that does not exist, a real session token, per-service endpoints that win over
# AWS_ENDPOINT_URL, or the switch that ignores AWS_ENDPOINT_URL altogether.
_CONFLICTING_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)


class AwsSandbox:
    """moto's ``ThreadedMotoServer`` on 127.0.0.1, plus what a boto3 client needs to reach it.

    >>> with AwsSandbox() as aws:
    ...     aws.client("iam").list_users()["Users"]
    []
    """

    def __init__(self, *, port: int = 0, region: str = "us-east-1") -> None:
        # port=0: the OS picks a free port, so parallel test sessions never collide.
        self._requested_port = port
        self.region = region
        # The account moto serves requests signed with ACCESS_KEY_ID from (its own rule, mirrored).
        self.account_id = os.environ.get("MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT_ID)
        self._server: ThreadedMotoServer | None = None
        self._port: int | None = None
        self._session: boto3.session.Session | None = None
        self._lock = threading.RLock()

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            return self
        # Werkzeug logs one line per request at INFO on stderr; a demo makes thousands of calls.
        # Only quieten it when nobody configured that logger.
        werkzeug_log = logging.getLogger("werkzeug")
        if werkzeug_log.level == logging.NOTSET:
            werkzeug_log.setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self._requested_port, verbose=False)
        server.start()
        self._port = server.get_host_and_port()[1]
        self._server = server
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.stop()
        # ThreadedMotoServer.stop() ends serve_forever() but leaves the listening socket open.
        wsgi_server = getattr(server, "_server", None)
        if wsgi_server is not None:
            wsgi_server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    def reset(self) -> None:
        """Forget every resource in every moto backend of this process (moto's own reset API)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    # -- how to reach it ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("AwsSandbox is not started")
        return self._port

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment a boto3 client (or the Lambda handler) needs to use this sandbox.

        Without ``base``: only the variables to set. With ``base`` (e.g. ``os.environ``): a copy of it
        with those set and the variables that would override them removed, ready for ``subprocess``.
        """
        ours = {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            # No instance-metadata probing (seconds of timeouts) if something falls through.
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        if base is None:
            return ours
        merged = {
            name: value
            for name, value in base.items()
            if name not in _CONFLICTING_ENV and not name.startswith("AWS_ENDPOINT_URL_")
        }
        merged.update(ours)
        return merged

    def session(self) -> boto3.session.Session:
        """A boto3 session with the dummy credentials, independent of the caller's environment."""
        return boto3.session.Session(
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            region_name=self.region,
        )

    def _shared_session(self) -> boto3.session.Session:
        # One session for client(): a new session re-reads the service models (~50 ms a client).
        with self._lock:
            if self._session is None:
                self._session = self.session()
            return self._session

    @overload
    def client(self, service: Literal["iam"]) -> IAMClient: ...
    @overload
    def client(self, service: Literal["sts"]) -> STSClient: ...
    @overload
    def client(self, service: Literal["secretsmanager"]) -> SecretsManagerClient: ...
    @overload
    def client(self, service: Literal["kms"]) -> KMSClient: ...
    @overload
    def client(self, service: Literal["s3"]) -> S3Client: ...
    @overload
    def client(self, service: Literal["sqs"]) -> SQSClient: ...
    @overload
    def client(self, service: Literal["organizations"]) -> OrganizationsClient: ...
    @overload
    def client(self, service: str) -> BaseClient: ...
    def client(self, service: str) -> Any:
        """A new client (clients are cheap and thread-safe; sessions are neither, hence the lock)."""
        session = self._shared_session()
        with self._lock:
            return session.client(service, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]

    def __repr__(self) -> str:
        where = self.endpoint_url if self._port is not None else "not started"
        return f"AwsSandbox({where}, account {self.account_id})"


def assumed_iam(sts: Any, role_arn: str, external_id: str | None = None) -> IAMClient:
    """An IAM client signed in as `role_arn` (moto's STS): a member account's IAM, for seeding it."""
    arguments = {"RoleArn": role_arn, "RoleSessionName": "seeding"} | (
        {"ExternalId": external_id} if external_id else {}
    )
    credentials = sts.assume_role(**arguments)["Credentials"]
    client: IAMClient = boto3.client(
        "iam",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    return client
