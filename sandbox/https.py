"""The HTTPS plumbing the emulators share: a threaded stdlib server, request/response values, faults.

An emulator subclasses :class:`HttpsEmulator` and implements ``handle(request) -> Response``; it never
touches sockets. Each connection is served on its own thread (TLS handshake included, so a slow client
blocks no one), HTTP/1.1 keep-alive works as with the real services, and nothing is logged unless the
``sandbox`` logger is turned up.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import threading
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

from sandbox.tls import LocalCA

log = logging.getLogger("sandbox")

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Request:
    """One parsed request, as an emulator sees it."""

    method: str
    target: str  # path and query as sent
    path: str  # percent-decoded path, no query
    query: dict[str, list[str]]
    headers: Message  # case-insensitive lookups
    body: bytes
    content_length: int
    client_host: str

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return None if value is None else str(value)

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def header_items(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self.headers.items()}


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        merged = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        return cls(status, json.dumps(payload, separators=(",", ":")).encode(), merged)


@dataclass(frozen=True)
class Exchange:
    """What one request looked like and how it was answered (for assertions on retries and the like)."""

    method: str
    target: str
    status: int
    headers: dict[str, str]
    body_bytes: int


#: A fault "status" meaning: read the request, then close the connection without any answer.
DROP = -1
#: A fault "status" meaning: answer normally, only late (with ``delay``).
SLOW = 0


@dataclass(frozen=True)
class Fault:
    status: int
    retry_after: float | None = None
    delay: float = 0.0
    body: bytes | None = None  # answer with exactly this (e.g. an HTML error page) instead of the service's error


class Faults:
    """A thread-safe queue of injected failures, consumed one per request where an emulator asks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Fault] = deque()

    def add(
        self,
        status: int,
        count: int = 1,
        retry_after: float | None = None,
        delay: float = 0.0,
        body: bytes | None = None,
    ) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._queue.extend(Fault(status, retry_after, delay, body) for _ in range(count))

    def take(self) -> Fault | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()


def retry_after_header(fault: Fault) -> dict[str, str]:
    if fault.retry_after is None:
        return {}
    seconds = fault.retry_after
    return {"Retry-After": str(int(seconds)) if float(seconds).is_integer() else str(seconds)}


class HttpsEmulator(ABC):
    """Base of every emulator: owns the server thread, the request history and the fault queue."""

    #: Bodies above this are drained without buffering and answered by :meth:`oversized`.
    max_body_bytes: int = 8 * 1024 * 1024

    def __init__(self, ca: LocalCA) -> None:
        self._ca = ca
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._history_lock = threading.Lock()
        self._history: list[Exchange] = []
        self.faults = Faults()
        self._stopping = threading.Event()  # ends a slow fault's wait: nothing answers after stop()

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> Self:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server(self, self._ca.server_context())
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=type(self).__name__, daemon=True
        )
        thread.start()
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()  # keep-alive clients must not reach a stopped emulator
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``https://127.0.0.1:PORT``, no trailing slash."""
        return f"https://127.0.0.1:{self.port}"

    # -- observation and faults ------------------------------------------------------------------
    @property
    def history(self) -> list[Exchange]:
        with self._history_lock:
            return list(self._history)

    def fail_next(self, status: int, count: int = 1, retry_after: float | None = None) -> None:
        """Answer the next ``count`` requests to the emulated endpoint with ``status``."""
        self.faults.add(status, count, retry_after)

    def drop_next(self, count: int = 1) -> None:
        """Read the next ``count`` requests, then close their connections without an answer (a reset)."""
        self.faults.add(DROP, count)

    def slow_next(self, seconds: float, count: int = 1) -> None:
        """Answer the next ``count`` requests normally, but only after ``seconds``."""
        self.faults.add(SLOW, count, delay=seconds)

    def garble_next(self, status: int, body: bytes, count: int = 1) -> None:
        """Answer the next ``count`` requests with ``status`` and a body that is not the service's format."""
        self.faults.add(status, count, body=body)

    @staticmethod
    def raw_fault(fault: Fault) -> Response | None:
        """The answer for a fault that is the same on every service (a dropped connection, a garbled body)."""
        if fault.status == DROP:
            return Response(DROP)
        if fault.body is not None:
            return Response(fault.status, fault.body, {"Content-Type": "text/html"})
        return None

    def take_fault(self) -> Fault | None:
        """The fault for this request, if any; a slow fault is served here (sleep) and then means none."""
        fault = self.faults.take()
        if fault is not None and fault.delay and self._stopping.wait(fault.delay):
            return Fault(DROP)  # stopped while answering late: the connection just ends
        if fault is not None and fault.status == SLOW:
            return None
        return fault

    # -- request handling ------------------------------------------------------------------------
    @abstractmethod
    def handle(self, request: Request) -> Response:
        """Answer one request; runs on the connection's thread, so shared state needs a lock."""

    def oversized(self, request: Request) -> Response:
        """Answer a request whose body exceeded :attr:`max_body_bytes` (the body was discarded)."""
        return Response(413)

    def _serve(self, request: Request) -> Response:
        try:
            oversized = request.content_length > self.max_body_bytes
            response = self.oversized(request) if oversized else self.handle(request)
        except Exception:
            log.exception("%s failed on %s %s", type(self).__name__, request.method, request.target)
            response = Response.json(500, {"error": "emulator bug, see the sandbox log"})
        with self._history_lock:
            self._history.append(
                Exchange(request.method, request.target, response.status, request.header_items(), len(request.body))
            )
        return response


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, emulator: HttpsEmulator, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        # Handshake later, on the connection's own thread (see finish_request).
        self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        self.emulator = emulator
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def finish_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        try:
            request.settimeout(10)
            request.do_handshake()
        except (OSError, ssl.SSLError) as error:  # e.g. a client that does not trust the CA
            log.debug("TLS handshake with %s failed: %s", client_address, error)
            return
        super().finish_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._open_lock:
            connections, self._open = list(self._open), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real services
    server: _Server
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, type(self.server.emulator).__name__, *args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        if self.headers.get("Transfer-Encoding"):
            # The services need the byte count up front (the SharedKey signature covers it).
            self._write(Response(411), close=True)
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length < 0:
                raise ValueError(length)
        except ValueError:
            self._write(Response(400), close=True)
            return
        emulator = self.server.emulator
        if length > emulator.max_body_bytes:
            self._drain(length)
            body = b""
        else:
            body = self.rfile.read(length)
        split = urlsplit(self.path)
        request = Request(
            method=self.command,
            target=self.path,
            path=unquote(split.path),
            query=parse_qs(split.query, keep_blank_values=True),
            headers=self.headers,
            body=body,
            content_length=length,
            client_host=str(self.client_address[0]),
        )
        self._write(emulator._serve(request))

    def _drain(self, length: int) -> None:
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)

    def _write(self, response: Response, close: bool = False) -> None:
        if response.status == DROP:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)
