"""Double opt-in: the emailed link confirms once, expires, and cannot be forged or reused."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from subscriptions import tokens
from subscriptions.follows import COOKIE
from subscriptions.models import ConsentRecord, Follow, Subscriber, Subscription, Suppression
from subscriptions.services import confirmation_reminders_send, suppression_add
from tests.newsroom.factories import CategoryFactory, TopicFactory
from tests.subscriptions.factories import SubscriberFactory
from tests.subscriptions.helpers import confirm_path, signup

pytestmark = pytest.mark.django_db


def test_the_link_in_the_email_confirms_with_one_click(client, daily, mailoutbox):
    signup(client, "one@mail.example", daily)

    response = client.get(confirm_path(mailoutbox[0]))

    assert response.status_code == 200
    assert b"You're subscribed" in response.content
    assert b"Mideast Daily" in response.content
    subscription = Subscription.objects.get()
    assert subscription.status == Subscription.Status.ACTIVE
    assert subscription.subscriber.confirmed_at is not None
    assert "private" in response["Cache-Control"] and "no-store" in response["Cache-Control"]


def test_opening_the_link_twice_changes_nothing_more(client, daily, mailoutbox):
    signup(client, "twice@mail.example", daily)
    path = confirm_path(mailoutbox[0])
    client.get(path)
    confirmed_at = Subscriber.objects.get().confirmed_at
    records = ConsentRecord.objects.count()

    again = client.get(path)

    assert again.status_code == 200
    assert b"You're subscribed" in again.content
    assert Subscriber.objects.get().confirmed_at == confirmed_at
    assert ConsentRecord.objects.count() == records
    assert len(mailoutbox) == 1


def test_confirm_records_consent(client, daily, mailoutbox):
    signup(client, "rec@mail.example", daily)
    client.get(
        confirm_path(mailoutbox[0]), HTTP_USER_AGENT="MailClient/2", REMOTE_ADDR="198.51.100.4"
    )

    actions = list(ConsentRecord.objects.values_list("action", "source", "ip_address"))
    assert actions == [
        ("subscribe", "footer", "203.0.113.7"),
        ("confirm", "confirmation-link", "198.51.100.4"),
    ]


def test_the_link_expires_after_seven_days(client, daily, mailoutbox):
    signup(client, "late@mail.example", daily)
    path = confirm_path(mailoutbox[0])

    with time_machine.travel(timezone.now() + timedelta(days=7, minutes=1)):
        response = client.get(path)

    assert response.status_code == 400
    assert b"This link is not valid" in response.content
    assert Subscription.objects.get().status == Subscription.Status.PENDING


def test_a_forged_link_is_refused(client, daily, mailoutbox):
    signup(client, "victim@mail.example", daily)
    subscriber = Subscriber.objects.get()
    forged = signing.dumps(
        {"s": subscriber.pk, "e": tokens.fingerprint(subscriber.email)},
        key="guessed",
        salt=tokens.CONFIRM,
    )

    response = client.get(reverse("subscriptions:confirm", kwargs={"token": forged}))

    assert response.status_code == 400
    assert Subscription.objects.get().status == Subscription.Status.PENDING


def test_a_token_for_another_purpose_does_not_confirm(client, daily, mailoutbox):
    signup(client, "purpose@mail.example", daily)
    subscriber = Subscriber.objects.get()
    token = tokens.make_token(tokens.UNSUBSCRIBE, subscriber=subscriber)

    response = client.get(reverse("subscriptions:confirm", kwargs={"token": token}))

    assert response.status_code == 400
    assert Subscription.objects.get().status == Subscription.Status.PENDING


def test_a_token_cannot_be_used_for_another_address(client, daily, mailoutbox):
    signup(client, "first@mail.example", daily)
    first = Subscriber.objects.get()
    token = tokens.make_token(tokens.CONFIRM, subscriber=first)
    # The row is gone and another address now holds the same id.
    first.delete()
    Subscriber.objects.create(pk=first.pk, email="second@mail.example")

    response = client.get(reverse("subscriptions:confirm", kwargs={"token": token}))

    assert response.status_code == 400
    assert Subscriber.objects.get().confirmed_at is None


def test_an_older_link_naming_the_row_id_cannot_be_used_for_another_address(
    client, daily, mailoutbox
):
    signup(client, "first@mail.example", daily)
    first = Subscriber.objects.get()
    token = signing.dumps(
        {"s": first.pk, "e": tokens.fingerprint(first.email)}, salt=tokens.CONFIRM, compress=True
    )
    first.delete()
    Subscriber.objects.create(pk=first.pk, email="second@mail.example")

    response = client.get(reverse("subscriptions:confirm", kwargs={"token": token}))

    assert response.status_code == 400
    assert Subscriber.objects.get().confirmed_at is None


def test_follows_move_from_the_cookie_to_the_subscriber(client, daily, mailoutbox):
    politics, economy = CategoryFactory(slug="politics"), CategoryFactory(slug="economy")
    water = TopicFactory(slug="water")
    for kind, slug in [("category", "politics"), ("category", "economy"), ("topic", "water")]:
        client.post(reverse("subscriptions:follow"), {"kind": kind, "slug": slug})
    signup(client, "mover@mail.example", daily)

    response = client.get(confirm_path(mailoutbox[0]))

    subscriber = Subscriber.objects.get()
    follows = list(Follow.objects.filter(subscriber=subscriber))
    assert [(f.category, f.topic) for f in follows] == [
        (politics, None),
        (economy, None),
        (None, water),
    ]
    # The browser is now linked to the subscriber: its follows are the subscriber's.
    assert COOKIE in response.cookies
    state = client.get(reverse("subscriptions:follow_state")).json()
    assert state == {"categories": ["politics", "economy"], "topics": ["water"], "subscriber": True}


def test_a_suppressed_address_cannot_be_confirmed(client, daily, mailoutbox):
    signup(client, "bouncy@mail.example", daily)
    suppression_add(email="bouncy@mail.example", reason=Suppression.Reason.HARD_BOUNCE)

    response = client.get(confirm_path(mailoutbox[0]))

    assert response.status_code == 409
    assert Subscription.objects.get().status == Subscription.Status.PENDING


def test_one_reminder_after_a_day_then_nothing(client, daily, mailoutbox):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        signup(client, "slow@mail.example", daily)
    assert len(mailoutbox) == 1

    with time_machine.travel(start + timedelta(hours=23), tick=False):
        assert confirmation_reminders_send() == 0
    with time_machine.travel(start + timedelta(hours=24, minutes=5), tick=False):
        assert confirmation_reminders_send() == 1
        assert confirmation_reminders_send() == 0
    with time_machine.travel(start + timedelta(days=3), tick=False):
        assert confirmation_reminders_send() == 0

    assert len(mailoutbox) == 2
    reminder = mailoutbox[1]
    assert reminder.subject.startswith("Reminder")
    # A reminder is list mail: RFC 8058 one-click unsubscribe.
    assert reminder.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/unsubscribe/" in reminder.extra_headers["List-Unsubscribe"]
    # Its link confirms too.
    assert client.get(confirm_path(reminder)).status_code == 200
    assert Subscription.objects.get().status == Subscription.Status.ACTIVE


def test_no_reminder_to_a_confirmed_or_suppressed_address(client, daily, mailoutbox):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        signup(client, "done@mail.example", daily)
        signup(client, "blocked@mail.example", daily)
    client.get(confirm_path(mailoutbox[0]))
    suppression_add(email="blocked@mail.example", reason=Suppression.Reason.COMPLAINT)

    with time_machine.travel(start + timedelta(hours=25), tick=False):
        confirmation_reminders_send()

    assert len(mailoutbox) == 2


def test_the_beat_task_sends_reminders(client, daily, mailoutbox):
    from subscriptions.tasks import confirmation_reminders_send_task

    start = timezone.now()
    with time_machine.travel(start, tick=False):
        signup(client, "beat@mail.example", daily)
    with time_machine.travel(start + timedelta(hours=25), tick=False):
        assert confirmation_reminders_send_task.name == "subscriptions.confirmation_reminders_send"
        confirmation_reminders_send_task.delay()

    assert len(mailoutbox) == 2


def test_unused_subscriber_factory_has_no_reminder(daily, mailoutbox):
    SubscriberFactory(confirmed_at=None)
    assert confirmation_reminders_send() == 0
