"""A local SMTP server for tests: takes messages on loopback, and fails one on request.

    with SmtpServer(fail_message=2, failure="disconnect") as server:
        settings.EMAIL_PORT = server.port

`failure` happens at the end of the DATA of message number `fail_message` (counted
from 1 over the server's life), once: "disconnect" closes the connection without
answering (the server may have the message; the client cannot know), "451" answers
a temporary refusal (RFC 5321 §4.2.2: the message was not taken).
"""

from __future__ import annotations

import socketserver
import threading
from email import message_from_bytes


class SmtpServer:
    def __init__(self, *, fail_message: int | None = None, failure: str = "disconnect"):
        self.fail_message = fail_message
        self.failure = failure
        self.received: list[tuple[list[str], bytes]] = []  # (envelope recipients, data)
        self.failed: list[tuple[list[str], bytes]] = []
        self.data_count = 0
        self.lock = threading.Lock()
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                server.converse(self.rfile, self.wfile)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.tcp.daemon_threads = True
        self.port = self.tcp.server_address[1]
        self.thread = threading.Thread(target=self.tcp.serve_forever, daemon=True)

    def __enter__(self) -> SmtpServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.tcp.shutdown()
        self.tcp.server_close()

    def recipients(self) -> list[str]:
        """Every envelope recipient of every message taken, once per message."""
        return [address for to, _ in self.received for address in to]

    def subjects(self) -> list[str]:
        return [message_from_bytes(data)["Subject"] for _, data in self.received]

    def converse(self, rfile, wfile) -> None:
        def reply(line: str) -> None:
            wfile.write(f"{line}\r\n".encode())
            wfile.flush()

        reply("220 localhost test SMTP")
        recipients: list[str] = []
        while line := rfile.readline():
            command = line.decode("ascii", "replace").strip()
            verb = command.split(" ", 1)[0].upper()
            if verb == "EHLO" or verb == "HELO":
                reply("250 localhost")
            elif verb == "MAIL":
                recipients = []
                reply("250 OK")
            elif verb == "RCPT":
                recipients.append(command.split(":", 1)[1].strip().strip("<>").lower())
                reply("250 OK")
            elif verb == "DATA":
                reply("354 End data with <CR><LF>.<CR><LF>")
                data = b""
                while (chunk := rfile.readline()) not in (b".\r\n", b""):
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                with self.lock:
                    self.data_count += 1
                    failing = self.data_count == self.fail_message
                if failing and self.failure == "disconnect":
                    self.failed.append((recipients, data))
                    return  # connection closed, no answer
                if failing:
                    self.failed.append((recipients, data))
                    reply("451 4.3.0 Try again later")
                    continue
                with self.lock:
                    self.received.append((recipients, data))
                reply("250 OK queued")
            elif verb == "QUIT":
                reply("221 Bye")
                return
            else:  # RSET, NOOP
                reply("250 OK")
