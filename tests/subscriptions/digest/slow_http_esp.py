"""A slow ESP at the network for real-worker tests: Mailgun's send API on loopback.

Each POST /v3/<domain>/messages is taken at once (its recipients recorded as
received: from here on the ESP has the batch) and answered only `delay` seconds later,
so a worker killed meanwhile has calls in flight whose outcome it never learns.
Point anymail's Mailgun backend at it with ANYMAIL_MAILGUN_API_URL=<server.url>.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.fake_esp import form_fields


class SlowMailgun:
    def __init__(self, *, delay: float):
        self.delay = delay
        self.lock = threading.Lock()
        self.calls: list[list[str]] = []  # each call's recipients, as taken
        self.in_flight: list[list[str]] = []  # calls taken and not answered yet
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = form_fields(self.headers["Content-Type"], self.rfile.read(length))
                recipients = [address.lower() for address in form.get("to", [])]
                with stand_in.lock:
                    stand_in.calls.append(recipients)
                    stand_in.in_flight.append(recipients)
                time.sleep(stand_in.delay)
                body = json.dumps(
                    {"id": f"<{uuid.uuid4().hex}@mailgun.test>", "message": "Queued. Thank you."}
                ).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the worker that asked is gone
                finally:
                    with stand_in.lock:
                        stand_in.in_flight.remove(recipients)

            def log_message(self, *args) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/v3"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)

    def __enter__(self) -> SlowMailgun:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.http.shutdown()
        self.http.server_close()

    def snapshot(self) -> tuple[list[list[str]], list[list[str]]]:
        with self.lock:
            return [list(c) for c in self.calls], [list(c) for c in self.in_flight]
