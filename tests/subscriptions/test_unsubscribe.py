"""RFC 8058 one-click unsubscribe: a POST leaves at once, a GET never does."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from django.core import signing
from django.test import Client
from django.utils import timezone

from subscriptions import tokens
from subscriptions.models import ConsentRecord, Subscription, email_hash
from tests.subscriptions.factories import NewsletterFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def _path(url: str) -> str:
    return urlsplit(url).path


@pytest.fixture
def member(daily):
    return SubscriptionFactory(newsletter=daily, subscriber__email="member@mail.example")


def test_one_click_post_without_cookie_or_csrf_unsubscribes_with_200(member):
    url = tokens.unsubscribe_url(subscriber=member.subscriber, newsletter=member.newsletter)
    # A mailbox provider's POST: no cookie, no CSRF token, just the RFC 8058 body.
    provider = Client(enforce_csrf_checks=True)

    response = provider.post(
        _path(url),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200
    assert b"You're unsubscribed" in response.content
    member.refresh_from_db()
    assert member.status == Subscription.Status.UNSUBSCRIBED
    record = ConsentRecord.objects.get(action=ConsentRecord.Action.UNSUBSCRIBE)
    assert record.source == "one-click"
    assert record.newsletter == member.newsletter


def test_a_get_shows_a_button_and_never_unsubscribes(member):
    url = tokens.unsubscribe_url(subscriber=member.subscriber)

    response = Client().get(_path(url))
    Client().get(_path(url))

    assert response.status_code == 200
    assert b'<form method="post"' in response.content
    assert b"Unsubscribe</button>" in response.content
    member.refresh_from_db()
    assert member.status == Subscription.Status.ACTIVE


def test_the_button_on_the_page_unsubscribes(member):
    url = tokens.unsubscribe_url(subscriber=member.subscriber)

    response = Client(enforce_csrf_checks=True).post(_path(url))

    assert response.status_code == 200
    member.refresh_from_db()
    assert member.status == Subscription.Status.UNSUBSCRIBED


def test_a_link_without_newsletter_leaves_every_newsletter(member):
    other = SubscriptionFactory(
        subscriber=member.subscriber, newsletter=NewsletterFactory(name="Weekly", slug="weekly")
    )

    Client().post(_path(tokens.unsubscribe_url(subscriber=member.subscriber)))

    assert set(Subscription.objects.values_list("status", flat=True)) == {"unsubscribed"}
    assert other.subscriber.subscriptions.count() == 2


def test_a_link_for_one_newsletter_leaves_only_that_one(member):
    other = SubscriptionFactory(
        subscriber=member.subscriber, newsletter=NewsletterFactory(name="Weekly", slug="weekly")
    )

    Client().post(
        _path(tokens.unsubscribe_url(subscriber=member.subscriber, newsletter=member.newsletter))
    )

    other.refresh_from_db()
    assert other.status == Subscription.Status.ACTIVE


def test_posting_twice_is_harmless(member):
    url = _path(tokens.unsubscribe_url(subscriber=member.subscriber))

    assert Client().post(url).status_code == 200
    assert Client().post(url).status_code == 200
    assert ConsentRecord.objects.filter(action="unsubscribe").count() == 1


def test_the_link_still_works_after_sixty_days(member):
    url = _path(tokens.unsubscribe_url(subscriber=member.subscriber))

    with time_machine.travel(timezone.now() + timedelta(days=61)):
        response = Client().post(url)

    assert response.status_code == 200
    member.refresh_from_db()
    assert member.status == Subscription.Status.UNSUBSCRIBED


def test_a_tampered_token_is_refused(member):
    url = _path(tokens.unsubscribe_url(subscriber=member.subscriber))
    tampered = url[:-3] + ("A" if url[-3] != "A" else "B") + url[-2:]

    response = Client().post(tampered)

    assert response.status_code == 400
    member.refresh_from_db()
    assert member.status == Subscription.Status.ACTIVE


def test_a_token_cannot_unsubscribe_another_address(member, daily):
    other = SubscriptionFactory(newsletter=daily, subscriber__email="bystander@mail.example")
    # A token carrying the other reader's id but the first reader's address fingerprint.
    token = signing.dumps(
        {"p": other.subscriber.public_id.hex, "e": tokens.fingerprint(member.subscriber.email)},
        salt=tokens.UNSUBSCRIBE,
        compress=True,
    )

    response = Client().post(f"/unsubscribe/{token}/")

    assert response.status_code == 400
    other.refresh_from_db()
    assert other.status == Subscription.Status.ACTIVE


def test_list_unsubscribe_headers_follow_rfc_8058(member, site_url, settings):
    settings.INBOUND_EMAIL_ESP = "postmark"
    headers = tokens.list_unsubscribe_headers(
        subscriber=member.subscriber, newsletter=member.newsletter
    )

    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = headers["List-Unsubscribe"].split(", ")
    assert https.startswith("<https://news.example/unsubscribe/") and https.endswith("/>")
    assert mailto.startswith("<mailto:")
    # The opaque token does not show the address, nor a plain hash one could test guesses against.
    payload = signing.loads(urlsplit(https.strip("<>")).path.split("/")[2], salt=tokens.UNSUBSCRIBE)
    assert "member" not in https
    assert email_hash("member@mail.example")[:16] not in str(payload)


def test_the_link_expires_after_ninety_days(member):
    url = _path(tokens.unsubscribe_url(subscriber=member.subscriber))

    with time_machine.travel(timezone.now() + timedelta(days=91)):
        response = Client().post(url)

    assert response.status_code == 400
    assert b"This link is not valid" in response.content
    member.refresh_from_db()
    assert member.status == Subscription.Status.ACTIVE
