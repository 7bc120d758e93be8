"""The planner: each reader at their own local send hour, once, in ESP-sized batches."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from subscriptions.digest import plan
from subscriptions.digest.compose import edition_compose
from subscriptions.digest.plan import digest_plan
from subscriptions.digest.staff import edition_pause, edition_resume
from subscriptions.models import (
    Delivery,
    DeliveryBatch,
    Edition,
    Subscription,
    Suppression,
    email_hash,
)
from tests.newsroom.factories import CategoryFactory, TopicFactory
from tests.subscriptions.digest.helpers import (
    at,
    fate_of,
    fates,
    news,
    plan_and_send,
    plan_only,
    subscribe,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("first_day", "change"),
    [
        ("2026-03-07", "New York moves to daylight time on Sunday 8 March"),
        ("2026-03-26", "Jerusalem moves to daylight time on Friday 27 March"),
    ],
)
def test_new_york_and_jerusalem_each_get_it_at_their_own_six_once_a_day(
    newsletter, first_day, change, django_capture_on_commit_callbacks
):
    start = at(f"{first_day}T00:00")
    with time_machine.travel(start, tick=False) as clock:
        new_york = subscribe(newsletter, time_zone="America/New_York", email="ny@mail.example")
        jerusalem = subscribe(newsletter, time_zone="Asia/Jerusalem", email="jlm@mail.example")
        # Beat runs the planner every few minutes; a story is published every two hours.
        for step in range(3 * 24 * 12):
            now = start + timedelta(minutes=5 * step)
            clock.move_to(now)
            if now.minute == 0 and now.hour % 2 == 0:
                news(published_at=now - timedelta(minutes=1))
            plan_and_send(django_capture_on_commit_callbacks)

    for reader in (new_york, jerusalem):
        copies = sorted(
            (Edition.objects.get(pk=edition_id).date, fate.sent_at)
            for (edition_id, pk), fate in fates().items()
            if pk == reader.pk
        )
        local_times = [timezone.localtime(sent_at, reader_zone(reader)) for _, sent_at in copies]
        assert [t.strftime("%H:%M") for t in local_times] == ["06:00"] * 3, change
        assert [day for day, _ in copies] == [t.date() for t in local_times]
        assert len([m for m in mail.outbox if m.to == [reader.email]]) == 3


def reader_zone(reader):
    from zoneinfo import ZoneInfo

    return ZoneInfo(reader.time_zone)


def test_before_the_send_hour_nobody_is_queued(newsletter):
    news()
    subscribe(newsletter, time_zone="America/New_York")
    with time_machine.travel(at("2026-06-01T05:59", "America/New_York"), tick=False):
        assert plan_only() == []
    assert not fates()


def test_running_the_planner_twice_queues_nobody_twice(newsletter):
    with time_machine.travel(at("2026-06-01T05:00", "Asia/Jerusalem"), tick=False) as clock:
        news()
        for _ in range(5):
            subscribe(newsletter)
        clock.move_to(at("2026-06-01T06:00", "Asia/Jerusalem"))
        first = plan_only()
        second = plan_only()

    assert first[0].queued == 5
    assert second[0].queued == 0
    assert len(fates()) == 5
    assert DeliveryBatch.objects.count() == 1


def test_the_planner_enqueues_each_batch_once_after_commit(
    newsletter, monkeypatch, django_capture_on_commit_callbacks
):
    news()
    for _ in range(4):
        subscribe(newsletter)
    enqueued: list[int] = []
    monkeypatch.setattr(plan, "enqueue_batch", enqueued.append)

    with django_capture_on_commit_callbacks(execute=True):
        digest_plan(send_now=True)
        digest_plan(send_now=True)

    assert enqueued == list(DeliveryBatch.objects.values_list("pk", flat=True))
    assert len(enqueued) == 1


def test_paused_unconfirmed_and_unsubscribed_readers_are_not_queued(newsletter):
    news()
    active = subscribe(newsletter)
    subscribe(newsletter, paused_until=timezone.now() + timedelta(days=3))
    subscribe(newsletter, confirmed_at=None)
    gone = subscribe(newsletter)
    Subscription.objects.filter(subscriber=gone).update(status=Subscription.Status.UNSUBSCRIBED)
    back = subscribe(newsletter, paused_until=timezone.now() - timedelta(days=1))

    plan_only(send_now=True)

    assert {pk for _, pk in fates()} == {active.pk, back.pk}


def test_a_suppressed_address_is_recorded_and_never_batched(newsletter):
    news()
    subscribe(newsletter)
    bounced = subscribe(newsletter, email="bounced@mail.example")
    Suppression.objects.create(email_sha256=email_hash(bounced.email), reason="hard_bounce")

    [result] = plan_only(send_now=True)

    assert result.suppressed == 1
    delivery = Delivery.objects.get(subscriber=bounced)
    assert delivery.state == Delivery.State.SUPPRESSED and delivery.batch is None


def test_batches_hold_one_followed_set_and_at_most_the_esp_batch_size(newsletter, settings):
    settings.ESP_BATCH_SIZE = 3
    politics, culture = CategoryFactory(), CategoryFactory()
    water = TopicFactory()
    news()
    for _ in range(7):
        subscribe(newsletter, follows=[politics, water])
    for _ in range(2):
        subscribe(newsletter, follows=[water, politics])  # same follows, another order
    subscribe(newsletter, follows=[culture])

    [result] = plan_only(send_now=True)

    batches = DeliveryBatch.objects.all()
    assert {tuple(batch.followed[0]) for batch in batches} == {("l", "en")}
    sizes = sorted((tuple(batch.followed[1]), len(batch.readers)) for batch in batches)
    assert sizes == sorted(
        [
            (("c", politics.pk), 3),
            (("c", politics.pk), 3),
            (("c", politics.pk), 1),
            (("t", water.pk), 2),
            (("c", culture.pk), 1),
        ]
    )
    assert result.queued == 10 and len(result.groups) == 3


def test_a_paused_edition_gets_no_new_batches(newsletter):
    news()
    subscribe(newsletter)
    edition = edition_compose(newsletter=newsletter, date=timezone.localdate())
    edition_pause(edition=edition)

    plan_only(send_now=True)

    assert Edition.objects.get().state == Edition.State.PAUSED
    assert not fates()


def test_a_weekday_newsletter_skips_the_weekend(newsletter):
    newsletter.cadence = newsletter.Cadence.WEEKDAYS
    newsletter.save()
    subscribe(newsletter)
    with time_machine.travel(at("2026-06-06T08:00", "Asia/Jerusalem"), tick=False):  # a Saturday
        news()
        assert plan_only() == []


def test_pausing_after_the_first_time_zones_holds_the_later_ones(
    newsletter, django_capture_on_commit_callbacks
):
    with time_machine.travel(at("2026-06-01T05:00", "Asia/Jerusalem"), tick=False) as clock:
        news()
        subscribe(newsletter, time_zone="Asia/Jerusalem")
        new_york = subscribe(newsletter, time_zone="America/New_York")
        clock.move_to(at("2026-06-01T06:00", "Asia/Jerusalem"))
        [first] = plan_and_send(django_capture_on_commit_callbacks)
        assert Edition.objects.get().state == Edition.State.SENT
        edition_pause(edition=first.edition)

        clock.move_to(at("2026-06-01T06:00", "America/New_York"))
        plan_and_send(django_capture_on_commit_callbacks)
        assert new_york.pk not in {pk for _, pk in fates()}

        with django_capture_on_commit_callbacks(execute=True):
            edition_resume(edition=first.edition)
        plan_and_send(django_capture_on_commit_callbacks)

    assert fate_of(new_york).state == Delivery.State.SENT
    assert len(mail.outbox) == 2


def test_the_first_run_never_composes_yesterday_for_zones_further_west(
    newsletter, django_capture_on_commit_callbacks
):
    with time_machine.travel(at("2026-05-01T12:00"), tick=False) as clock:
        jerusalem = subscribe(newsletter, time_zone="Asia/Jerusalem")
        new_york = subscribe(newsletter, time_zone="America/New_York")
        clock.move_to(at("2026-06-01T05:00", "Asia/Jerusalem"))
        news(headline="Overnight: port reopens")
        # 06:00 in Jerusalem is 23:00 the day before in New York.
        clock.move_to(at("2026-06-01T06:00", "Asia/Jerusalem"))
        plan_and_send(django_capture_on_commit_callbacks)

        assert list(Edition.objects.values_list("date", flat=True)) == [date(2026, 6, 1)]
        assert [m.to for m in mail.outbox] == [[jerusalem.email]]
        assert "Overnight: port reopens" in mail.outbox[0].body

        clock.move_to(at("2026-06-01T06:00", "America/New_York"))
        plan_and_send(django_capture_on_commit_callbacks)

    assert [m.to for m in mail.outbox] == [[jerusalem.email], [new_york.email]]
