"""Signing up: the form on every page, the same answer for everyone, one email an hour."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.template import Context, Template
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from subscriptions.follows import SIGNUP_COOKIE
from subscriptions.models import ConsentRecord, Subscriber, Subscription, Suppression, email_hash
from subscriptions.services import suppression_add
from tests.subscriptions.factories import NewsletterFactory, SubscriptionFactory
from tests.subscriptions.helpers import confirm_path, signup

pytestmark = pytest.mark.django_db


def test_signup_sends_one_confirmation_email(client, daily, mailoutbox):
    response = signup(client, "Reader@Mail.Example", daily)

    assert response.status_code == 200
    assert b"Check your inbox" in response.content
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["reader@mail.example"]
    assert "Mideast Daily" in message.subject
    assert "/newsletters/confirm/" in message.body
    # Confirmation is transactional: it carries no list headers.
    assert "List-Unsubscribe" not in message.extra_headers
    subscription = Subscription.objects.get()
    assert subscription.status == Subscription.Status.PENDING
    assert subscription.subscriber.time_zone == "Europe/Berlin"


def test_signup_answers_the_same_for_new_pending_confirmed_and_suppressed(
    client, daily, mailoutbox
):
    signup(client, "pending@mail.example", daily)
    SubscriptionFactory(subscriber__email="confirmed@mail.example", newsletter=daily)
    suppression_add(email="suppressed@mail.example", reason=Suppression.Reason.COMPLAINT)

    bodies = set()
    statuses = set()
    cookies = set()
    for email in [
        "new@mail.example",
        "pending@mail.example",
        "confirmed@mail.example",
        "suppressed@mail.example",
    ]:
        response = signup(client, email, daily)
        statuses.add(response.status_code)
        bodies.add(response.content.decode().replace(email, "ADDRESS"))
        cookies.add(tuple(sorted(response.cookies)))

    assert statuses == {200}
    assert len(bodies) == 1
    # The same cookies too: the sign-up mark is set whatever the address's state.
    assert cookies == {(SIGNUP_COOKIE,)}


def test_suppressed_address_gets_no_email_and_no_record(client, daily, mailoutbox):
    suppression_add(email="gone@mail.example", reason=Suppression.Reason.HARD_BOUNCE)

    signup(client, "gone@mail.example", daily)

    assert mailoutbox == []
    assert not Subscriber.objects.filter(email="gone@mail.example").exists()


def test_at_most_one_confirmation_email_per_hour(client, daily, mailoutbox):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        signup(client, "eager@mail.example", daily)
        signup(client, "eager@mail.example", daily)
        traveller.shift(timedelta(minutes=59))
        signup(client, "eager@mail.example", daily)
        assert len(mailoutbox) == 1
        traveller.shift(timedelta(minutes=2))
        signup(client, "eager@mail.example", daily)
        assert len(mailoutbox) == 2


def test_confirmed_address_asking_again_gets_no_email(client, daily, mailoutbox):
    SubscriptionFactory(subscriber__email="happy@mail.example", newsletter=daily)

    signup(client, "happy@mail.example", daily)

    assert mailoutbox == []


def test_invalid_email_is_refused_with_a_message_and_nothing_stored(client, daily, mailoutbox):
    response = signup(client, "not-an-address", daily)

    assert response.status_code == 400
    assert b"Enter a valid email address" in response.content
    assert not Subscriber.objects.exists()
    assert mailoutbox == []


def test_no_newsletter_chosen_is_refused(client, daily):
    response = signup(client, "someone@mail.example")

    assert response.status_code == 400
    assert b"Choose at least one newsletter" in response.content
    assert not Subscriber.objects.exists()


def test_honeypot_filled_gets_the_same_page_and_nothing_happens(client, daily, mailoutbox):
    response = signup(client, "bot@mail.example", daily, website="http://spam.example")

    assert response.status_code == 200
    assert b"Check your inbox" in response.content
    assert not Subscriber.objects.exists()
    assert mailoutbox == []


def test_too_many_signups_from_one_address_are_slowed_down(client, daily, rate_window):
    for n in range(10):
        assert signup(client, f"r{n}@mail.example", daily).status_code == 200

    response = signup(client, "r11@mail.example", daily)

    assert response.status_code == 429
    assert not Subscriber.objects.filter(email="r11@mail.example").exists()


def test_unknown_time_zone_falls_back_to_the_newsrooms(client, daily, settings):
    signup(client, "tz@mail.example", daily, time_zone="Mars/Olympus_Mons")

    assert Subscriber.objects.get().time_zone == settings.TIME_ZONE


def test_consent_record_keeps_ip_agent_source_and_text(client, daily):
    signup(client, "consent@mail.example", daily)

    record = ConsentRecord.objects.get()
    assert record.action == ConsentRecord.Action.SUBSCRIBE
    assert record.newsletter == daily
    assert record.ip_address == "203.0.113.7"
    assert record.user_agent == "Mozilla/5.0 (test)"
    assert record.source == "footer"
    assert "The Levant Ledger's terms of use and privacy policy" in record.consent_text.text
    assert "PRIVACY POLICY" in record.consent_text.text


def test_newsletters_page_is_cacheable_and_has_the_form(client, daily):
    response = client.get(reverse("subscriptions:newsletters"))

    assert response.status_code == 200
    body = response.content.decode()
    assert 'action="/newsletters/subscribe/"' in body
    assert "csrfmiddlewaretoken" not in body
    assert "terms of use" in body and "privacy policy" in body
    assert response.cookies == {} or not response.cookies
    assert "Cookie" not in response.get("Vary", "")


def test_footer_include_renders_without_a_csrf_token(daily):
    request = RequestFactory().get("/")
    html = Template('{% include "subscriptions/_footer_signup.html" %}').render(
        Context({"request": request})
    )

    assert "csrfmiddlewaretoken" not in html
    assert 'name="email"' in html
    assert "data-tz-guess" in html
    assert "subscriptions/subscriptions.js" in html


def test_several_newsletters_can_be_chosen(client, daily, mailoutbox):
    weekly = NewsletterFactory(name="Gulf Weekly", slug="gulf-weekly")

    signup(client, "both@mail.example", daily, weekly)

    assert Subscription.objects.filter(status=Subscription.Status.PENDING).count() == 2
    assert len(mailoutbox) == 1
    client.get(confirm_path(mailoutbox[0]))
    assert Subscription.objects.filter(status=Subscription.Status.ACTIVE).count() == 2


def test_suppression_keeps_only_the_hash(daily):
    suppression_add(email="Someone@Mail.Example", reason=Suppression.Reason.MANUAL)

    row = Suppression.objects.get()
    assert row.email_sha256 == email_hash("someone@mail.example")
    assert "someone" not in str(row.__dict__)


def test_behind_a_proxy_the_readers_address_is_recorded_and_limited(client, daily, settings):
    settings.CLIENT_IP_PROXY_HOPS = 1
    for n in range(10):
        signup(
            client, f"p{n}@mail.example", daily, HTTP_X_FORWARDED_FOR=f"10.0.0.1, 198.51.100.{n}"
        )

    # Another reader behind the same proxy is not held back by the first ten.
    response = signup(client, "other@mail.example", daily, HTTP_X_FORWARDED_FOR="198.51.100.200")

    assert response.status_code == 200
    record = ConsentRecord.objects.get(subscriber__email="other@mail.example")
    assert record.ip_address == "198.51.100.200"


def test_with_several_newsletters_no_box_is_ticked_in_advance(client, daily):
    NewsletterFactory(name="Gulf Weekly", slug="gulf-weekly")

    body = client.get(reverse("subscriptions:newsletters")).content.decode()

    assert body.count('type="checkbox"') == 2
    assert " checked" not in body
    assert "The Levant Ledger's" in body


def test_signing_up_works_while_redis_is_down(client, daily, mailoutbox, redis_cache_proxy):
    # The per-address limit of one confirmation an hour is in the database.
    redis_cache_proxy.mode = "refuse"

    first = signup(client, "reader@mail.example", daily)
    again = signup(client, "reader@mail.example", daily)

    assert first.status_code == again.status_code == 200
    assert len(mailoutbox) == 1
