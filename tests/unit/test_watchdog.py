"""The watchdog bounds a call's total time over real sockets: a peer that trickles its answer a byte a second
(every read returns within its timeout) is cut at the deadline, for requests and botocore alike, whether the
trickle is in the answer or in the TLS handshake; a connection back in its pool is never cut."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import boto3
import pytest
import requests
from botocore.config import Config

from keyreport import watchdog
from keyreport.deadline import Deadline, bounding
from sandbox.trickle import TrickleProxy


class Answers:
    """A plain HTTP server with keep-alive: every request gets a small 200."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    @staticmethod
    def _serve(connection: socket.socket) -> None:
        body = b"<ok>" + b"x" * 200 + b"</ok>"
        with contextlib.suppress(OSError), connection:
            while connection.recv(65536):
                head = f"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {len(body)}\r\n\r\n"
                connection.sendall(head.encode() + body)


@pytest.fixture(scope="module")
def answers() -> Iterator[Answers]:
    watchdog.install()
    server = Answers()
    yield server
    server.socket.close()


def timed_get(url: str, seconds: float) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        with bounding(Deadline.after(seconds)):
            requests.get(url, timeout=(5, 30))
    except requests.RequestException as error:
        return time.monotonic() - started, error
    return time.monotonic() - started, None


def test_a_trickled_answer_is_cut_at_the_deadline(answers: Answers) -> None:
    with TrickleProxy(answers.port, bytes_per_second=1) as proxy:
        seconds, error = timed_get(proxy.url("http"), 2.0)
    assert error is not None and 1.9 < seconds < 3.0  # per-read timeouts alone: 250 s


def test_a_reset_mid_answer_is_an_error_at_once(answers: Answers) -> None:
    with TrickleProxy(answers.port, bytes_per_second=1e9, reset_after=60) as proxy:
        seconds, error = timed_get(proxy.url("http"), 10.0)
    assert isinstance(error, requests.ConnectionError) and seconds < 2


def test_a_trickled_tls_handshake_is_cut_too() -> None:
    """A TLS server trickling its handshake: the watch starts with the socket, before the handshake."""
    watchdog.install()
    silent_tls = socket.create_server(("127.0.0.1", 0))
    port = silent_tls.getsockname()[1]
    with TrickleProxy(port, bytes_per_second=1) as proxy:
        threading.Thread(target=lambda: silent_tls.accept(), daemon=True).start()
        started = time.monotonic()
        with bounding(Deadline.after(2.0)), pytest.raises(requests.RequestException):
            requests.get(proxy.url("https"), timeout=(5, 30))
        assert time.monotonic() - started < 3.0
    silent_tls.close()


def test_botocore_calls_are_cut_at_the_deadline_and_not_retried_past_it(answers: Answers) -> None:
    with TrickleProxy(answers.port, bytes_per_second=1) as proxy:
        client = boto3.client(
            "sts", endpoint_url=proxy.url("http"), region_name="us-east-1", aws_access_key_id="x",
            aws_secret_access_key="x", config=Config(retries={"total_max_attempts": 1}, read_timeout=30),
        )  # fmt: skip
        started = time.monotonic()
        with bounding(Deadline.after(2.0)), pytest.raises(Exception):  # noqa: B017 (botocore's own types)
            client.get_caller_identity()
        assert time.monotonic() - started < 3.0


def test_a_connection_back_in_its_pool_is_not_cut(answers: Answers) -> None:
    session = requests.Session()
    cut = watchdog.WATCHDOG.cut
    # 2 s, not less: on a loaded machine a shorter deadline can end the first call itself.
    with bounding(Deadline.after(2.0)):
        assert session.get(f"http://127.0.0.1:{answers.port}/", timeout=5).status_code == 200
    time.sleep(2.5)  # past that call's end: the idle pooled connection must still be usable
    assert session.get(f"http://127.0.0.1:{answers.port}/", timeout=5).status_code == 200
    assert watchdog.WATCHDOG.cut == cut


def test_without_a_deadline_a_call_still_has_its_total_limit(answers: Answers, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watchdog, "CALL_SECONDS", 1.5)
    with TrickleProxy(answers.port, bytes_per_second=1) as proxy:
        started = time.monotonic()
        with pytest.raises(requests.RequestException):
            requests.get(proxy.url("http"), timeout=(5, 30))
    assert time.monotonic() - started < 2.5
