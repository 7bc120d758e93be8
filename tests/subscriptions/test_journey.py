"""The whole path as a reader lives it, in one go."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from subscriptions.models import ConsentRecord, Follow, Subscriber, Subscription
from tests.newsroom.factories import CategoryFactory, TopicFactory
from tests.subscriptions.helpers import confirm_path, signup

pytestmark = pytest.mark.django_db


def test_subscribe_confirm_follow_change_preferences_and_leave(client, daily, mailoutbox, site_url):
    politics = CategoryFactory(name="Politics", slug="politics")
    economy = CategoryFactory(name="Economy", slug="economy")
    water = TopicFactory(name="Water", slug="water")

    # An anonymous reader follows a category; the choice lives in a cookie.
    client.post(reverse("subscriptions:follow"), {"kind": "category", "slug": "politics"})
    # They sign up from the footer.
    response = signup(client, "journey@mail.example", daily)
    assert b"Check your inbox" in response.content

    # The email arrives; one click confirms.
    assert len(mailoutbox) == 1
    confirmed = client.get(confirm_path(mailoutbox[0]))
    assert b"You're subscribed" in confirmed.content
    subscriber = Subscriber.objects.get()
    assert subscriber.subscriptions.get().status == Subscription.Status.ACTIVE
    # The follows moved over from the cookie.
    assert [f.category for f in subscriber.follows.all()] == [politics]

    # On the preferences page (the link from the confirmation page) they change their mind.
    preferences = re.search(
        r'href="(https?://[^"]+/preferences/[^"]+/)"', confirmed.content.decode()
    ).group(1)
    path = urlsplit(preferences).path
    saved = client.post(
        path,
        {
            "action": "save",
            "newsletters": [daily.pk],
            "categories": [economy.pk],
            "topics": [water.pk],
            "time_zone": "Asia/Amman",
        },
    )
    assert saved.status_code == 303
    subscriber.refresh_from_db()
    assert subscriber.time_zone == "Asia/Amman"
    assert {(f.category, f.topic) for f in Follow.objects.filter(subscriber=subscriber)} == {
        (economy, None),
        (None, water),
    }

    # A list email's List-Unsubscribe URL: a GET (a link scanner) changes nothing...
    from subscriptions.tokens import list_unsubscribe_headers

    header = list_unsubscribe_headers(subscriber=subscriber, newsletter=daily)["List-Unsubscribe"]
    unsubscribe_path = urlsplit(re.search(r"<(https://[^>]+)>", header).group(1)).path
    provider = Client(enforce_csrf_checks=True)
    assert provider.get(unsubscribe_path).status_code == 200
    assert subscriber.subscriptions.get().status == Subscription.Status.ACTIVE

    # ...the mailbox provider's one-click POST, with no cookie and no CSRF token, unsubscribes.
    one_click = provider.post(
        unsubscribe_path,
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert one_click.status_code == 200
    assert subscriber.subscriptions.get().status == Subscription.Status.UNSUBSCRIBED
    assert list(ConsentRecord.objects.values_list("action", flat=True)) == [
        "subscribe",
        "confirm",
        "preference_change",
        "unsubscribe",
    ]
