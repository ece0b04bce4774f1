"""A TCP proxy in front of a real emulator that answers slowly forever, for the deadline tests.

What the client sends goes through at once; what the server answers (the TLS handshake included: the proxy
sees bytes, not HTTP) is forwarded at `bytes_per_second`, or, with `reset_after`, that many bytes of the
answer go through and the connection is then reset (RST) in the middle of it. Every read the client makes
returns within its timeout, so only a limit on the whole call ends it.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from types import TracebackType
from typing import Self

from sandbox.black_hole import _Listener

TICK_SECONDS = 0.1


class TrickleProxy(_Listener):
    def __init__(self, target_port: int, bytes_per_second: float, *, reset_after: int | None = None) -> None:
        super().__init__(backlog=64)
        self.target_port = target_port
        self.rate = bytes_per_second
        self.reset_after = reset_after
        self._open: list[socket.socket] = []
        threading.Thread(target=self.serve, args=(self._proxy,), name="trickle-proxy", daemon=True).start()

    def _proxy(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
        except OSError:
            client.close()
            return
        server.settimeout(None)
        self._open.append(server)
        threading.Thread(target=self._upstream, args=(client, server), daemon=True).start()
        self._downstream(server, client)

    @staticmethod
    def _upstream(client: socket.socket, server: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                server.sendall(data)

    def _downstream(self, server: socket.socket, client: socket.socket) -> None:
        pending = b""
        sent = 0
        step = max(1, int(self.rate * TICK_SECONDS))  # 1 B/s: a byte a second; 1 KB/s: 102 bytes a tick
        with contextlib.suppress(OSError):
            while True:
                if not pending:
                    pending = server.recv(65536)
                    if not pending:
                        break
                if self.reset_after is not None:
                    part, pending = pending[: self.reset_after - sent], pending[self.reset_after - sent :]
                    client.sendall(part)
                    sent += len(part)
                    if sent >= self.reset_after:
                        self._reset(client)
                        return
                    continue
                client.sendall(pending[:step])
                pending = pending[step:]
                time.sleep(step / self.rate)
            client.shutdown(socket.SHUT_WR)

    @staticmethod
    def _reset(client: socket.socket) -> None:
        """Closes with SO_LINGER 0: the kernel sends RST instead of FIN (a crashed proxy, a reset by the path)."""
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.shutdown(socket.SHUT_RD)  # wakes the upstream thread's recv: a socket in use is not released
        time.sleep(0.05)
        client.close()

    def close(self) -> None:
        for held in self._open:
            with contextlib.suppress(OSError):
                held.close()
        super().close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
