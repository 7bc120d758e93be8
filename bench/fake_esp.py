"""A local stand-in for Postmark's and Mailgun's HTTP APIs, for the benchmark, the demo and tests.

    python bench/fake_esp.py                      # http://127.0.0.1:8025/
    python bench/fake_esp.py --port 8026 --latency 0.05 --fail-every 10 --fail-status 503

Point django-anymail's real backends at it and they send over real HTTP:

    EMAIL_BACKEND=anymail.backends.postmark.EmailBackend
    ANYMAIL_POSTMARK_SERVER_TOKEN=any-token  ANYMAIL_POSTMARK_API_URL=http://127.0.0.1:8025/

    EMAIL_BACKEND=anymail.backends.mailgun.EmailBackend
    ANYMAIL_MAILGUN_API_KEY=any-key  ANYMAIL_MAILGUN_API_URL=http://127.0.0.1:8025/v3

It answers as those APIs do (status codes and bodies from their API references):

    POST /email, /email/batch          Postmark: X-Postmark-Server-Token required (401,
                                       ErrorCode 10), at most 500 messages a batch and 50
                                       recipients a message (422, ErrorCode 300), one Tag
                                       (a string); each message answered with its MessageID
    POST /v3/<domain>/messages         Mailgun: basic auth api:<key> (401 "Forbidden"),
                                       at most 1,000 recipients (400), at most 3 o:tag,
                                       recipient-variables for every recipient when given;
                                       answered {"id": "<...@domain>", "message": "Queued..."}

Every message accepted is counted, and kept as each reader would receive it (Mailgun's
%recipient.x% filled in from recipient-variables), readable at GET /_stand_in/messages
(with --keep, the default in tests; the benchmark keeps counts only). GET /_stand_in/stats
gives the counts; POST /_stand_in/reset empties it.

Faults, for tests of what the sender does when the ESP misbehaves: --latency seconds
before each answer; --fail-every N with --fail-status S: every Nth API call is refused
with S (nothing accepted; 429 carries Retry-After); --drop-every N: every Nth call is
accepted and counted, then the connection is closed without an answer (the caller cannot
know the messages went); --answer-after seconds between taking a call's messages and
answering it (a worker killed meanwhile leaves them sent but unrecorded).
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from email import message_from_bytes
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

POSTMARK_BATCH_MAX = 500
POSTMARK_RECIPIENTS_MAX = 50
MAILGUN_RECIPIENTS_MAX = 1000
MAILGUN_TAGS_MAX = 3


@dataclass
class Faults:
    latency: float = 0.0
    fail_every: int = 0
    fail_status: int = 503
    drop_every: int = 0
    answer_after: float = 0.0


@dataclass
class Store:
    """What the stand-in accepted; shared by the server's threads."""

    keep: bool = True
    calls: int = 0
    refused_calls: int = 0
    dropped_calls: int = 0
    recipients: int = 0
    messages: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def stats(self) -> dict:
        with self.lock:
            return {
                "calls": self.calls,
                "refused_calls": self.refused_calls,
                "dropped_calls": self.dropped_calls,
                "recipients": self.recipients,
            }

    def reset(self) -> None:
        with self.lock:
            self.calls = self.refused_calls = self.dropped_calls = self.recipients = 0
            self.messages = []


class Refused(Exception):
    def __init__(self, status: int, body: dict | str, headers: dict[str, str] | None = None):
        super().__init__(str(body))
        self.status, self.body, self.headers = status, body, headers or {}


class Handler(BaseHTTPRequestHandler):
    server: StandIn
    protocol_version = "HTTP/1.1"  # keep-alive, as a real API: requests reuses connections

    def log_message(self, format, *args):
        pass  # a benchmark's hundreds of calls a second would drown the terminal

    def do_GET(self):
        if self.path == "/_stand_in/stats":
            return self._answer(200, self.server.store.stats())
        if self.path == "/_stand_in/messages":
            with self.server.store.lock:
                return self._answer(200, list(self.server.store.messages))
        return self._answer(404, {"message": "Not found"})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/_stand_in/reset":
            self.server.store.reset()
            return self._answer(204, None)
        store, faults = self.server.store, self.server.faults
        with store.lock:
            store.calls += 1
            call = store.calls
        if faults.latency:
            time.sleep(faults.latency)
        try:
            if faults.fail_every and call % faults.fail_every == 0:
                retry = {"Retry-After": "1"} if faults.fail_status == 429 else {}
                raise Refused(faults.fail_status, {"message": "Injected failure"}, retry)
            if self.path in ("/email", "/email/batch"):
                messages, answer = self._postmark(body, batch=self.path == "/email/batch")
            elif m := re.fullmatch(r"/v3/([^/]+)/messages", self.path):
                messages, answer = self._mailgun(body, domain=m.group(1))
            else:
                raise Refused(404, {"message": "Not found"})
        except Refused as refused:
            with store.lock:
                store.refused_calls += 1
            return self._answer(refused.status, refused.body, refused.headers)
        with store.lock:
            store.recipients += len(messages)
            if store.keep:
                store.messages.extend(messages)
        if faults.answer_after:
            time.sleep(faults.answer_after)  # taken at once, answered late
        if faults.drop_every and call % faults.drop_every == 0:
            with store.lock:
                store.dropped_calls += 1
            self.close_connection = True
            self.connection.close()  # accepted, and the answer never comes
            return None
        return self._answer(200, answer)

    # --- Postmark: https://postmarkapp.com/developer/api/email-api ----------------

    def _postmark(self, body: bytes, *, batch: bool):
        if not self.headers.get("X-Postmark-Server-Token"):
            raise Refused(
                401, {"ErrorCode": 10, "Message": "No Account or Server API tokens were supplied"}
            )
        if batch and not self.server.store.keep:
            counted = postmark_counted(body)
            if counted is not None:
                return counted
        try:
            data = json.loads(body)
        except ValueError:
            raise Refused(
                422, {"ErrorCode": 402, "Message": "Received invalid JSON input."}
            ) from None
        items = data if batch else [data]
        if batch and not isinstance(data, list):
            raise Refused(422, {"ErrorCode": 402, "Message": "A batch is a JSON array."})
        if len(items) > POSTMARK_BATCH_MAX:
            raise Refused(
                422,
                {
                    "ErrorCode": 300,
                    "Message": f"Invalid email request: at most {POSTMARK_BATCH_MAX} "
                    "messages per batch.",
                },
            )
        messages, answers = [], []
        submitted = time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime())
        for item in items:
            to = [a.strip() for a in str(item.get("To") or "").split(",") if a.strip()]
            problem = ""
            if not to:
                problem = "Zero recipients specified"
            elif len(to) > POSTMARK_RECIPIENTS_MAX:
                problem = f"Invalid 'To' address: more than {POSTMARK_RECIPIENTS_MAX} recipients"
            elif not item.get("From"):
                problem = "Invalid 'From' address: ''."
            elif "Tag" in item and not isinstance(item["Tag"], str):
                problem = "Invalid 'Tag': one tag, a string."
            if problem:
                answers.append({"ErrorCode": 300, "Message": problem})
                continue
            message_id = str(uuid.uuid4())
            answers.append(
                {
                    "To": item["To"],
                    "SubmittedAt": submitted,
                    "MessageID": message_id,
                    "ErrorCode": 0,
                    "Message": "OK",
                }
            )
            if not self.server.store.keep:
                # Counting only, as for Mailgun: the benchmark's stand-in shares its cores.
                messages.extend(to)
                continue
            headers = {h["Name"]: h["Value"] for h in item.get("Headers") or []}
            for address in to:
                messages.append(
                    {
                        "esp": "postmark",
                        "message_id": message_id,
                        "to": address,
                        "subject": item.get("Subject", ""),
                        "text": item.get("TextBody", ""),
                        "html": item.get("HtmlBody", ""),
                        "headers": headers,
                        "metadata": item.get("Metadata") or {},
                        "tags": [item["Tag"]] if item.get("Tag") else [],
                    }
                )
        if not batch:
            answer = answers[0]
            if answer["ErrorCode"]:
                raise Refused(422, answer)
            return messages, answer
        return messages, answers

    # --- Mailgun: https://documentation.mailgun.com/docs/mailgun/api-reference/ -----

    def _mailgun(self, body: bytes, *, domain: str):
        auth = self.headers.get("Authorization", "")
        try:
            user, _, key = base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
        except ValueError:
            user, key = "", ""
        if not auth.startswith("Basic ") or user != "api" or not key:
            raise Refused(401, "Forbidden")
        fields = form_fields(self.headers.get("Content-Type", ""), body)
        to = fields.get("to", [])
        if not to:
            raise Refused(400, {"message": "'to' parameter is missing"})
        if len(to) > MAILGUN_RECIPIENTS_MAX:
            raise Refused(
                400, {"message": f"Too many recipients: at most {MAILGUN_RECIPIENTS_MAX}"}
            )
        if len(fields.get("o:tag", [])) > MAILGUN_TAGS_MAX:
            raise Refused(400, {"message": f"Too many tags: at most {MAILGUN_TAGS_MAX}"})
        variables = {}
        if "recipient-variables" in fields:
            try:
                variables = json.loads(fields["recipient-variables"][0])
            except ValueError:
                raise Refused(400, {"message": "recipient-variables is not valid JSON"}) from None
            missing = [a for a in to if _address(a) not in variables]
            if missing:
                raise Refused(400, {"message": f"No recipient-variables for {missing[0]}"})
        message_id = f"<{time.strftime('%Y%m%d%H%M%S')}.{uuid.uuid4().hex}@{domain}>"
        if not self.server.store.keep:
            # Counting only: filling in each reader's copy is the stand-in's work, not
            # the sender's, and would weigh on a benchmark sharing the machine.
            return to, {"id": message_id, "message": "Queued. Thank you."}
        messages = mailgun_received(fields, message_id=message_id)
        return messages, {"id": message_id, "message": "Queued. Thank you."}

    def _answer(self, status: int, body, headers: dict[str, str] | None = None):
        if isinstance(body, bytes):
            data = body  # JSON already
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = b"" if body is None else json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header(
                "Content-Type", "text/plain" if isinstance(body, str) else "application/json"
            )
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the caller gave up waiting (its read timeout)


# A message's "To" in a batch body as JSON writes it (json.dumps's separators, as anymail's
# and the digest's serialisers use). `o"` never occurs inside a JSON string (a quote there
# is escaped), so this matches keys only: the body's text and HTML are not decoded. A key
# "To" inside a message's Metadata would count as a message (the digest sets none).
_POSTMARK_TO = re.compile(rb'"To": ("(?:[^"\\]|\\.)*")')


def postmark_counted(body: bytes) -> tuple[list[str], bytes] | None:
    """A Postmark batch counted from its messages' "To" alone, and Postmark's answer to it.

    The benchmark's stand-in shares the machine's cores with the sender: decoding each
    call's 500 bodies (tens of MB) cost it about 50 µs a message, which Postmark's
    acceptance costs the sender nothing. A batch whose addresses are all within
    Postmark's limits is answered as Postmark answers one; anything else (None) is parsed
    whole and checked as usual. Other fields (From, Tag) are checked only there, which
    the tests run (keep).
    """
    if not body.startswith(b"["):
        return None
    found = _POSTMARK_TO.findall(body)
    if not found or len(found) > POSTMARK_BATCH_MAX:
        return None
    recipients: list[str] = []
    for raw in found:
        to = [a.strip() for a in json.loads(raw).split(",") if a.strip()]
        if not to or len(to) > POSTMARK_RECIPIENTS_MAX:
            return None
        recipients.extend(to)
    submitted = time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime()).encode()
    # Message ids: one random UUID a call, its last 12 hex digits the message's place.
    base = str(uuid.uuid4())[:24].encode()
    answer = b", ".join(
        b'{"To": %s, "SubmittedAt": "%s", "MessageID": "%s%012x", "ErrorCode": 0, '
        b'"Message": "OK"}' % (raw, submitted, base, number)
        for number, raw in enumerate(found)
    )
    return recipients, b"[" + answer + b"]"


def mailgun_received(fields: dict[str, list[str]], *, message_id: str = "") -> list[dict]:
    """Each reader's message as Mailgun delivers a batch: %recipient.x% filled in everywhere."""
    variables = json.loads(fields.get("recipient-variables", ["{}"])[0])
    first = {name: values[0] for name, values in fields.items()}
    messages = []
    for address in fields.get("to", []):
        own = variables.get(_address(address), {})

        def fill(text: str, own=own) -> str:
            return re.sub(r"%recipient\.([^%]+)%", lambda m: str(own.get(m.group(1), "")), text)

        messages.append(
            {
                "esp": "mailgun",
                "message_id": message_id,
                "to": _address(address),
                "subject": fill(first.get("subject", "")),
                "text": fill(first.get("text", "")),
                "html": fill(first.get("html", "")),
                "headers": {
                    name[2:]: fill(value) for name, value in first.items() if name[:2] == "h:"
                },
                "metadata": {
                    name[2:]: fill(value) for name, value in first.items() if name[:2] == "v:"
                },
                "tags": fields.get("o:tag", []),
            }
        )
    return messages


def form_fields(content_type: str, body: bytes | str) -> dict[str, list[str]]:
    """A form's fields, multipart or urlencoded, each a list."""
    if isinstance(body, str):
        body = body.encode()
    if content_type.startswith("multipart/form-data"):
        plain = _plain_multipart(content_type, body)
        if plain is not None:
            return plain
        parsed = message_from_bytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body, policy=HTTP
        )
        fields: dict[str, list[str]] = {}
        for part in parsed.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name:
                payload = part.get_payload(decode=True) or b""
                fields.setdefault(name, []).append(payload.decode("utf-8"))
        return fields
    return parse_qs(body.decode("utf-8"), keep_blank_values=True)


def _plain_multipart(content_type: str, body: bytes) -> dict[str, list[str]] | None:
    """The fields of a multipart form whose parts are plain UTF-8 values (the digest's
    Mailgun calls), read by splitting at the boundary: the email package's parser took
    about 0.2 s a call of 500 readers, on the cores the sender is measured on. None
    where a part is a file or has a transfer encoding (anymail's attachments)."""
    boundary = re.search(r'boundary="?([^";]+)"?', content_type)
    if boundary is None:
        return None
    parts = body.split(b"--" + boundary.group(1).encode())
    if len(parts) < 2 or not parts[-1].startswith(b"--"):
        return None
    fields: dict[str, list[str]] = {}
    for part in parts[1:-1]:
        head, separator, value = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        disposition = re.fullmatch(rb'Content-Disposition: form-data; name="([^"]*)"', head)
        if not separator or disposition is None or not value.endswith(b"\r\n"):
            return None
        name = disposition.group(1).decode()
        fields.setdefault(name, []).append(value[:-2].decode("utf-8"))
    return fields


def _address(text: str) -> str:
    """The bare address of `Name <address>` (Mailgun keys recipient-variables by it)."""
    match = re.search(r"<([^>]+)>", text)
    return (match.group(1) if match else text).strip()


class StandIn(ThreadingHTTPServer):
    daemon_threads = True
    # Concurrent batch calls from several workers: the default backlog of 5 refuses some.
    request_queue_size = 128

    def __init__(self, address=("127.0.0.1", 0), *, faults: Faults | None = None, keep=True):
        super().__init__(address, Handler)
        self.faults = faults or Faults()
        self.store = Store(keep=keep)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> StandIn:
        """Serve from a daemon thread (tests, the demo); stop with shutdown()."""
        threading.Thread(target=self.serve_forever, name="fake-esp", daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


# glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def keep_freed_memory() -> None:
    """Let glibc reuse the memory of one call's body for the next, instead of mapping it
    afresh each time (large blocks are mmap'ed and unmapped by default).

    A batch call's body is tens of MB, read, decoded and parsed: with each block mapped
    anew, the kernel's page faults cost the stand-in more CPU than parsing, on the cores
    the benchmark's worker shares. 32 MB is the highest threshold glibc takes.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return  # not glibc: its defaults stand
    libc.mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024)
    libc.mallopt(M_TRIM_THRESHOLD, 512 * 1024 * 1024)


def main() -> None:
    keep_freed_memory()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--fail-every", type=int, default=0, help="refuse every Nth call")
    parser.add_argument("--fail-status", type=int, default=503)
    parser.add_argument("--drop-every", type=int, default=0, help="accept, then hang up")
    parser.add_argument(
        "--answer-after", type=float, default=0.0, help="seconds from accepting to answering"
    )
    parser.add_argument(
        "--no-keep", action="store_true", help="count messages only (benchmarks at scale)"
    )
    args = parser.parse_args()
    faults = Faults(
        args.latency, args.fail_every, args.fail_status, args.drop_every, args.answer_after
    )
    server = StandIn((args.host, args.port), faults=faults, keep=not args.no_keep)
    print(f"fake ESP (Postmark, Mailgun) on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
