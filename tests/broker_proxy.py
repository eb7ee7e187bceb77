"""A TCP proxy in front of a broker that a test can cut (every connection dropped, new ones refused) and
restore, on the same port: a broker outage for our processes only, leaving the machine's shared broker
and whatever is queued in it untouched."""

from __future__ import annotations

import contextlib
import socket
import threading


class BrokerProxy:
    """Forwards 127.0.0.1:`port` to `upstream`; `cut()` drops every connection and refuses new ones until
    `restore()`."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._server: socket.socket | None = None
        self._listen(0)
        assert self._server is not None
        self.port: int = self._server.getsockname()[1]

    def _listen(self, port: int) -> None:
        self._server = socket.create_server(("127.0.0.1", port), reuse_port=False)
        threading.Thread(target=self._accept, args=(self._server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5.0)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()
            with self._lock:
                self._sockets.difference_update((src, dst))

    def cut(self) -> None:
        """Refuse new connections and drop the open ones (both ends see the connection go)."""
        if self._server is not None:
            # shutdown() first: on Linux a close() alone leaves the thread blocked in accept() holding the
            # listening socket, which would go on accepting connections.
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
            self._server = None
        with self._lock:
            open_ = list(self._sockets)
        for s in open_:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def restore(self) -> None:
        """Accept connections on the same port again."""
        if self._server is None:
            self._listen(self.port)

    def close(self) -> None:
        self.cut()
