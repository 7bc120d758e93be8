"""A local HTTP service that accepts connections and never answers, as a hung API does.

    with HungServer() as hung:
        settings.STRIPE_API_BASE = hung.url
        ...                       # the client under test waits on it
        assert hung.accepted == 2
        assert not hung.gave_up   # the client stopped waiting before `give_up_after`

After `give_up_after` seconds the server closes what it holds, so a client without a
timeout of its own fails the test instead of hanging the suite.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class HungServer:
    def __init__(self, *, give_up_after: float = 20.0) -> None:
        self.give_up_after = give_up_after
        self.accepted = 0
        self.gave_up = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._held: list[tuple[float, socket.socket]] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> HungServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopping.set()
        self._thread.join(timeout=2)
        for _, sock in self._held:
            with contextlib.suppress(OSError):
                sock.close()
        self._listener.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                client, _ = self._listener.accept()
                self.accepted += 1
                self._held.append((time.monotonic(), client))
            now = time.monotonic()
            for since, sock in list(self._held):
                if now - since > self.give_up_after:
                    self.gave_up = True
                    self._held.remove((since, sock))
                    with contextlib.suppress(OSError):
                        sock.close()
