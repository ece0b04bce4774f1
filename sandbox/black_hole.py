"""Hosts that never answer, for the deadline tests: one that takes connections and stays silent, and one
whose listen backlog is full so that no connection is ever accepted (what a dead or overloaded host does)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Self


class _Listener:
    def __init__(self, backlog: int) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(backlog)
        self._held: list[socket.socket] = []

    @property
    def port(self) -> int:
        port: int = self.socket.getsockname()[1]
        return port

    def url(self, scheme: str = "https") -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    def serve(self, handle: Callable[[socket.socket], None]) -> None:
        """Accepts connections until closed, each handed to `handle` on a thread of its own."""
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return  # closed
            self._held.append(connection)
            threading.Thread(target=handle, args=(connection,), daemon=True).start()

    def close(self) -> None:
        for held in self._held:
            with contextlib.suppress(OSError):
                held.close()
        self.socket.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


class SilentHost(_Listener):
    """Accepts every connection, reads whatever comes, never writes a byte (a hung server, a TLS black hole)."""

    def __init__(self) -> None:
        super().__init__(backlog=64)
        threading.Thread(target=self.serve, args=(self._swallow,), name="silent-host", daemon=True).start()

    @staticmethod
    def _swallow(connection: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while connection.recv(65536):
                pass


class UnacceptingHost(_Listener):
    """Listens but never accepts, its backlog filled by connections of its own: a client's connect hangs
    (the kernel drops its SYN) until the client's connect timeout."""

    def __init__(self) -> None:
        super().__init__(backlog=0)
        for _ in range(4):  # fills the accept queue (Linux keeps backlog + 1)
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError, OSError):
                filler.connect(("127.0.0.1", self.port))
            self._held.append(filler)
