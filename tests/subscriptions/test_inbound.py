"""Unsubscribe by email: the mailto: of List-Unsubscribe, received through the ESP's
inbound webhook at /webhooks/anymail/<esp>/inbound/, or not offered at all."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

from subscriptions import tokens
from subscriptions.models import Subscription

pytestmark = pytest.mark.django_db
MEMBER = "member@mail.example"
AUTH = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"laptop:webhook").decode()}
SIGNING_KEY = "mailgun-signing-key"


@pytest.fixture
def member(daily):
    from tests.subscriptions.factories import SubscriberFactory, SubscriptionFactory

    return SubscriptionFactory(subscriber=SubscriberFactory(email=MEMBER), newsletter=daily)


@pytest.fixture
def postmark_inbound(settings):
    settings.INBOUND_EMAIL_ESP = "postmark"
    settings.ANYMAIL = {"WEBHOOK_SECRET": "laptop:webhook"}


def postmark_payload(*, to: str, sender: str = MEMBER, spf: str = "Pass") -> dict:
    """Postmark's inbound webhook JSON, as its docs show it ("Inbound webhook")."""
    return {
        "FromName": "A reader",
        "MessageStream": "inbound",
        "From": sender,
        "FromFull": {"Email": sender, "Name": "A reader", "MailboxHash": ""},
        "To": to,
        "ToFull": [{"Email": to, "Name": "", "MailboxHash": ""}],
        "Cc": "",
        "CcFull": [],
        "Bcc": "",
        "BccFull": [],
        "OriginalRecipient": to,
        "Subject": "unsubscribe",
        "MessageID": "73e6d360-66eb-11e1-8e72-a8904824019b",
        "ReplyTo": "",
        "MailboxHash": "",
        "Date": "Mon, 30 Nov 2026 13:00:00 +0000",
        "TextBody": "unsubscribe",
        "HtmlBody": "",
        "StrippedTextReply": "",
        "Tag": "",
        "Headers": [
            {"Name": "Return-Path", "Value": f"<{sender}>"},
            {
                "Name": "Received-SPF",
                "Value": f"{spf} (sender SPF authorized) identity=mailfrom; "
                f"client-ip=192.0.2.1; envelope-from={sender}; receiver=inbound.postmarkapp.com",
            },
            {"Name": "X-Spam-Status", "Value": "No"},
        ],
        "Attachments": [],
    }


def post_postmark(client, payload: dict, **extra):
    return client.post(
        "/webhooks/anymail/postmark/inbound/",
        json.dumps(payload),
        content_type="application/json",
        **extra,
    )


def test_a_mail_to_the_unsubscribe_address_through_postmark_unsubscribes_its_sender(
    client, member, postmark_inbound, settings
):
    response = post_postmark(client, postmark_payload(to=settings.UNSUBSCRIBE_MAILTO), **AUTH)

    assert response.status_code == 200
    member.refresh_from_db()
    assert member.status == Subscription.Status.UNSUBSCRIBED
    assert member.subscriber.consent_records.get().source == "mailto:Postmark"


def test_an_unauthenticated_post_to_the_inbound_webhook_is_refused(
    client, member, postmark_inbound, settings
):
    response = post_postmark(client, postmark_payload(to=settings.UNSUBSCRIBE_MAILTO))

    assert response.status_code == 400
    member.refresh_from_db()
    assert member.status == Subscription.Status.ACTIVE


def test_a_mail_whose_sender_the_esp_could_not_verify_changes_nothing(
    client, member, postmark_inbound, settings
):
    forged = postmark_payload(to=settings.UNSUBSCRIBE_MAILTO, spf="Fail")

    assert post_postmark(client, forged, **AUTH).status_code == 200

    member.refresh_from_db()
    assert member.status == Subscription.Status.ACTIVE


def test_a_mail_to_another_address_changes_nothing(client, member, postmark_inbound):
    post_postmark(client, postmark_payload(to="letters@newsroom.example"), **AUTH)

    member.refresh_from_db()
    assert member.status == Subscription.Status.ACTIVE


def test_mail_is_taken_only_from_the_configured_esp(client, member, settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": "laptop:webhook", "MAILGUN_WEBHOOK_SIGNING_KEY": "k"}
    payload = postmark_payload(to=settings.UNSUBSCRIBE_MAILTO)

    settings.INBOUND_EMAIL_ESP = ""
    assert post_postmark(client, payload, **AUTH).status_code == 404
    settings.INBOUND_EMAIL_ESP = "mailgun"
    assert post_postmark(client, payload, **AUTH).status_code == 404

    member.refresh_from_db()
    assert member.status == Subscription.Status.ACTIVE


def mailgun_form(*, to: str, key: str = SIGNING_KEY) -> dict:
    """Mailgun's inbound route POST, full MIME variant (its docs: "Receiving messages")."""
    timestamp, token = str(int(time.time())), "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"
    mime = (
        f"Return-Path: <{MEMBER}>\r\n"
        "X-Mailgun-Spf: Pass\r\n"
        f"Authentication-Results: mx.mailgun.org; dkim=pass header.d=mail.example; "
        f"spf=pass smtp.mailfrom={MEMBER}\r\n"
        f"From: A reader <{MEMBER}>\r\n"
        f"To: {to}\r\n"
        "Subject: unsubscribe\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        "unsubscribe\r\n"
    )
    return {
        "recipient": to,
        "sender": MEMBER,
        "from": f"A reader <{MEMBER}>",
        "subject": "unsubscribe",
        "body-mime": mime,
        "timestamp": timestamp,
        "token": token,
        "signature": hmac.new(
            key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256
        ).hexdigest(),
    }


@pytest.fixture
def mailgun_inbound(settings):
    settings.INBOUND_EMAIL_ESP = "mailgun"
    settings.ANYMAIL = {
        "WEBHOOK_SECRET": "laptop:webhook",
        "MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY,
    }


def test_a_signed_mail_through_mailgun_unsubscribes_its_sender(
    client, member, mailgun_inbound, settings
):
    response = client.post(
        "/webhooks/anymail/mailgun/inbound_mime/",
        mailgun_form(to=settings.UNSUBSCRIBE_MAILTO),
        **AUTH,
    )

    assert response.status_code == 200
    member.refresh_from_db()
    assert member.status == Subscription.Status.UNSUBSCRIBED


def test_a_mailgun_post_with_a_forged_signature_is_refused(
    client, member, mailgun_inbound, settings
):
    response = client.post(
        "/webhooks/anymail/mailgun/inbound_mime/",
        mailgun_form(to=settings.UNSUBSCRIBE_MAILTO, key="not-the-key"),
        **AUTH,
    )

    assert response.status_code == 400
    member.refresh_from_db()
    assert member.status == Subscription.Status.ACTIVE


def test_list_unsubscribe_offers_the_mailto_only_when_mail_is_received(member, settings):
    settings.INBOUND_EMAIL_ESP = ""
    without = tokens.list_unsubscribe_headers(subscriber=member.subscriber)["List-Unsubscribe"]
    settings.INBOUND_EMAIL_ESP = "postmark"
    with_inbound = tokens.list_unsubscribe_headers(subscriber=member.subscriber)["List-Unsubscribe"]

    assert without.startswith("<http") and "mailto:" not in without and "," not in without
    assert with_inbound.endswith(f"<mailto:{settings.UNSUBSCRIBE_MAILTO}?subject=unsubscribe>")
