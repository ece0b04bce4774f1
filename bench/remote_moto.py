"""moto in a process of its own, as AWS is another machine: its CPU is not the product's.

The product's requests still go through botocore in full (parameters, signing, the retry handler,
parsing); only the last hop differs: instead of HTTP, botocore's `before-send` event hands the signed
request over a local socket to a child process, where moto (in process there, `mock_aws`) answers it.
One connection per calling thread, one thread per connection in the child, so requests overlap as they
would over HTTP. bench.iam_conditions still adds latency, throttling and a slow report in front.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import threading
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from moto import mock_aws
from moto.core.models import botocore_stubber

from bench.iam_conditions import iam_paging
from sandbox.estate import seed_estate

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


def _serve(address: str, users: int, seed: int, ready: Connection) -> None:
    """The child: seed the estate in its own moto, then answer requests until the parent goes away."""
    os.environ.update(AWS_ENV)
    with mock_aws(), iam_paging():
        iam = boto3.client("iam")
        estate = seed_estate(iam, users=users, seed=seed, root_keys=0)
        iam.generate_credential_report()  # COMPLETE from now on: IamConditions decides how long it takes
        listener = Listener(address)
        ready.send((estate.user_count, estate.key_count))
        while True:
            connection = listener.accept()
            threading.Thread(target=_answer, args=(connection,), daemon=True).start()


def _answer(connection: Connection) -> None:
    while True:
        try:
            method, url, headers, body = connection.recv()
        except EOFError:
            return
        request = AWSPreparedRequest(method, url, _headers(headers), body, stream_output=False)
        answer = botocore_stubber.process_request(request)
        if answer is None:
            connection.send((500, {}, b"moto does not serve " + url.encode()))
            continue
        status, response_headers, response_body = answer
        data = response_body.encode() if isinstance(response_body, str) else bytes(response_body or b"")
        connection.send((status, dict(response_headers), data))


def _headers(items: dict[str, str]) -> HTTPHeaders:
    headers = HTTPHeaders()
    for name, value in items.items():
        headers[name] = value
    return headers


class RemoteMoto:
    """The child process with a seeded estate; `install(session)` routes that session's requests to it."""

    def __init__(self, users: int, seed: int = 7) -> None:
        self._directory = tempfile.TemporaryDirectory()
        self.address = str(Path(self._directory.name) / "moto.sock")
        context = multiprocessing.get_context("spawn")
        ready, child_end = context.Pipe()
        self.process = context.Process(target=_serve, args=(self.address, users, seed, child_end), daemon=True)
        self.process.start()
        self.user_count, self.key_count = ready.recv()
        self._local = threading.local()

    def install(self, session: boto3.Session) -> boto3.Session:
        # Last, so that bench.iam_conditions' latency and throttling act first (botocore calls every
        # before-send handler and takes the first answer).
        session.events.register_last("before-send", self._forward)  # type: ignore[arg-type]
        return session

    def close(self) -> None:
        self.process.kill()
        self.process.join()
        self._directory.cleanup()

    def __enter__(self) -> RemoteMoto:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _connection(self) -> Connection:
        if not hasattr(self._local, "connection"):
            self._local.connection = Client(self.address)
        connection: Connection = self._local.connection
        return connection

    def _forward(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
        connection = self._connection()
        connection.send((request.method, request.url, dict(request.headers.items()), body))
        status, headers, data = connection.recv()
        return AWSResponse(request.url, status, _headers(headers), _Body(data))
