"""A total time per network call, whatever the peer does: the socket of a call is shut down at the call's end.

Connect and read timeouts apply per socket operation: a peer that trickles one byte a second never trips
one, so one call could outlive any deadline. Every hop keyreport talks to goes through urllib3 (botocore
directly; requests for the Data Collector; azure-core's requests transport for Entra, Key Vault and Logs
Ingestion), so `install` makes urllib3 report each socket it opens (before the TLS handshake) and each
request it starts on a pooled one. The watchdog thread shuts that socket down when the call's end comes:
the deadline current for the calling thread (keyreport.deadline), or CALL_SECONDS after the call started
when there is none. The blocked read then ends like a dropped connection; an answer whose headers were cut
short (which http.client can take for a complete, empty one) is turned into a read timeout, so every SDK
sees an error it already handles (and whose retry the deadline hooks refuse once the deadline has passed).

Sockets are known by descriptor and inode: the watchdog acts on a duplicate of the descriptor and only when
it is still the same socket, so a descriptor closed and reused meanwhile is never touched. A connection put
back in its pool is forgotten: an idle one is never cut.
"""

from __future__ import annotations

import functools
import http.client
import math
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from keyreport import deadline
from keyreport.log import logger

#: The longest one call (connection, request and answer) may take when no deadline says less.
CALL_SECONDS = 120.0
CUT = "the call took longer than its total time and was cut off"


@dataclass(frozen=True)
class _Watch:
    descriptor: int
    inode: int
    started: float
    end: float


class Watchdog:
    """One thread that shuts watched sockets down at their end; a socket watched again gets its new end."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._watched: dict[int, _Watch] = {}  # by inode: a socket's latest call replaces its earlier one
        self._cut: set[int] = set()  # inodes shut down whose call has not yet been told
        self._thread: threading.Thread | None = None
        self.cut = 0  # sockets shut down so far (for tests and the log)

    def watch(self, sock: socket.socket, seconds: float) -> None:
        """Shut `sock` down `seconds` from now unless it is watched again before."""
        try:
            descriptor = sock.fileno()
            inode = os.fstat(descriptor).st_ino
        except (OSError, ValueError):
            return  # already closed: nothing to watch
        now = time.monotonic()
        with self._changed:
            self._cut.discard(inode)
            self._watched[inode] = _Watch(descriptor, inode, now, now + seconds)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="keyreport-watchdog", daemon=True)
                self._thread.start()
            self._changed.notify()

    def forget(self, sock: socket.socket) -> None:
        """`sock`'s call is over (it went back to its pool): an idle connection is left alone."""
        try:
            inode = os.fstat(sock.fileno()).st_ino
        except (OSError, ValueError):
            return
        with self._changed:
            self._watched.pop(inode, None)
            self._cut.discard(inode)

    def was_cut(self, inode: int | None) -> bool:
        """Whether the watchdog shut the socket `inode` (see `inode_of`) down during its current call (told once)."""
        with self._changed:
            cut = inode in self._cut
            self._cut.discard(inode)
        return cut

    def _run(self) -> None:
        while True:
            with self._changed:
                now = time.monotonic()
                due = [watch for watch in self._watched.values() if watch.end <= now]
                for watch in due:
                    del self._watched[watch.inode]
                if not due:
                    ends = [watch.end for watch in self._watched.values()]
                    self._changed.wait(timeout=min(ends) - now if ends else None)
                    continue
            for watch in due:
                self._shut_down(watch)

    def _shut_down(self, watch: _Watch) -> None:
        try:
            duplicate = os.dup(watch.descriptor)
        except OSError:
            return  # closed since: its call is over
        try:
            if os.fstat(duplicate).st_ino != watch.inode:
                return  # the descriptor now belongs to another socket
            sock = socket.socket(fileno=duplicate)
        except OSError:
            os.close(duplicate)
            return
        duplicate = -1  # the socket object owns it now
        with sock:
            try:
                peer = "%s:%s" % sock.getpeername()[:2]  # noqa: UP031 (IPv4 and IPv6 tuples alike)
            except OSError:
                peer = "a closed peer"
            with self._changed:
                self._cut.add(watch.inode)  # before the reader wakes up and asks
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a read or write blocked on it, in any thread
            except OSError:
                with self._changed:
                    self._cut.discard(watch.inode)
                return  # not connected any more
        self.cut += 1
        seconds = round(time.monotonic() - watch.started, 2)
        logger.warning("network call cut off at its end", extra={"peer": peer, "seconds": seconds})


WATCHDOG = Watchdog()


def inode_of(sock: socket.socket | None) -> int | None:
    """What the watchdog knows a socket by (None when it is closed)."""
    try:
        return os.fstat(sock.fileno()).st_ino if sock is not None else None
    except (OSError, ValueError):
        return None


def call_seconds() -> float:
    """How long a call starting now may take: the current deadline's remaining time, at most CALL_SECONDS."""
    left = deadline.current().remaining()
    return CALL_SECONDS if math.isinf(left) else min(CALL_SECONDS, left)


_installed = threading.Lock()
_done: list[bool] = []


def install() -> None:
    """Every socket urllib3 opens or reuses from now on is watched (idempotent, process-wide)."""
    with _installed:
        if _done:
            return
        import urllib3.connection  # noqa: PLC0415 (botocore, requests and azure-core all import it anyway)
        import urllib3.connectionpool  # noqa: PLC0415
        import urllib3.util.connection  # noqa: PLC0415

        opening = urllib3.util.connection.create_connection

        @functools.wraps(opening)
        def create_connection(*args: Any, **kwargs: Any) -> socket.socket:
            sock = opening(*args, **kwargs)
            WATCHDOG.watch(sock, call_seconds())  # before the TLS handshake: a trickled handshake is cut too
            return sock

        requesting = urllib3.connection.HTTPConnection.request

        @functools.wraps(requesting)
        def request(self: Any, *args: Any, **kwargs: Any) -> Any:
            if self.sock is not None:  # a pooled connection's new call
                WATCHDOG.watch(self.sock, call_seconds())
            return requesting(self, *args, **kwargs)

        answering = urllib3.connection.HTTPConnection.getresponse

        @functools.wraps(answering)
        def getresponse(self: Any, *args: Any, **kwargs: Any) -> Any:
            inode = inode_of(self.sock)  # http.client may close it when the answer has no length
            try:
                response = answering(self, *args, **kwargs)
            except (OSError, http.client.HTTPException):
                if WATCHDOG.was_cut(inode):  # said as what it is: the call's time ran out
                    raise TimeoutError(CUT) from None
                raise
            if WATCHDOG.was_cut(inode):  # headers cut short can parse as a valid, empty answer
                response.close()
                raise TimeoutError(CUT)  # urllib3 makes it a ReadTimeoutError, as a read timeout would be
            return response

        returning = urllib3.connectionpool.HTTPConnectionPool._put_conn

        @functools.wraps(returning)
        def put_conn(self: Any, conn: Any) -> None:
            if conn is not None and conn.sock is not None:
                WATCHDOG.forget(conn.sock)
            returning(self, conn)

        urllib3.util.connection.create_connection = create_connection
        urllib3.connection.HTTPConnection.request = request  # type: ignore[method-assign]
        urllib3.connection.HTTPConnection.getresponse = getresponse  # type: ignore[method-assign]
        urllib3.connectionpool.HTTPConnectionPool._put_conn = put_conn  # type: ignore[method-assign]
        _done.append(True)
