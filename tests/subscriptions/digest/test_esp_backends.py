"""Our Postmark batch backend reads an answer as anymail's own backend does."""

from __future__ import annotations

import json

import pytest
import requests
from anymail.backends.mailgun import EmailBackend as MailgunBackend
from anymail.backends.postmark import EmailBackend as PostmarkBackend
from anymail.backends.resend import EmailBackend as ResendBackend
from anymail.exceptions import AnymailInvalidAddress
from anymail.message import AnymailMessage
from anymail.utils import EmailAddress

from newsroom.mail import RenderedEmail
from subscriptions.digest.esp_backends import (
    MailgunMultipartBackend,
    PostmarkBatchBackend,
    ResendBatchBackend,
)

READERS = ["one@mail.example", "Two <two@mail.example>", "three@mail.example"]
INACTIVE = (
    "You tried to send to a recipient that has been marked as inactive.\n"
    "Found inactive addresses: three@mail.example.\n"
    "Inactive recipients are ones that have generated a hard bounce or a spam complaint."
)


def _answer(entries: list[dict]) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response._content = json.dumps(entries).encode()
    response.headers["Content-Type"] = "application/json"
    return response


def _statuses(backend_class, entries: list[dict]) -> dict[str, tuple]:
    backend = backend_class(server_token="token")
    message = AnymailMessage(from_email="news@mail.example", to=READERS)
    message.merge_metadata = {address: {} for address in READERS}  # a batch send
    payload = backend.build_message_payload(message, backend.send_defaults)
    statuses = backend.parse_recipient_status(_answer(entries), payload, message)
    return {address: (s.status, s.message_id) for address, s in statuses.items()}


def _entry(to: str, number: int, **changes) -> dict:
    return {"To": to, "MessageID": f"id-{number}", "ErrorCode": 0, "Message": "OK", **changes}


@pytest.mark.parametrize(
    "entries",
    [
        [_entry(to, n) for n, to in enumerate(READERS)],
        # Postmark's "To" as it was sent, but in another order: anymail matches by address.
        [_entry(to, n) for n, to in reversed(list(enumerate(READERS)))],
        [
            *(_entry(to, n) for n, to in enumerate(READERS[:2])),
            _entry(READERS[2], 2, Message=("Message accepted, but delivery may be delayed.")),
        ],
        [
            *(_entry(to, n) for n, to in enumerate(READERS[:2])),
            {"ErrorCode": 406, "Message": INACTIVE},
        ],
        [_entry(to, n) for n, to in enumerate(READERS[:2])],  # one answer missing
    ],
    ids=["all-accepted", "reordered", "delayed", "inactive", "short"],
)
def test_each_readers_status_is_what_anymail_reads(entries):
    ours = _statuses(PostmarkBatchBackend, entries)

    assert ours == _statuses(PostmarkBackend, entries)
    assert list(ours) == ["one@mail.example", "two@mail.example", "three@mail.example"]


def test_an_answer_accepting_every_message_as_sent_is_read_without_parsing_addresses(
    monkeypatch,
):
    # Parsing each "To" back was about a third of a digest message's CPU in the worker.
    parsed = []
    monkeypatch.setattr(
        "anymail.backends.postmark.parse_address_list",
        lambda *args, **kwargs: parsed.append(args) or [],
    )

    statuses = _statuses(PostmarkBatchBackend, [_entry(to, n) for n, to in enumerate(READERS)])

    assert parsed == []
    assert statuses["two@mail.example"] == ("sent", "id-1")


ADDRESSES = [
    "reader@mail.example",
    "First.Last+digest@Mail-Box.example.org",
    "o'brien@mail.example",
    "Two <two@mail.example>",
    '"quoted reader"@mail.example',
    "قارئ@mail.example",
    "reader@bücher.example",
]


@pytest.mark.parametrize(
    ("ours", "anymails"),
    [
        (PostmarkBatchBackend, PostmarkBackend),
        (MailgunMultipartBackend, MailgunBackend),
        (ResendBatchBackend, ResendBackend),
    ],
)
@pytest.mark.parametrize("to", [ADDRESSES[:3], ADDRESSES], ids=["plain", "mixed"])
def test_each_batch_backend_reads_its_readers_addresses_as_anymail_does(ours, anymails, to):
    def payload(backend_class):
        backend = backend_class(server_token="token", api_key="key", sender_domain="mail.example")
        message = AnymailMessage(from_email="news@mail.example", to=to)
        message.merge_metadata = {address: {} for address in to}
        return backend.build_message_payload(message, backend.send_defaults)

    def described(payload):
        addresses = getattr(payload, "to_emails", None) or getattr(payload, "to_recipients", [])
        return payload.data, [
            (a.display_name, a.username, a.domain, a.addr_spec, a.address)
            if isinstance(a, EmailAddress)
            else a
            for a in addresses
        ]

    assert described(payload(ours)) == described(payload(anymails))


def test_a_bad_address_among_plain_ones_is_refused_as_anymail_refuses_it():
    backend = PostmarkBatchBackend(server_token="token")
    message = AnymailMessage(from_email="news@mail.example", to=["one@mail.example", "two@"])

    with pytest.raises(AnymailInvalidAddress, match="in `to`"):
        backend.build_message_payload(message, backend.send_defaults)


@pytest.mark.parametrize("batch_headers", [{"List-Id": "<daily.news.example>"}, {}])
@pytest.mark.parametrize("batch_metadata", [{"edition_id": "7"}, {}])
def test_each_postmark_entry_is_what_anymail_gives_its_reader_with_their_own_copy(
    batch_headers, batch_metadata
):
    to = ["one@mail.example", "Two <two@mail.example>", "three@mail.example"]
    rendered = RenderedEmail(
        subject="Today, {{greeting}}", text="{{greeting}}\n{{unsubscribe_url}}", html="<p>{{x}}</p>"
    )
    backend = PostmarkBatchBackend(server_token="token")
    message = AnymailMessage(
        from_email="news@mail.example", to=to, headers=batch_headers, tags=["digest"]
    )
    message.metadata = batch_metadata
    message.merge_metadata = {
        f"{name}@mail.example": {"delivery_id": f"1:{n}"}
        for n, name in enumerate(["one", "two", "three"])
    }
    # A reader's header replaces the batch's of the same name, whatever its case.
    message.merge_headers = {
        "one@mail.example": {"List-Unsubscribe": "<https://one>", "list-id": "<theirs>"},
        "two@mail.example": {"List-Unsubscribe": "<https://two>"},
    }
    message.reader_values = {
        address: {"greeting": f"Hello {address}", "unsubscribe_url": f"https://u/{address}"}
        for address in message.merge_metadata
    }
    message.reader_templates = dict.fromkeys(message.merge_metadata, rendered)
    payload = backend.build_message_payload(message, backend.send_defaults)

    entries = json.loads(payload.serialize_data())

    for entry, address in zip(entries, payload.to_emails, strict=True):
        anymails = payload.data_for_recipient(address)
        values = message.reader_values[address.addr_spec]
        assert entry == {
            **anymails,
            "Subject": f"Today, {values['greeting']}",
            "TextBody": f"{values['greeting']}\n{values['unsubscribe_url']}",
            "HtmlBody": "<p>{{x}}</p>",
        }
    assert entries[0]["Headers"][0]["Name"] == ("list-id" if batch_headers else "List-Unsubscribe")
