"""A TCP proxy on a loopback port that can be cut off (every connection dropped, new ones
refused) and restored: a broker outage without stopping the shared broker; or stalled (bytes
held, in both directions, until it flows again): a broker that stops answering mid-call."""

from __future__ import annotations

import contextlib
import socket
import threading


class TcpProxy:
    """Forwards connections to `upstream` (host, port) while `up`."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.up = True
        self.flowing = threading.Event()
        self.flowing.set()
        self.held_bytes = 0  # received while stalled
        self.lock = threading.Lock()
        self.sockets: set[socket.socket] = set()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets |= {client, server}
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if not self.flowing.is_set():
                    self.held_bytes += len(data)
                    self.flowing.wait()
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Drop every connection and refuse new ones."""
        self.up = False
        with self.lock:
            ends, self.sockets = self.sockets, set()
        for end in ends:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def restore(self) -> None:
        self.up = True

    def stall(self) -> None:
        """Hold every byte received from now on (connections stay open)."""
        self.flowing.clear()

    def flow(self) -> None:
        """Forward what was held, and everything after."""
        self.flowing.set()

    def close(self) -> None:
        self.flow()
        self.cut()
        self.listener.close()
