"""anymail's Postmark and Resend backends, sending each reader's own body in one batch call;
anymail's Mailgun backend, sending its form as multipart/form-data.

Both ESPs take a list of whole messages in one call (Postmark's /email/batch, 500;
Resend's /emails/batch, 100) but merge nothing without a stored template, and anymail
sends one body to every recipient of a batch. These backends are anymail's own, with
one change to the payload: a message carrying `reader_values` (address -> that reader's
merge values, render.recipient_values) and `reader_templates` (address -> the rendering of
that reader's followed set, merge fields in render.MERGE_FORMAT; one for the whole batch,
or several where small followed sets share a call) has each reader's subject and bodies, filled in,
put in their entry. Everything else (headers, metadata, the call, errors, per-recipient
status) is anymail's.

Mailgun's batch call carries one body and every reader's recipient-variables (about
1 KB each: links, List-Unsubscribe). anymail sends it as an urlencoded form, and
percent-encoding it byte by byte in Python (urllib's quote) took 30 to 80 µs of the
worker's CPU per reader; as multipart/form-data, which Mailgun's API takes the same
way (it is how anymail sends attachments), the values go as they are.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from functools import lru_cache

from anymail.backends.base import BasePayload
from anymail.backends.mailgun import EmailBackend as MailgunBackend
from anymail.backends.mailgun import MailgunPayload
from anymail.backends.postmark import EmailBackend as PostmarkBackend
from anymail.backends.postmark import PostmarkPayload
from anymail.backends.resend import EmailBackend as ResendBackend
from anymail.backends.resend import ResendPayload
from anymail.message import AnymailRecipientStatus
from anymail.utils import CaseInsensitiveCasePreservingDict, EmailAddress, parse_address_list

from newsroom.mail import PLAIN_ADDRESS, RenderedEmail
from subscriptions.digest.render import MERGE_FIELDS, cut_at_fields, personal_copy

# The text part is plain text: its greeting is the one not escaped for HTML.
TEXT_FIELDS = tuple(name for name in MERGE_FIELDS if name != "greeting_html")


class PlainRecipientsMixin:
    """A batch payload whose "to" list, when every entry is a plain address, is taken as
    written; any other list (a display name, quotes, a non-ASCII address) is anymail's to
    parse, with its errors. anymail parses each one through the email package's header
    parser: half of a 500-reader batch's payload CPU."""

    base_message_attrs = tuple(
        ("to", combiner, "parse_to") if name == "to" else (name, combiner, converter)
        for name, combiner, converter in BasePayload.base_message_attrs
    )

    def parse_to(self, addresses) -> list[EmailAddress]:
        if (
            isinstance(addresses, list | tuple)
            and addresses
            and all(isinstance(a, str) and PLAIN_ADDRESS.fullmatch(a) for a in addresses)
        ):
            return [PlainEmailAddress(a) for a in addresses]
        return parse_address_list(addresses, field="to")


class PlainEmailAddress(EmailAddress):
    """A plain address (newsroom.mail.PLAIN_ADDRESS) without a display name: its addr-spec
    and its whole form are the string it was read from. The email package works each out
    again on every read, and anymail reads them nine times a reader."""

    def __init__(self, address: str):
        username, _, domain = address.rpartition("@")
        super().__init__(username=username, domain=domain)
        self._plain = address

    @property
    def addr_spec(self) -> str:
        return self._plain

    @property
    def address(self) -> str:
        return self._plain


class PostmarkBatchPayload(PlainRecipientsMixin, PostmarkPayload):
    def serialize_data(self):
        values = getattr(self.message, "reader_values", None)
        if values is None or self.get_api_endpoint() != "email/batch":
            return super().serialize_data()
        # The batch's body is its rendering (or its few renderings) 500 times over, a few
        # links apart: each rendering is encoded as JSON once, in pieces, and each
        # reader's entry joins those pieces with their own values, encoded alone. The
        # bytes are what json.dumps would write (ASCII, so the body is sent as it is,
        # with no copy made to encode it).
        templates = self.message.reader_templates
        # One list of pieces joined once: the body is allocated and copied a single time,
        # the renderings' pieces being shared bytes (not one copy per reader).
        parts: list[bytes] = [b"["]
        entry_end = self._entry_end()
        for number, to in enumerate(self.to_emails):
            own = {
                name: _json_string(value).encode("ascii")
                for name, value in values[to.addr_spec].items()
            }
            subject, text, html = _json_pieces(templates[to.addr_spec])
            parts.append(b', {"Subject": "' if number else b'{"Subject": "')
            _fill(parts, subject, own)
            parts.append(b'", "TextBody": "')
            _fill(parts, text, own)
            parts.append(b'", "HtmlBody": "')
            _fill(parts, html, own)
            parts.append(entry_end(to))
        parts.append(b"]")
        return b"".join(parts)

    def _entry_end(self) -> Callable[[EmailAddress], bytes]:
        """What closes each reader's entry after its bodies: the rest of what anymail's
        data_for_recipient gives them, as JSON.

        The fields every reader shares (From, Tag, the List-Id...) are encoded once for
        the batch; each reader's "To", metadata and headers, merged as data_for_recipient
        merges them, on their own. data_for_recipient copied and encoded the whole entry
        for every reader, its headers through a case-insensitive dict: about a tenth of a
        500-reader call's CPU.
        """
        if self.merge_data:  # a TemplateModel per reader: anymail's own way
            return self._anymails_entry_end
        own_fields = ("To", "Metadata", "Headers")
        shared = self.serialize_json(
            {
                key: value
                for key, value in self.data.items()
                if key not in ("Subject", "TextBody", "HtmlBody", *own_fields)
            }
        )[1:-1]
        start = b'", ' + (shared + ", ").encode("ascii") if shared else b'", '
        metadata = self.data.get("Metadata")
        headers = self.data.get("Headers")
        by_name = {item["Name"].lower(): (item["Name"], item["Value"]) for item in headers or []}

        def entry_end(to: EmailAddress) -> bytes:
            own: dict[str, object] = {"To": to.address}
            reader_metadata = (self.merge_metadata or {}).get(to.addr_spec)
            if reader_metadata is not None:
                own["Metadata"] = {**metadata, **reader_metadata} if metadata else reader_metadata
            elif metadata is not None:
                own["Metadata"] = metadata
            reader_headers = self.merge_headers.get(to.addr_spec)
            if reader_headers is None:
                if headers is not None:
                    own["Headers"] = headers
            else:
                if headers is not None:  # the batch's, each replaced by the reader's own
                    merged = dict(by_name)
                    for name, value in reader_headers.items():
                        merged[name.lower()] = (name, value)
                    reader_headers = dict(merged.values())
                own["Headers"] = [
                    {"Name": name, "Value": value} for name, value in reader_headers.items()
                ]
            return start + self.serialize_json(own)[1:].encode("ascii")

        return entry_end

    def _anymails_entry_end(self, to: EmailAddress) -> bytes:
        data = self.data_for_recipient(to)
        for key in ("Subject", "TextBody", "HtmlBody"):
            data.pop(key, None)
        return b'", ' + self.serialize_json(data)[1:].encode("ascii") if data else b'"}'


def _json_string(value: str) -> str:
    """`value` as the inside of a JSON string (json.dumps's escapes, without the quotes)."""
    return json.dumps(value)[1:-1]


@lru_cache(maxsize=32)
def _json_pieces(rendered: RenderedEmail) -> tuple[list[bytes | str], ...]:
    """Subject, text and HTML cut at their merge fields, the text between encoded for JSON.

    Even places hold the email's own text as JSON-escaped ASCII bytes, odd ones the names
    of merge fields.
    """

    def encoded(content: str, names: tuple[str, ...]) -> list[bytes | str]:
        pieces = cut_at_fields(content, names)
        return [_json_string(p).encode("ascii") if i % 2 == 0 else p for i, p in enumerate(pieces)]

    return (
        encoded(rendered.subject, MERGE_FIELDS),
        encoded(rendered.text, TEXT_FIELDS),
        encoded(rendered.html, MERGE_FIELDS),
    )


def _fill(parts: list[bytes], pieces: list[bytes | str], own: dict[str, bytes]) -> None:
    """Append the inside of a JSON string of `pieces`, each merge field's place taken by
    the reader's value."""
    parts.extend(p if i % 2 == 0 else own[p] for i, p in enumerate(pieces))


class PostmarkBatchBackend(PostmarkBackend):
    def build_message_payload(self, message, defaults):
        return PostmarkBatchPayload(message, defaults, self)

    def parse_recipient_status(self, response, payload, message):
        """anymail's reading of a batch answer, without parsing each "To" back into an address.

        Where every message was accepted as it was sent ("OK", the To it was given, in
        order), each reader is "sent" with their message's id, as anymail reads it; the
        address parsing that costs anymail about a third of a digest message's CPU is not
        needed to know whose answer is whose. Any other answer is anymail's to read.
        """
        answers = _accepted_in_order(response, payload)
        if answers is None:
            return super().parse_recipient_status(response, payload, message)
        statuses = CaseInsensitiveCasePreservingDict()
        for to, answer in zip(payload.to_emails, answers, strict=True):
            statuses[to.addr_spec] = AnymailRecipientStatus(
                message_id=answer["MessageID"], status="sent"
            )
        return dict(statuses)


def _accepted_in_order(response, payload) -> list[dict] | None:
    """The batch answer's entries if each one accepted its message as sent, else None."""
    if payload.cc_and_bcc_emails or response.status_code != 200:
        return None
    try:
        answers = response.json()
    except ValueError:
        return None
    if not isinstance(answers, list) or len(answers) != len(payload.to_emails):
        return None
    for to, answer in zip(payload.to_emails, answers, strict=True):
        if not (
            isinstance(answer, dict)
            and answer.get("ErrorCode", 0) == 0
            and answer.get("Message") == "OK"
            and answer.get("To") == to.address
            and "MessageID" in answer
        ):
            return None
    return answers


class ResendBatchPayload(PlainRecipientsMixin, ResendPayload):
    def serialize_data(self):
        serialized = super().serialize_data()
        values = getattr(self.message, "reader_values", None)
        if not values or not self.is_batch():
            return serialized
        entries = json.loads(serialized)
        # Entries are in the order of the message's "to" (anymail's ResendPayload).
        for entry, to in zip(entries, self.to_recipients, strict=True):
            copy = personal_copy(
                rendered=self.message.reader_templates[to.addr_spec], values=values[to.addr_spec]
            )
            entry.update(subject=copy.subject, text=copy.text, html=copy.html)
        return self.serialize_json(entries)


class ResendBatchBackend(ResendBackend):
    def build_message_payload(self, message, defaults):
        return ResendBatchPayload(message, defaults, self)


class MailgunMultipartPayload(PlainRecipientsMixin, MailgunPayload):
    def get_request_params(self, api_url):
        params = super().get_request_params(api_url)
        if params["files"]:
            return params  # attachments: requests already sends it all as multipart
        # The fields requests would urlencode, as it reads them (requests.models
        # RequestEncodingMixin._encode_params): a list is a repeated field, None is left out.
        fields = [
            (name, value if isinstance(value, str | bytes) else str(value))
            for name, values in params["data"].items()
            for value in (values if isinstance(values, list | tuple) else [values])
            if value is not None
        ]
        boundary = os.urandom(16).hex()
        params["data"] = _multipart(fields, boundary)
        params["headers"] = {
            **(params["headers"] or {}),
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        }
        return params


class MailgunMultipartBackend(MailgunBackend):
    def build_message_payload(self, message, defaults):
        return MailgunMultipartPayload(message, defaults, self)


def _multipart(fields: list[tuple[str, str | bytes]], boundary: str) -> bytes:
    """`fields` as a multipart/form-data body (RFC 7578), each value as it is (UTF-8).

    The boundary is 128 random bits, as requests' and urllib3's are; a field's name has
    its quote and line breaks percent-encoded, as the HTML standard's form encoding does.
    """
    body = io.BytesIO()
    for name, value in fields:
        name = name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
        body.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        )
        body.write(value if isinstance(value, bytes) else value.encode())
        body.write(b"\r\n")
    body.write(f"--{boundary}--\r\n".encode())
    return body.getvalue()
