"""A local SMTP server for tests: takes messages on loopback, and fails one on request.

    with SmtpServer(fail_message=2, failure="disconnect") as server:
        settings.EMAIL_PORT = server.port

`failure` happens at the end of the DATA of message number `fail_message` (counted
from 1 over the server's life), once: "disconnect" closes the connection without
answering (the server may have the message; the client cannot know), "451" answers
a temporary refusal (RFC 5321 §4.2.2: the message was not taken). `hang_up()` closes
every open session from the server's side, as an idle timeout does (with a 421 first
when asked, RFC 5321 §3.8); `data_delay` seconds pass before each DATA is answered.

Addresses in `refuse` are refused at RCPT TO (550); DATA without a recipient is refused
(554, RFC 2920 §3.1).

With `pipelining` the server offers PIPELINING (RFC 2920); without it, `sent_ahead`
counts the commands a client sent before the previous one was answered. With `hold`,
the server holds its answers to MAIL, RCPT and the end of DATA until the client sends
more or `hold` seconds pass, as a server batching its answers may (RFC 2920 §3.2);
`stalls` counts the answers it held that long: the times the client waited for one.
A session closed in the middle of a message's DATA takes nothing, as RFC 5321 §4.1.1.4
has it.
"""

from __future__ import annotations

import select
import socket
import socketserver
import threading
import time
from email import message_from_bytes


class SmtpServer:
    def __init__(
        self,
        *,
        fail_message: int | None = None,
        failure: str = "disconnect",
        data_delay: float = 0,
        pipelining: bool = False,
        hold: float = 0,
        refuse: tuple[str, ...] = (),
    ):
        self.refuse = {address.lower() for address in refuse}
        self.fail_message = fail_message
        self.failure = failure
        self.data_delay = data_delay
        self.pipelining = pipelining
        self.hold = hold
        self.sent_ahead = 0
        self.stalls = 0
        self.connections = 0  # sessions opened
        self.quits = 0  # sessions the client ended with QUIT
        self.open: list[tuple[socket.socket, object]] = []  # (socket, its writer)
        self.in_data = 0
        self.most_in_data = 0  # most DATA answers pending at once, over all sessions
        self.received: list[tuple[list[str], bytes]] = []  # (envelope recipients, data)
        self.failed: list[tuple[list[str], bytes]] = []
        self.data_count = 0
        self.lock = threading.Lock()
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                with server.lock:
                    server.connections += 1
                    server.open.append((self.request, self.wfile))
                try:
                    server.converse(_Input(self.request), self.wfile)
                except OSError:
                    pass  # hung up by hang_up()
                finally:
                    with server.lock:
                        server.open = [o for o in server.open if o[0] is not self.request]

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

    def hang_up(self, *, reply_421: bool = True) -> None:
        """Close every open session from the server's side, as an idle timeout does."""
        with self.lock:
            sessions, self.open = self.open, []
        for sock, wfile in sessions:
            if reply_421:
                wfile.write(b"421 4.4.2 localhost idle too long, closing\r\n")
                wfile.flush()
            sock.shutdown(socket.SHUT_RDWR)

    def subjects(self) -> list[str]:
        return [message_from_bytes(data)["Subject"] for _, data in self.received]

    def converse(self, rfile: _Input, wfile) -> None:
        def reply(line: str, *, held: bool = False) -> None:
            if not self.pipelining and rfile.waiting():
                with self.lock:
                    self.sent_ahead += 1
            if held and self.hold and not rfile.waiting(self.hold):
                with self.lock:
                    self.stalls += 1
            wfile.write(f"{line}\r\n".encode())
            wfile.flush()

        reply("220 localhost test SMTP")
        recipients: list[str] = []
        while line := rfile.readline():
            command = line.decode("ascii", "replace").strip()
            verb = command.split(" ", 1)[0].upper()
            if verb == "EHLO":
                reply("250-localhost\r\n250 PIPELINING" if self.pipelining else "250 localhost")
            elif verb == "HELO":
                reply("250 localhost")
            elif verb == "MAIL":
                recipients = []
                reply("250 OK", held=True)
            elif verb == "RCPT":
                address = command.split(":", 1)[1].strip().strip("<>").lower()
                if address in self.refuse:
                    reply("550 5.1.1 No such user", held=True)
                    continue
                recipients.append(address)
                reply("250 OK", held=True)
            elif verb == "DATA" and not recipients:
                reply("554 5.5.1 No valid recipients")
            elif verb == "DATA":
                reply("354 End data with <CR><LF>.<CR><LF>")
                data = b""
                while (chunk := rfile.readline()) != b".\r\n":
                    if not chunk.endswith(b"\n"):
                        return  # closed in the middle of the message: nothing taken
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                with self.lock:
                    self.data_count += 1
                    failing = self.data_count == self.fail_message
                    self.in_data += 1
                    self.most_in_data = max(self.most_in_data, self.in_data)
                time.sleep(self.data_delay)
                with self.lock:
                    self.in_data -= 1
                if failing and self.failure == "disconnect":
                    self.failed.append((recipients, data))
                    return  # connection closed, no answer
                if failing:
                    self.failed.append((recipients, data))
                    reply("451 4.3.0 Try again later", held=True)
                    continue
                with self.lock:
                    self.received.append((recipients, data))
                reply("250 OK queued", held=True)
            elif verb == "QUIT":
                with self.lock:
                    self.quits += 1
                reply("221 Bye")
                return
            else:  # RSET, NOOP
                reply("250 OK")


class _Input:
    """A session's input, read here so that the server knows what the client sent ahead."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def readline(self) -> bytes:
        """The next line, or what was left before the client closed (b"" at its end)."""
        while (end := self.buffer.find(b"\n")) < 0:
            chunk = self.sock.recv(65536)
            if not chunk:
                line = bytes(self.buffer)
                self.buffer.clear()
                return line
            self.buffer += chunk
        line = bytes(self.buffer[: end + 1])
        del self.buffer[: end + 1]
        return line

    def waiting(self, timeout: float = 0) -> bool:
        """Whether the client has sent more than was read, or does within `timeout`."""
        return bool(self.buffer) or bool(select.select([self.sock], [], [], timeout)[0])
