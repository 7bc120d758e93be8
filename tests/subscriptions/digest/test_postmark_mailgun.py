"""The digest through anymail's real Postmark and Mailgun backends, the network cut beneath them."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from email import message_from_bytes
from urllib.parse import parse_qs

import pytest
import requests
import responses
from django.core.mail import EmailMultiAlternatives, get_connection

from bench.fake_esp import form_fields, mailgun_received
from subscriptions.digest.esp import esp_profile
from subscriptions.models import Delivery
from subscriptions.selectors import suppressed_among
from tests.subscriptions.digest.helpers import plan_and_send, states, subscribe
from tests.subscriptions.digest.providers import (
    assert_each_reader_got_their_own,
    events_of,
    post_webhook,
    postmark_received,
    use_esp,
)

POSTMARK_BATCH = "https://api.postmarkapp.com/email/batch"
MAILGUN_MESSAGES = "https://api.mailgun.net/v3/newsroom.example/messages"
MAILGUN_SIGNING_KEY = "mailgun-signing-key"


@pytest.fixture
def readers(newsletter, headlines):
    return [subscribe(newsletter, name=f"Reader {n}") for n in range(3)]


# --- Postmark ---------------------------------------------------------------------


@pytest.fixture
def postmark(settings):
    use_esp(settings, "anymail.backends.postmark.EmailBackend", POSTMARK_SERVER_TOKEN="token")
    with responses.RequestsMock() as mocked:

        def accept(request):
            answers = [
                {"To": item["To"], "MessageID": str(uuid.uuid4()), "ErrorCode": 0, "Message": "OK"}
                for item in json.loads(request.body)
            ]
            return 200, {}, json.dumps(answers)

        mocked.add_callback(responses.POST, POSTMARK_BATCH, callback=accept)
        yield mocked


def test_postmark_gets_each_reader_their_own_message_in_one_batch_call(
    postmark, readers, newsletter, django_capture_on_commit_callbacks
):
    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    assert len(postmark.calls) == 1
    received = postmark_received(postmark)
    assert {m["tag"] for m in received} == {newsletter.slug}  # one tag: all Postmark takes
    assert_each_reader_got_their_own(received, readers, newsletter)
    assert set(states()) == {Delivery.State.SENT}


def test_a_postmark_reader_named_like_a_merge_field_is_greeted_by_that_name(
    postmark, newsletter, headlines, django_capture_on_commit_callbacks
):
    reader = subscribe(newsletter, name='Dana "{{unsubscribe_url}}" <Ḥaddad>')

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    (received,) = postmark_received(postmark)
    assert 'Good morning, Dana "{{unsubscribe_url}}" <Ḥaddad>' in received["text"]
    assert "Good morning, Dana &quot;{{unsubscribe_url}}&quot; &lt;Ḥaddad&gt;" in received["html"]
    assert received["to"] == reader.email


def test_postmark_takes_1200_readers_in_three_calls_of_at_most_500(
    postmark, newsletter, headlines, settings, django_capture_on_commit_callbacks
):
    settings.ESP_BATCH_SIZE = 1200
    readers = [subscribe(newsletter) for _ in range(1200)]

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    sizes = [len(json.loads(call.request.body)) for call in postmark.calls]
    assert sizes == [500, 500, 200]
    received = postmark_received(postmark)
    assert sorted(m["to"] for m in received) == sorted(r.email for r in readers)
    assert states()[Delivery.State.SENT] == 1200


def test_a_postmark_delivery_open_and_bounce_find_the_readers_delivery(
    postmark, readers, django_capture_on_commit_callbacks
):
    plan_and_send(django_capture_on_commit_callbacks, send_now=True)
    first, second = sorted(postmark_received(postmark), key=lambda m: m["to"])[:2]

    # Webhook bodies as in Postmark's docs ("Delivery", "Open" and "Bounce" webhooks).
    for body in (
        {
            "RecordType": "Delivery",
            "MessageID": "m-1",
            "Recipient": first["to"],
            "DeliveredAt": "2026-11-30T06:00:01Z",
            "Details": "Test delivery webhook details",
            "Tag": first["tag"],
            "Metadata": first["metadata"],
        },
        {
            "RecordType": "Open",
            "MessageID": "m-1",
            "Recipient": first["to"],
            "ReceivedAt": "2026-11-30T06:10:00Z",
            "FirstOpen": True,
            "Metadata": first["metadata"],
        },
        {
            "RecordType": "Bounce",
            "ID": 4323372036854775807,
            "Type": "HardBounce",
            "TypeCode": 1,
            "MessageID": "m-2",
            "Email": second["to"],
            "BouncedAt": "2026-11-30T06:00:02Z",
            "Description": "The server was unable to deliver your message",
            "Metadata": second["metadata"],
        },
    ):
        assert post_webhook("postmark", json.dumps(body)).status_code == 200

    assert events_of(first["to"]) == ["delivered", "opened"]
    assert events_of(second["to"]) == ["bounced"]
    assert suppressed_among([second["to"]]) == {second["to"]}


# --- Mailgun ----------------------------------------------------------------------


@pytest.fixture
def mailgun(settings):
    use_esp(
        settings,
        "anymail.backends.mailgun.EmailBackend",
        MAILGUN_API_KEY="key",
        MAILGUN_SENDER_DOMAIN="newsroom.example",
        MAILGUN_WEBHOOK_SIGNING_KEY=MAILGUN_SIGNING_KEY,
    )
    with responses.RequestsMock() as mocked:
        mocked.add(
            responses.POST,
            MAILGUN_MESSAGES,
            json={"id": "<20261130.1@newsroom.example>", "message": "Queued. Thank you."},
        )
        yield mocked


def mailgun_calls(mocked) -> list[dict[str, list[str]]]:
    return [
        form_fields(call.request.headers["Content-Type"], call.request.body)
        for call in mocked.calls
    ]


def test_mailgun_merges_each_readers_links_in_one_call_without_a_merge_setting(
    mailgun, readers, newsletter, django_capture_on_commit_callbacks
):
    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    (fields,) = mailgun_calls(mailgun)
    assert "%recipient.unsubscribe_url%" in fields["text"][0]  # Mailgun's own syntax
    assert len(fields["o:tag"]) <= 3
    assert_each_reader_got_their_own(mailgun_received(fields), readers, newsletter)


def test_mailgun_takes_at_most_1000_recipients_a_call(
    mailgun, newsletter, headlines, settings, django_capture_on_commit_callbacks
):
    settings.ESP_BATCH_SIZE = 1500
    for _ in range(1500):
        subscribe(newsletter)

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    assert [len(fields["to"]) for fields in mailgun_calls(mailgun)] == [1000, 500]
    assert states()[Delivery.State.SENT] == 1500


def test_mailgun_gets_as_multipart_the_fields_anymail_would_urlencode(settings):
    use_esp(
        settings,
        "anymail.backends.mailgun.EmailBackend",
        MAILGUN_API_KEY="key",
        MAILGUN_SENDER_DOMAIN="newsroom.example",
    )
    message = EmailMultiAlternatives(
        subject="Zoë's digest, %recipient.greeting%",
        body="%recipient.greeting%\r\n\u062e\u0628\u0631 \u2014 100% & more",
        from_email="Mideast Daily <daily@newsroom.example>",
        to=["dana@readers.example", "Bé <be@readers.example>"],
        headers={"X-Odd": 'a "quoted" value'},
    )
    message.attach_alternative("<p>%recipient.greeting_html% é</p>", "text/html")
    message.tags = ["digest", "mideast-daily"]
    message.metadata = {"edition_id": "7", "newsletter": "mideast-daily"}
    message.merge_data = {
        "dana@readers.example": {"greeting": "Hi Dana", "greeting_html": "Hi &amp; hello"},
        "be@readers.example": {"greeting": "Salut Bé", "greeting_html": "Salut"},
    }
    message.merge_headers = {
        address: {"List-Unsubscribe": f"<https://news.example/u/{n}?a=1&b=%2F>"}
        for n, address in enumerate(message.merge_data)
    }
    message.merge_metadata = {address: {"delivery_id": address} for address in message.merge_data}

    def request_through(backend_path: str) -> requests.PreparedRequest:
        backend = get_connection(backend_path)
        payload = backend.build_message_payload(message, backend.send_defaults)
        return requests.Request(**payload.get_request_params(backend.api_url)).prepare()

    ours = request_through(esp_profile().batch_backend)
    anymails = request_through("anymail.backends.mailgun.EmailBackend")

    content_type = ours.headers["Content-Type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    # Read back by the email package's MIME parser, apart from the stand-in's reading.
    parsed = message_from_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + ours.body)
    fields: dict[str, list[str]] = {}
    for part in parsed.get_payload():
        name = part.get_param("name", header="content-disposition")
        fields.setdefault(name, []).append(part.get_payload(decode=True).decode())
    assert fields == parse_qs(anymails.body, keep_blank_values=True)
    assert form_fields(content_type, ours.body) == fields


def mailgun_event(event: str, message: dict, **data) -> str:
    """A Mailgun webhook body (Mailgun docs, "Webhooks: payload"), signed with our key."""
    timestamp, token = str(int(time.time())), uuid.uuid4().hex
    signature = hmac.new(
        MAILGUN_SIGNING_KEY.encode(), f"{timestamp}{token}".encode(), hashlib.sha256
    ).hexdigest()
    return json.dumps(
        {
            "signature": {"timestamp": timestamp, "token": token, "signature": signature},
            "event-data": {
                "event": event,
                "id": uuid.uuid4().hex,
                "timestamp": time.time(),
                "recipient": message["to"],
                "message": {"headers": {"message-id": "20261130.1@newsroom.example"}},
                "user-variables": message["metadata"],
                "tags": message["tags"],
                **data,
            },
        }
    )


def test_a_mailgun_delivery_open_and_complaint_find_the_readers_delivery(
    mailgun, readers, django_capture_on_commit_callbacks
):
    plan_and_send(django_capture_on_commit_callbacks, send_now=True)
    (fields,) = mailgun_calls(mailgun)
    first, second = sorted(mailgun_received(fields), key=lambda m: m["to"])[:2]

    for body in (
        mailgun_event("delivered", first, **{"delivery-status": {"code": 250}}),
        mailgun_event("opened", first),
        mailgun_event("complained", second),
    ):
        assert post_webhook("mailgun", body).status_code == 200

    assert events_of(first["to"]) == ["delivered", "opened"]
    assert events_of(second["to"]) == ["complained"]
