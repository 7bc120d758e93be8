"""The digest over SMTP: kept connections, several messages in flight, each made by substitution.

A batch's readers share one rendering (digest.render); over SMTP each still needs a message
of their own. The group's message is built once through Django's mail API, its bodies
encoded once around the merge fields; a reader's message is those bytes with their
address, headers and merge values put in, encoded as Django would have encoded their
copy, not a second MIME rendering.

Connections are opened by Django's SMTP backend (EMAIL_HOST, EMAIL_PORT, TLS or SSL,
login, EMAIL_TIMEOUT) and kept open between batches in each worker process, up to
SMTP_CONNECTIONS of them, each used by one thread at a time; a batch's readers are shared
out between that many threads. A kept connection the server has closed meanwhile (an idle
timeout, a 421) fails before the message's DATA, so it is reopened and the message sent
once over the new one (RFC 5321 §3.8: a 421 closes the session; nothing was taken).
Where the server offers PIPELINING (RFC 2920), each message is one write and one wait
(`_Connection`); elsewhere each command waits for its answer.
"""

from __future__ import annotations

import atexit
import binascii
import contextlib
import re
import smtplib
import threading
import time
from collections import deque
from dataclasses import dataclass
from email.utils import make_msgid
from queue import Empty, SimpleQueue

from django.conf import settings
from django.core.mail import get_connection
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.core.mail.message import RFC5322_EMAIL_LINE_LENGTH_LIMIT, sanitize_address

from newsroom.links import site_host
from newsroom.mail import PLAIN_ADDRESS, RenderedEmail
from subscriptions.digest import esp, render
from subscriptions.digest.failures import SmtpNothingSent, verdict
from subscriptions.models import Edition

# Stand-ins in the group's message, replaced in each reader's copy.
_TO = "digest-reader@merge.invalid"
_HEADER = "merge-header-{}-end"
_BODY = "merge-body-{}-end"
_ENCODED = b"Content-Transfer-Encoding: 7bit\r\n\r\n"
_CTE = b"Content-Transfer-Encoding: "
_EOH = b"\r\n\r\n"
# Between two separately encoded pieces of a body: a soft line break (RFC 2045 §6.7 rule
# 5), so each piece keeps its lines within 76 characters and decodes to the pieces joined.
_SOFT_BREAK = b"=\r\n"
# RFC 5322 §2.1.1: header lines SHOULD be no longer than 78 characters.
_HEADER_LINE = 78


# --- one message per reader, by substitution --------------------------------------------


class _Body:
    """One body of the group's message, encoded once around its merge fields.

    Each reader's copy is encoded as Django would encode it (SafeMIMEText): as it is
    (7bit or 8bit) unless a line passes RFC 5322's 998 characters, quoted-printable
    then. Its shared pieces are kept both ways, with where each line holding a merge
    field would end, so that a reader's copy is pieces joined, never a body re-encoded.
    """

    def __init__(self, content: str, fields: tuple[str, ...]) -> None:
        # The SMTP profile renders merge fields the site's own way (render.MERGE_FORMAT).
        names = {render.merge_field(name): name for name in fields}
        pattern = re.compile("|".join(re.escape(field) for field in names))
        content = _EOL.sub("\n", content)
        self.plain: list[bytes | str] = []
        self.quoted: list[bytes | str] = []
        at = 0
        for found in pattern.finditer(content):
            self._shared(content[at : found.start()])
            self.plain.append(names[found.group()])
            self.quoted.append(names[found.group()])
            at = found.end()
        self._shared(content[at:])
        self.quoted = [piece for piece in self.quoted if piece != b""]
        # The lines holding merge fields: each one's bytes without them, and the fields it
        # holds. A line without any is as long for every reader.
        self.lines: list[tuple[int, list[str]]] = []
        self.too_long = False
        for line in content.splitlines():
            held = [names[f] for f in pattern.findall(line)]
            base = len(pattern.sub("", line).encode())
            if held:
                self.lines.append((base, held))
            else:
                self.too_long |= base > RFC5322_EMAIL_LINE_LENGTH_LIMIT
        self.ascii = content.isascii()

    def _shared(self, text: str) -> None:
        self.plain.append(text.replace("\n", "\r\n").encode())
        self.quoted.append(_qp(text))

    def fill(self, values: dict[str, str]) -> tuple[bytes, bytes]:
        """(Content-Transfer-Encoding, body) of one reader's copy."""
        raw = {name: value.encode() for name, value in values.items()}
        if (
            not self.too_long
            and all(
                base + sum(len(raw[f]) for f in held) <= RFC5322_EMAIL_LINE_LENGTH_LIMIT
                for base, held in self.lines
            )
            and not any(_EOL.search(value) for value in values.values())
        ):
            ascii_only = self.ascii and all(len(v) == len(values[k]) for k, v in raw.items())
            body = b"".join(raw[piece] if isinstance(piece, str) else piece for piece in self.plain)
            return (b"7bit" if ascii_only else b"8bit"), body
        body = _SOFT_BREAK.join(
            _qp(values[piece]) if isinstance(piece, str) else piece for piece in self.quoted
        )
        return b"quoted-printable", body


# Line ends as the email package reads them (email.feedparser.NLCRE).
_EOL = re.compile(r"\r\n|\r|\n")


def _qp(text: str) -> bytes:
    """Quoted-printable, CRLF line ends (binascii's encoder: the email package's is 3x slower)."""
    return binascii.b2a_qp(text.encode(), quotetabs=False, istext=True).replace(b"\n", b"\r\n")


class GroupMessage:
    """The email a group gets, built once; `for_reader` makes each reader's bytes from it."""

    def __init__(
        self, *, edition: Edition, rendered: RenderedEmail, header_names: list[str]
    ) -> None:
        self.edition = edition
        self.rendered = rendered
        self.header_names = header_names
        headers = {name: _HEADER.format(n) for n, name in enumerate(header_names)}
        markers = RenderedEmail(
            subject=rendered.subject, text=_BODY.format(0), html=_BODY.format(1)
        )
        message = esp.edition_message(
            edition=edition, rendered=markers, to=[_TO], headers=headers, profile=esp.SMTP
        )
        encoding = message.encoding or settings.DEFAULT_CHARSET
        self.sender = _quoted(sanitize_address(message.from_email, encoding))
        self.encoding = encoding
        # A merge field in the subject (a headline quoting one) is left to Django's rendering.
        self.substitutable = "{{" not in rendered.subject
        shared = [message.message().as_bytes(linesep="\r\n")]
        for n in range(2):
            before, found, after = shared[-1].partition(_ENCODED + _BODY.format(n).encode())
            # Django writes a short ASCII body 7bit; a Django that does otherwise gets each
            # reader's message rendered by itself.
            self.substitutable &= bool(found)
            shared[-1:] = [before + _CTE, after]
        self.shared = shared  # the headers, between the two bodies, after the second
        text_fields = tuple(f for f in render.MERGE_FIELDS if f != "greeting_html")
        self.text = _Body(rendered.text, text_fields)
        self.html = _Body(rendered.html, render.MERGE_FIELDS)

    def for_reader(
        self, *, address: str, headers: dict[str, str], values: dict[str, str]
    ) -> tuple[str, bytes]:
        """(envelope recipient, message bytes) of one reader's copy."""
        to = _sanitized(address, self.encoding)
        if not self.substitutable or not _ascii(headers, to):
            return to, self._rendered_by_django(address, headers, values)
        head, middle, tail = self.shared
        for n, name in enumerate(self.header_names):
            head = head.replace(_HEADER.format(n).encode(), _fold(name, headers[name]), 1)
        head = head.replace(_TO.encode(), to.encode(), 1)
        text_values = {k: v for k, v in values.items() if k != "greeting_html"}
        text_encoding, text = self.text.fill(text_values)
        html_encoding, html = self.html.fill(values)
        return to, b"".join(
            (head, text_encoding, _EOH, text, middle, html_encoding, _EOH, html, tail)
        )

    def _rendered_by_django(self, address: str, headers: dict[str, str], values) -> bytes:
        own = render.personal_copy(rendered=self.rendered, values=values)
        message = esp.edition_message(
            edition=self.edition, rendered=own, to=[address], headers=headers, profile=esp.SMTP
        )
        return message.message().as_bytes(linesep="\r\n")


def _sanitized(address: str, encoding: str) -> str:
    """The address as Django's mail API writes it in To."""
    if PLAIN_ADDRESS.fullmatch(address):
        return address
    return sanitize_address(address, encoding)


def _quoted(address: str) -> str:
    """The address as smtplib writes it in MAIL FROM and RCPT TO."""
    if PLAIN_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)


def _ascii(headers: dict[str, str], to: str) -> bool:
    # Anything else (an address or link needing encoding) is left to Django's rendering.
    return to.isascii() and all(v.isascii() and not _EOL.search(v) for v in headers.values())


def _fold(name: str, value: str) -> bytes:
    """A header value, folded after its commas when the line would pass 78 characters."""
    if len(name) + 2 + len(value) > _HEADER_LINE:
        value = value.replace(", ", ",\r\n ")
    return value.encode()


# --- kept connections ---------------------------------------------------------------


class _Kept:
    """Open SMTP connections of this process, idle until a sending thread takes one."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.idle: dict[tuple, list[SmtpBackend]] = {}
        self.slots: threading.BoundedSemaphore | None = None
        self.slots_for = 0

    def limit(self) -> threading.BoundedSemaphore:
        """The process's bound on connections in use at once (SMTP_CONNECTIONS)."""
        size = max(1, settings.SMTP_CONNECTIONS)
        with self.lock:
            if self.slots is None or self.slots_for != size:
                self.slots, self.slots_for = threading.BoundedSemaphore(size), size
            return self.slots

    def take(self) -> SmtpBackend:
        key = _server()
        with self.lock:
            idle = self.idle.get(key)
            if idle:
                return idle.pop()
        return get_connection()

    def give_back(self, backend: SmtpBackend) -> None:
        if backend.connection is None:
            return
        with self.lock:
            idle = self.idle.setdefault(_server(), [])
            if len(idle) < max(1, settings.SMTP_CONNECTIONS):
                idle.append(backend)
                return
        _close(backend)

    def close_all(self) -> None:
        with self.lock:
            backends = [b for idle in self.idle.values() for b in idle]
            self.idle.clear()
        for backend in backends:
            _close(backend)


def _server() -> tuple:
    """What makes a kept connection reusable: the same backend, server, login and timeout."""
    return (
        settings.EMAIL_BACKEND,
        settings.EMAIL_HOST,
        settings.EMAIL_PORT,
        settings.EMAIL_HOST_USER,
        settings.EMAIL_USE_TLS,
        getattr(settings, "EMAIL_USE_SSL", False),
        getattr(settings, "EMAIL_TIMEOUT", None),
    )


def _close(backend: SmtpBackend) -> None:
    # Closing a connection the server has already dropped fails; it is closed either way.
    with contextlib.suppress(smtplib.SMTPException, OSError):
        backend.close()


KEPT = _Kept()


def close_connections() -> None:
    """Close this process's kept SMTP connections (at worker shutdown, at exit)."""
    KEPT.close_all()


atexit.register(close_connections)


@dataclass(frozen=True)
class _Message:
    """One reader's message, ready for the wire."""

    delivery_id: str
    message_id: str
    sender: str  # the reverse-path, as smtplib's quoteaddr writes it
    to: str
    data: bytes  # what follows DATA's 354: the message dot-stuffed, then its end

    def envelope(self, smtp: smtplib.SMTP) -> bytes:
        """MAIL FROM, RCPT TO and DATA, as smtplib's mail(), rcpt() and data() write them."""
        size = f" SIZE={len(self.data)}" if smtp.does_esmtp and smtp.has_extn("size") else ""
        mail = f"MAIL FROM:{self.sender}{size}\r\n"
        return f"{mail}RCPT TO:{_quoted(self.to)}\r\nDATA\r\n".encode("ascii")


def _stuffed(data: bytes) -> bytes:
    """The message as DATA carries it (RFC 5321 §4.5.2), as smtplib's SMTP.data sends bytes.

    Each line starting with a period gets a second one, and the message ends CRLF "." CRLF.
    """
    data = data.replace(b"\n.", b"\n..")
    if data.startswith(b"."):
        data = b"." + data
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


class _Connection:
    """A kept connection as one sending thread uses it: its messages one after another.

    Where the server offers PIPELINING (RFC 2920), a message's MAIL FROM, RCPT TO and DATA
    go in one write, and the next message's go in the same write as this one's content
    (§3.1 allows the content first in a group): one write and one wait a message. The next
    message's content is sent only once this one's end of DATA is answered 250 and the
    next one's DATA 354, so a message is never sent while the previous one's fate is
    unknown, and a failure leaves only the message whose content went in doubt.
    """

    def __init__(self, backend: SmtpBackend) -> None:
        self.backend = backend
        # The message whose envelope went after the last one's content, its replies unread.
        self.ahead: _Message | None = None

    def send(self, message: _Message, following: _Message | None = None) -> None:
        """Send `message`, reopening the connection once if it was closed before DATA.

        Until the server has answered DATA nothing of the message is taken, so a
        connection found closed before (a reset, an empty read, a 421) is reopened and
        the message sent once over the new one. A failure after its content went out is
        raised as it is: the message may have been taken.
        """
        smtp = self._ready_for_data(message)
        payload = message.data
        if following is not None and _pipelining(smtp):
            payload += following.envelope(smtp)
            self.ahead = following
        # From here a hang-up is left in doubt: the server may have taken the message.
        smtp.send(payload)
        code, reply = smtp.getreply()
        if code != 250:
            if self.ahead is not None:
                # The next message's DATA may be answered 354: only closing ends that
                # without sending it (RFC 5321 §4.1.1.4); nothing of it was taken.
                self.drop()
            else:
                smtp.rset()
            raise smtplib.SMTPDataError(code, reply)

    def drop(self) -> None:
        """Close the connection, leaving the envelope sent ahead unanswered (nothing taken)."""
        self.ahead = None
        _close(self.backend)

    def _ready_for_data(self, message: _Message) -> smtplib.SMTP:
        """The connection once the server has answered `message`'s DATA with 354."""
        for attempt in range(2):
            sent = self.ahead is message
            self.ahead = None
            try:
                if not sent:
                    self.backend.open()
                    self.backend.connection.ehlo_or_helo_if_needed()
                smtp = self.backend.connection
                replies = self._envelope(smtp, message, sent=sent)
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                _close(self.backend)
                if attempt:
                    raise SmtpNothingSent(f"SMTP conversation failed before DATA: {exc}") from exc
                continue
            if any(code == 421 for code, _ in replies):
                # The server is closing this connection (RFC 5321 §3.8).
                _close(self.backend)
                if attempt:
                    code, reply = replies[-1]
                    raise SmtpNothingSent(f"SMTP server closing the connection: {code} {reply!r}")
                continue
            codes = [code for code, _ in replies]
            if codes[0] == 250 and codes[1:2] in ([250], [251]) and codes[2:] == [354]:
                return smtp
            # Refused: nothing of the message was taken.
            if codes[2:] == [354]:
                # Waiting for a message without a sender or a recipient accepted: only
                # closing leaves the server without one.
                _close(self.backend)
            else:
                smtp.rset()
            mail, rcpt, data = (*replies, None, None)[:3]
            if mail[0] != 250:
                raise smtplib.SMTPSenderRefused(*mail, message.sender)
            if rcpt[0] not in (250, 251):
                raise smtplib.SMTPRecipientsRefused({message.to: rcpt})
            raise smtplib.SMTPDataError(*data)
        raise AssertionError("unreachable")

    @staticmethod
    def _envelope(smtp: smtplib.SMTP, message: _Message, *, sent: bool) -> list[tuple]:
        """The replies to MAIL FROM, RCPT TO and DATA, up to the first refusal or 421."""
        envelope = message.envelope(smtp)
        replies: list[tuple] = []
        if _pipelining(smtp):
            if not sent:
                smtp.send(envelope)
            # Every command of the group is answered, in order (RFC 2920 §3.2).
            for _ in range(3):
                replies.append(smtp.getreply())
                if replies[-1][0] == 421:
                    break
            return replies
        for command, ok in zip(envelope.splitlines(keepends=True), _ACCEPTED, strict=True):
            smtp.send(command)
            replies.append(smtp.getreply())
            if replies[-1][0] not in ok:
                break
        return replies


# What MAIL FROM, RCPT TO and DATA are answered when they are accepted.
_ACCEPTED = ((250,), (250, 251), (354,))


def _pipelining(smtp: smtplib.SMTP) -> bool:
    return bool(smtp.does_esmtp and smtp.has_extn("pipelining"))


# --- a batch's messages over kept connections -----------------------------------------

# The accepted messages are recorded a round at a time, this long from the first of each:
# an UPDATE and its commit cost more than sending a message (4 to 8 ms on a loaded
# PostgreSQL), so one per message would set the pace. A worker killed in a round leaves
# that round's readers in doubt, never resent by themselves.
RECORD_EVERY_SECONDS = 0.05
_ROUND_OVER = object()


def send(
    *,
    edition: Edition,
    calls: list[tuple[RenderedEmail, list[esp.Recipient]]],
    results: dict[str, esp.Result],
    on_accepted: esp.OnAccepted | None,
) -> esp.SendReport:
    """Send each reader of `calls` their own message, over up to SMTP_CONNECTIONS threads.

    `on_accepted` hears of the accepted messages in the calling thread (where the
    database is), in rounds of RECORD_EVERY_SECONDS from the first of each. The first
    error that may have
    reached the server stops every thread before its next message; the report carries
    the most doubtful error seen.
    """
    newsletter = edition.newsletter
    jobs: deque[tuple[GroupMessage, esp.Recipient]] = deque()
    for rendered, group in calls:
        if not group:
            continue
        # Every reader's List-Unsubscribe headers are named alike (tokens.py).
        names = [*render.reader_headers(subscriber=group[0].subscriber, newsletter=newsletter)]
        built = GroupMessage(
            edition=edition, rendered=rendered, header_names=[*names, "Message-ID"]
        )
        jobs.extend((built, recipient) for recipient in group)
    if not jobs:
        return esp.SendReport(results)
    heard: SimpleQueue[tuple[int, esp.Result] | BaseException | None] = SimpleQueue()
    stop = threading.Event()
    domain = site_host()

    def prepared() -> _Message | None:
        """The next reader's message, or None when there is none or all must stop."""
        if stop.is_set():
            return None
        try:
            built, recipient = jobs.popleft()
        except IndexError:
            return None
        return _message(built, recipient, newsletter, domain)

    def sender() -> None:
        slots = KEPT.limit()
        try:
            with slots:
                if not jobs or stop.is_set():
                    return
                connection = _Connection(KEPT.take())
                try:
                    message = prepared()
                    while message is not None:
                        following = prepared()
                        heard.put(_send_one(connection, message, following))
                        message = following
                except BaseException:
                    connection.drop()  # in an unknown state: never handed to the next batch
                    raise
                finally:
                    if connection.ahead is not None:
                        connection.drop()  # stopped with an envelope sent ahead
                    KEPT.give_back(connection.backend)
        except BaseException as exc:
            stop.set()
            heard.put(exc)
        finally:
            heard.put(None)

    threads = [
        threading.Thread(target=sender, name="digest-smtp", daemon=True)
        for _ in range(min(max(1, settings.SMTP_CONNECTIONS), len(jobs)))
    ]
    errors: list[BaseException] = []
    running = len(threads)
    try:
        for thread in threads:
            thread.start()
        accepted: list[tuple[int, esp.Result]] = []
        round_ends = None
        while running:
            wait = None if round_ends is None else max(0.0, round_ends - time.monotonic())
            try:
                item = heard.get(timeout=wait)
            except Empty:  # the round is over
                item = _ROUND_OVER
            if item is None:
                running -= 1
            elif isinstance(item, BaseException):
                errors.append(item)
            elif item is not _ROUND_OVER:
                delivery_id, result = item
                results[delivery_id] = result
                if result.ok:
                    accepted.append(item)
                    round_ends = round_ends or time.monotonic() + RECORD_EVERY_SECONDS
            over = round_ends is not None and time.monotonic() >= round_ends
            if accepted and (over or errors or not running):
                if on_accepted is not None:
                    on_accepted(accepted)
                accepted, round_ends = [], None
    finally:
        # Also when recording failed or the task's time ran out: nothing more goes out.
        stop.set()
        for thread in threads:
            thread.join()
    if not errors:
        return esp.SendReport(results)
    # One thread's "may have been taken" outweighs another's "refused": in doubt, never
    # retried by itself.
    error = next((e for e in errors if not verdict(e).refused), errors[0])
    return esp.SendReport(results, f"{type(error).__name__}: {error}", error)


def _message(built: GroupMessage, recipient: esp.Recipient, newsletter, domain: str) -> _Message:
    subscriber = recipient.subscriber
    headers, values = render.reader_headers_and_values(subscriber=subscriber, newsletter=newsletter)
    message_id = make_msgid(idstring="digest", domain=domain)
    to, data = built.for_reader(
        address=subscriber.email, headers={**headers, "Message-ID": message_id}, values=values
    )
    return _Message(
        delivery_id=recipient.delivery_id,
        message_id=message_id,
        sender=built.sender,
        to=to,
        data=_stuffed(data),
    )


def _send_one(
    connection: _Connection, message: _Message, following: _Message | None
) -> tuple[str, esp.Result]:
    try:
        connection.send(message, following)
    except smtplib.SMTPRecipientsRefused as exc:
        return message.delivery_id, esp.Result(False, error=str(exc))
    return message.delivery_id, esp.Result(True, message_id=message.message_id)
