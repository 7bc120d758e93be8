"""What each reader receives from an ESP, and the checks every ESP's digest must pass."""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from urllib.parse import urlsplit

from django.test import Client, TestCase

from subscriptions.digest.ledger import parse_reader_key
from subscriptions.models import DeliveryBatch, Subscriber, Subscription, TrackingEvent

WEBHOOK_AUTH = "hook:secret"
UNSUBSCRIBE_URL = re.compile(r"https://news\.example/[^\s\"'<>]*unsubscribe/[^\s\"'<>/]+/")
# What a merge field left unfilled looks like, in any ESP's syntax.
UNFILLED = re.compile(r"%recipient\.|\{\{|\[\[var:")


def use_esp(settings, backend: str, **anymail: str) -> None:
    """Send through anymail's real `backend`, with only the settings its README row names."""
    settings.EMAIL_BACKEND = backend
    settings.ANYMAIL = {**anymail, "WEBHOOK_SECRET": WEBHOOK_AUTH}
    settings.ESP_MERGE_FIELD_FORMAT = ""


def postmark_received(mocked) -> list[dict]:
    """Each message Postmark took in a batch call, as assert_each_reader_got_their_own reads it."""
    return [
        {
            "to": item["To"],
            "subject": item["Subject"],
            "text": item["TextBody"],
            "html": item["HtmlBody"],
            "headers": {h["Name"]: h["Value"] for h in item["Headers"]},
            "metadata": item["Metadata"],
            "tag": item.get("Tag"),
        }
        for call in mocked.calls
        if call.request.url.endswith("/email/batch") and call.response.status_code == 200
        for item in json.loads(call.request.body)
    ]


def assert_each_reader_got_their_own(received: list[dict], readers: list, newsletter) -> None:
    """Each reader one message, with their own link in the body and in List-Unsubscribe.

    `received`: one dict per message as the ESP delivers it (to, subject, text, html,
    headers, metadata). The first reader's link is followed and must unsubscribe them only.
    """
    counts = Counter(message["to"].lower() for message in received)
    assert counts == Counter(reader.email for reader in readers)
    links = set()
    for message in received:
        headers = {name.lower(): value for name, value in message["headers"].items()}
        in_header = headers["list-unsubscribe"].split(",")[0].strip()[1:-1]
        assert headers["list-unsubscribe-post"] == "List-Unsubscribe=One-Click"
        assert UNSUBSCRIBE_URL.findall(message["text"]) == [in_header]
        assert in_header in message["html"]
        assert not UNFILLED.search(message["text"] + message["html"] + message["subject"])
        # The reader key names the batch and the reader the message went to.
        batch_id, subscriber_id = parse_reader_key(message["metadata"]["delivery_id"])
        assert subscriber_id in DeliveryBatch.objects.get(pk=batch_id).readers
        assert Subscriber.objects.get(pk=subscriber_id).email == message["to"].lower()
        links.add(in_header)
    assert len(links) == len(readers)

    first = next(m for m in received if m["to"].lower() == readers[0].email)
    link = UNSUBSCRIBE_URL.findall(first["text"])[0]
    response = Client().post(
        urlsplit(link).path,
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    active = set(
        Subscription.objects.filter(
            newsletter=newsletter, status=Subscription.Status.ACTIVE
        ).values_list("subscriber__email", flat=True)
    )
    assert readers[0].email not in active
    assert active >= {reader.email for reader in readers[1:]}


def post_webhook(esp: str, body, content_type: str = "application/json", **headers):
    """POST `body` to the project's anymail tracking URL of `esp`, with the webhook's auth."""
    auth = base64.b64encode(WEBHOOK_AUTH.encode()).decode()
    # The event is processed by a task queued on commit (the outbox), as after a real request.
    with TestCase.captureOnCommitCallbacks(execute=True):
        return Client().post(
            f"/webhooks/anymail/{esp}/tracking/",
            data=body,
            content_type=content_type,
            HTTP_AUTHORIZATION=f"Basic {auth}",
            **headers,
        )


def events_of(email: str) -> list[str]:
    """The tracking events attached to the reader's copy: found in its batch."""
    reader = Subscriber.objects.get(email=email)
    return sorted(
        event.event_type
        for event in TrackingEvent.objects.filter(recipient=email).select_related("batch")
        if event.batch is not None and reader.pk in event.batch.readers
    )
