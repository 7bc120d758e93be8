"""A local SMTP server for tests: speaks enough of RFC 5321 for Django's SMTP backend.

Every message accepted is kept, parsed, in `messages`; `refuse_after` messages makes it
answer the next DATA with 451 (a temporary failure: nothing taken).
"""

from __future__ import annotations

import socketserver
import threading
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default


class _Session(socketserver.StreamRequestHandler):
    server: SMTPStandIn

    def reply(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())

    def handle(self) -> None:
        self.reply("220 stand-in ESMTP")
        recipients: list[str] = []
        while line := self.rfile.readline():
            verb = line.decode("ascii", "replace").strip().split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 stand-in")
            elif verb == "MAIL":
                recipients = []
                self.reply("250 OK")
            elif verb == "RCPT":
                recipients.append(line.decode().split(":", 1)[1].strip().strip("<>"))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                with self.server.lock:
                    if len(self.server.messages) >= self.server.refuse_after:
                        self.reply("451 Try again later")
                        continue
                    message = message_from_bytes(data, policy=default)
                    self.server.messages.append((recipients, message))
                self.reply("250 OK queued")
            elif verb == "RSET":
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 Bye")
                return
            else:
                self.reply("502 Command not implemented")


class SMTPStandIn(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *, refuse_after: int = 10**9):
        super().__init__(("127.0.0.1", 0), _Session)
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.refuse_after = refuse_after
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
