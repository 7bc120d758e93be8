"""A TCP proxy that sits between the site and Redis or PostgreSQL and misbehaves on cue.

    with FaultProxy("127.0.0.1", 6379) as proxy:
        settings.CACHES["default"]["LOCATION"] = f"redis://{proxy.address}/0"
        proxy.mode = "refuse"   # new connections are closed at once (Redis "down")
        proxy.mode = "hang"     # connections accepted, bytes swallowed (Redis "hung")
        proxy.mode = "delay"    # every chunk held `proxy.delay` seconds each way
        proxy.mode = "drop"     # open connections cut, new ones refused
        proxy.mode = "pass"     # back to normal

Faults are made at the network, beneath the real client library, so the client's own
timeouts and errors are what the code under test meets.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Literal

Mode = Literal["pass", "refuse", "hang", "delay", "drop"]


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int, *, delay: float = 1.0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.delay = delay
        self._mode: Mode = "pass"
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    # --- control ------------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        return self._mode

    @mode.setter
    def mode(self, mode: Mode) -> None:
        self._mode = mode
        if mode in ("drop", "refuse"):
            self.cut_all()

    def cut_all(self) -> None:
        """Close every connection the proxy holds, as a restarting server would."""
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.cut_all()
        self._thread.join(timeout=2)
        self._listener.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # --- plumbing -----------------------------------------------------------------

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._mode in ("refuse", "drop"):
                # An accepted then closed connection: the client reads EOF or a reset at once.
                with contextlib.suppress(OSError):
                    client.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                    )
                client.close()
                continue
            self._track(client)
            if self._mode == "hang":
                continue  # held open, never answered, until cut_all() or stop()
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self._track(upstream)
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if self._mode == "hang":
                    while self._mode == "hang" and not self._stopping.is_set():
                        time.sleep(0.05)
                elif self._mode == "delay":
                    time.sleep(self.delay)
                if self._mode in ("drop", "refuse"):
                    break
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.close()
