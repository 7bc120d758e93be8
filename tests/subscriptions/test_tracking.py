"""ESP tracking events through django-anymail: bounces, complaints, unsubscribes, stored once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from anymail.signals import AnymailTrackingEvent, tracking
from django.test import TestCase
from django.utils import timezone

from newsroom import outbox
from newsroom.celery import app as celery_app
from newsroom.models import OutboxMessage
from subscriptions.models import Edition, Subscription, Suppression, TrackingEvent
from subscriptions.selectors import suppressed_among
from subscriptions.services import confirmation_email_send
from tests.subscriptions.factories import SubscriberFactory, SubscriptionFactory
from tests.subscriptions.helpers import signup

pytestmark = pytest.mark.django_db

EMAIL = "reader@mail.example"


@pytest.fixture
def member(daily):
    return SubscriptionFactory(newsletter=daily, subscriber__email=EMAIL)


def send(event_type: str, *, event_id: str | None = "ev-1", when: datetime | None = None, **fields):
    event = AnymailTrackingEvent(
        event_type=event_type,
        timestamp=when or timezone.now(),
        event_id=event_id,
        recipient=fields.pop("recipient", EMAIL),
        message_id=fields.pop("message_id", "msg-1"),
        esp_event=fields.pop("esp_event", {"raw": event_type}),
        **fields,
    )
    # The webhook's request commits here, as outside a test: its outbox row is sent on commit.
    with TestCase.captureOnCommitCallbacks(execute=True):
        tracking.send(sender=object, event=event, esp_name="TestESP")
    return event


def test_a_hard_bounce_suppresses_at_once(member):
    send("bounced", reject_reason="bounced", description="mailbox unknown")

    assert suppressed_among([EMAIL]) == {EMAIL}
    assert Suppression.objects.get().reason == Suppression.Reason.HARD_BOUNCE
    stored = TrackingEvent.objects.get()
    assert stored.event_type == "bounced"
    assert stored.outcome.startswith("suppressed")
    assert stored.processed_at is not None


def test_a_rejection_suppresses(member):
    send("rejected", reject_reason="invalid")

    assert Suppression.objects.get().reason == Suppression.Reason.HARD_BOUNCE


def test_a_complaint_suppresses_for_every_newsletter(member, mailoutbox):
    send("complained", reject_reason="spam")

    assert Suppression.objects.get().reason == Suppression.Reason.COMPLAINT
    # Nothing more reaches the address, whatever is sent.
    member.status = Subscription.Status.PENDING
    member.save()
    assert confirmation_email_send(subscriber_id=member.subscriber_id) is False
    assert mailoutbox == []


def test_soft_bounces_suppress_after_three_in_thirty_days(member):
    now = timezone.now()
    send("deferred", event_id="s1", when=now - timedelta(days=40))
    send("deferred", event_id="s2", when=now - timedelta(days=20))
    send("deferred", event_id="s3", when=now - timedelta(days=1))
    assert not suppressed_among([EMAIL])

    send("deferred", event_id="s4", when=now)

    assert Suppression.objects.get().reason == Suppression.Reason.SOFT_BOUNCES
    assert TrackingEvent.objects.get(esp_event_id="s4").outcome.startswith("suppressed after 3")


def test_an_esp_unsubscribe_unsubscribes(member):
    send("unsubscribed", reject_reason="unsubscribed")

    member.refresh_from_db()
    assert member.status == Subscription.Status.UNSUBSCRIBED
    assert member.subscriber.consent_records.get().source == "esp:TestESP"
    assert not suppressed_among([EMAIL])


@pytest.mark.parametrize(
    "event_type", ["delivered", "opened", "clicked", "queued", "sent", "unknown"]
)
def test_other_events_are_stored_and_change_nothing(member, event_type):
    send(event_type)

    assert TrackingEvent.objects.get().outcome == "stored"
    assert not Suppression.objects.exists()
    member.refresh_from_db()
    assert member.status == Subscription.Status.ACTIVE


def test_the_same_event_is_stored_once(member):
    send("bounced", event_id="same")
    send("bounced", event_id="same")

    assert TrackingEvent.objects.count() == 1


def test_an_event_without_id_gets_a_stable_one(member):
    when = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    send("delivered", event_id=None, when=when)
    send("delivered", event_id=None, when=when)
    send("delivered", event_id=None, when=when + timedelta(seconds=1))

    ids = list(TrackingEvent.objects.values_list("esp_event_id", flat=True))
    assert len(ids) == 2
    assert all(i.startswith("derived:") for i in ids)


def test_edition_metadata_links_the_event(member, daily):
    edition = Edition.objects.create(
        newsletter=daily, date=date(2026, 3, 1), cutoff_end=timezone.now()
    )

    send("opened", metadata={"edition_id": str(edition.pk)})

    assert TrackingEvent.objects.get().edition == edition


def test_an_event_for_an_unknown_address_is_stored(daily):
    send("complained", recipient="stranger@mail.example")

    assert suppressed_among(["stranger@mail.example"]) == {"stranger@mail.example"}


# --- a real ESP payload through anymail's webhook URL -----------------------------------------

# Postmark's bounce webhook body (https://postmarkapp.com/developer/webhooks/bounce-webhook).
POSTMARK_HARD_BOUNCE = {
    "RecordType": "Bounce",
    "MessageStream": "broadcast",
    "ID": 4323372036854775807,
    "Type": "HardBounce",
    "TypeCode": 1,
    "Name": "Hard bounce",
    "Tag": "digest",
    "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
    "Metadata": {"edition_id": "", "subscriber_id": "1"},
    "ServerID": 23,
    "Description": (
        "The server was unable to deliver your message (ex: unknown user, mailbox not found)."
    ),
    "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
    "Email": EMAIL,
    "From": "daily@newsroom.example",
    "BouncedAt": "2026-11-05T16:33:54.9070259Z",
    "DumpAvailable": True,
    "Inactive": True,
    "CanActivate": True,
    "Subject": "Mideast Daily",
    "Content": "",
}

POSTMARK_SPAM_COMPLAINT = {
    **POSTMARK_HARD_BOUNCE,
    "RecordType": "SpamComplaint",
    "ID": 4323372036854775808,
    "Type": "SpamComplaint",
    "TypeCode": 512,
    "Name": "Spam complaint",
    "Description": "The subscriber explicitly marked this message as spam.",
}


def _auth(credentials: str) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(credentials.encode()).decode()}


@pytest.fixture
def webhook_secret(settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": "esp:s3cret-hook"}
    return "esp:s3cret-hook"


def test_a_postmark_hard_bounce_posted_to_its_url_suppresses(client, member, webhook_secret):
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(
            "/webhooks/anymail/postmark/tracking/",
            data=json.dumps(POSTMARK_HARD_BOUNCE),
            content_type="application/json",
            **_auth(webhook_secret),
        )

    assert response.status_code == 200
    stored = TrackingEvent.objects.get()
    assert stored.esp_event_id == "4323372036854775807"
    assert stored.esp_name == "Postmark"
    assert stored.event_type == "bounced"
    assert stored.payload["Type"] == "HardBounce"
    assert Suppression.objects.get().reason == Suppression.Reason.HARD_BOUNCE


def test_a_postmark_spam_complaint_suppresses(client, member, webhook_secret):
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(
            "/webhooks/anymail/postmark/tracking/",
            data=json.dumps(POSTMARK_SPAM_COMPLAINT),
            content_type="application/json",
            **_auth(webhook_secret),
        )

    assert response.status_code == 200
    assert Suppression.objects.get().reason == Suppression.Reason.COMPLAINT


def test_a_repeated_postmark_delivery_is_a_no_op_that_answers_200(client, member, webhook_secret):
    for _ in range(2):
        with TestCase.captureOnCommitCallbacks(execute=True):
            response = client.post(
                "/webhooks/anymail/postmark/tracking/",
                data=json.dumps(POSTMARK_HARD_BOUNCE),
                content_type="application/json",
                **_auth(webhook_secret),
            )
        assert response.status_code == 200

    assert TrackingEvent.objects.count() == 1


def test_the_webhook_refuses_wrong_credentials(client, member, webhook_secret):
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(
            "/webhooks/anymail/postmark/tracking/",
            data=json.dumps(POSTMARK_HARD_BOUNCE),
            content_type="application/json",
            **_auth("esp:guessed"),
        )

    assert response.status_code in (400, 401, 403)
    assert not TrackingEvent.objects.exists()
    assert not Suppression.objects.exists()


def test_a_suppressed_address_never_gets_a_confirmation(client, daily, mailoutbox):
    signup(client, "first@mail.example", daily)
    SubscriberFactory(email="held@mail.example", confirmed_at=None)
    send("bounced", recipient="held@mail.example")

    signup(client, "held@mail.example", daily)

    assert [m.to for m in mailoutbox] == [["first@mail.example"]]


def test_a_bounce_posted_while_the_broker_refuses_is_applied_once_it_is_back(
    client, member, webhook_secret, broker_refusing
):
    for _ in range(2):  # the ESP's first delivery, then its redelivery: both answered 200
        with TestCase.captureOnCommitCallbacks(execute=True):
            response = client.post(
                "/webhooks/anymail/postmark/tracking/",
                data=json.dumps(POSTMARK_HARD_BOUNCE),
                content_type="application/json",
                **_auth(webhook_secret),
            )
        assert response.status_code == 200
    assert not suppressed_among([EMAIL])
    assert OutboxMessage.objects.get().state == OutboxMessage.State.PENDING

    # The broker is back; beat's outbox run hands the event over, played here in-process.
    celery_app.conf.task_always_eager = True
    outbox.outbox_send_pending(now=timezone.now() + timedelta(minutes=2))
    assert Suppression.objects.get().reason == Suppression.Reason.HARD_BOUNCE
    assert TrackingEvent.objects.get().processed_at is not None


# --- Resend: Svix-signed webhooks ----------------------------------------------------

RESEND_KEY = b"resend-endpoint-signing-key-32by"
RESEND_BOUNCE = {
    "type": "email.bounced",
    "created_at": "2026-11-05T16:33:54.907Z",
    "data": {
        "email_id": "56761188-7520-42d8-8898-ff6fc54ce618",
        "from": "daily@newsroom.example",
        "to": [EMAIL],
        "subject": "Mideast Daily",
        "bounce": {"message": "The recipient's email provider sent a hard bounce message."},
    },
}


@pytest.fixture
def resend_signing(settings, webhook_secret):
    settings.ANYMAIL = {
        **settings.ANYMAIL,
        "RESEND_SIGNING_SECRET": "whsec_" + base64.b64encode(RESEND_KEY).decode(),
    }


def svix_headers(body: str, key: bytes = RESEND_KEY) -> dict:
    """The headers Resend sends, signed as Svix documents: HMAC-SHA256 of
    "<svix-id>.<svix-timestamp>.<body>" under the endpoint's key, as "v1,<base64>"."""
    message_id, timestamp = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
    digest = hmac.new(key, f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return {
        "HTTP_SVIX_ID": message_id,
        "HTTP_SVIX_TIMESTAMP": timestamp,
        "HTTP_SVIX_SIGNATURE": "v1," + base64.b64encode(digest).decode(),
    }


def post_resend(client, body: str, headers: dict):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(
            "/webhooks/anymail/resend/tracking/",
            data=body,
            content_type="application/json",
            **_auth("esp:s3cret-hook"),
            **headers,
        )


def test_a_signed_resend_bounce_suppresses(client, member, resend_signing):
    body = json.dumps(RESEND_BOUNCE)

    response = post_resend(client, body, svix_headers(body))

    assert response.status_code == 200
    assert TrackingEvent.objects.get().esp_name == "Resend"
    assert Suppression.objects.get().reason == Suppression.Reason.HARD_BOUNCE


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda body: {}, id="unsigned"),
        pytest.param(
            lambda body: svix_headers(body, key=b"a-key-that-is-not-the-endpoints"), id="wrong-key"
        ),
        pytest.param(
            # A genuine delivery's headers replayed on a forged complaint.
            lambda body: svix_headers(json.dumps({**RESEND_BOUNCE, "type": "email.delivered"})),
            id="another-events-signature",
        ),
    ],
)
def test_a_resend_event_without_its_signature_is_refused_and_changes_nothing(
    client, member, resend_signing, forge
):
    complaint = json.dumps({**RESEND_BOUNCE, "type": "email.complained"})

    response = post_resend(client, complaint, forge(complaint))

    assert 400 <= response.status_code < 500
    assert not TrackingEvent.objects.exists()
    assert not Suppression.objects.exists()
