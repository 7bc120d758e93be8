"""A stored Stripe event is always processed, whatever the broker did when it arrived."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import django.test
import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from donations import services
from donations.models import Gift, StripeEvent
from donations.services import events
from donations.tasks import reconcile_stripe_task, stripe_events_requeue_received_task
from newsroom import outbox
from newsroom.celery import app as celery_app
from newsroom.models import OutboxMessage
from tests.donations import stripe_payloads as p
from tests.donations.factories import GiftFactory, PaidGiftFactory
from tests.donations.fixtures import sign

pytestmark = pytest.mark.django_db


@pytest.fixture
def gift() -> Gift:
    return PaidGiftFactory(amount_cents=5000, stripe_payment_intent_id="pi_r")


@pytest.fixture
def refund() -> dict:
    return p.event(
        "charge.refunded", p.charge(payment_intent="pi_r", amount=5000, amount_refunded=5000)
    )


def broker_back() -> None:
    # The in-process worker stands in for the broker and a worker taking the task.
    celery_app.conf.task_always_eager = True


@pytest.fixture
def broker_taking(monkeypatch) -> list[tuple[str, dict, float]]:
    """A broker that takes every task, with no worker yet: the list of what it was given.

    `worker_arrives` hands the tasks pushed from then on to the in-process worker.
    """
    pushed: list[tuple[str, dict, float]] = []

    def take(*, task: str, kwargs: dict, countdown: float = 0) -> bool:
        pushed.append((task, kwargs, countdown))
        return True

    monkeypatch.setattr(events, "task_send", take)
    celery_app.conf.task_always_eager = False
    return pushed


def worker_arrives(monkeypatch) -> None:
    monkeypatch.setattr(events, "task_send", outbox.task_send)
    broker_back()


def drain_run() -> int:
    """The drain task, as a worker runs it, its tasks run as they are sent."""
    with django.test.TestCase.captureOnCommitCallbacks(execute=True):
        return services.stripe_events_drain()


def refund_of(cents: int) -> dict:
    return p.event(
        "charge.refunded", p.charge(payment_intent="pi_r", amount=5000, amount_refunded=cents)
    )


def requeue_run(minutes: int = 1) -> int:
    """Beat's requeue run, `minutes` after now, its tasks run as they commit."""
    with django.test.TestCase.captureOnCommitCallbacks(execute=True):
        return services.stripe_events_requeue_received(
            now=timezone.now() + timedelta(minutes=minutes)
        )


def test_a_refund_arriving_while_the_broker_refuses_is_answered_200_and_stored_as_owed(
    post_event, broker_refusing, gift, refund
):
    response = post_event(refund)

    assert response.status_code == 200
    stored = StripeEvent.objects.get()
    assert (stored.outcome, stored.attempts) == (StripeEvent.Outcome.RECEIVED, 0)
    # Never handed over: the next requeue run takes it.
    assert stored.queued_at is None
    gift.refresh_from_db()
    assert (gift.status, gift.refunded_cents) == (Gift.Status.PAID, 0)


def test_once_the_broker_is_back_the_next_requeue_run_refunds_the_gift_once(
    post_event, broker_refusing, gift, refund
):
    post_event(refund)
    broker_back()

    assert requeue_run(minutes=1) == 1
    assert requeue_run(minutes=20) == 0

    gift.refresh_from_db()
    assert (gift.status, gift.refunded_cents) == (Gift.Status.REFUNDED, 5000)
    stored = StripeEvent.objects.get()
    assert (stored.outcome, stored.attempts) == (StripeEvent.Outcome.PROCESSED, 1)


def test_a_redelivery_of_an_unprocessed_event_queues_it_again_and_it_runs_once(
    post_event, broker_refusing, gift, refund
):
    first = post_event(refund)
    broker_back()
    again = post_event(refund)

    assert (first.status_code, again.status_code) == (200, 200)
    gift.refresh_from_db()
    assert (gift.status, gift.refunded_cents) == (Gift.Status.REFUNDED, 5000)
    stored = StripeEvent.objects.get()
    assert (stored.outcome, stored.attempts) == (StripeEvent.Outcome.PROCESSED, 1)
    assert requeue_run(minutes=20) == 0


def test_a_redelivery_of_a_processed_event_queues_nothing(post_event, gift, refund):
    post_event(refund)
    post_event(refund)

    assert StripeEvent.objects.get().attempts == 1
    assert not OutboxMessage.objects.exists()


def test_accepting_an_event_writes_the_event_alone(client, gift, refund):
    payload = json.dumps(refund)
    with (
        CaptureQueriesContext(connection) as queries,
        django.test.TestCase.captureOnCommitCallbacks(execute=False) as sends,
    ):
        response = client.post(
            "/webhooks/stripe/",
            data=payload,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=sign(payload),
        )

    assert response.status_code == 200
    writes = [q["sql"] for q in queries if re.search(r"\b(INSERT|UPDATE|DELETE)\b", q["sql"])]
    assert len(writes) == 1
    assert 'INSERT INTO "donations_stripeevent"' in writes[0]
    assert len(queries) == 1  # the insert is the request's one statement
    assert len(sends) == 1  # the window's drain, once the row is committed


def test_events_accepted_within_one_window_push_one_drain_for_after_its_end(
    post_event, broker_taking, gift
):
    responses = [post_event(refund_of(cents)) for cents in (1000, 2000, 3000, 4000)]

    assert [r.status_code for r in responses] == [200] * 4
    wait = events.DRAIN_WINDOW_SECONDS + events.DRAIN_MARGIN_SECONDS
    assert broker_taking == [(events.DRAIN_TASK, {}, wait)]
    assert set(StripeEvent.objects.values_list("outcome", "queued_at")) == {
        (StripeEvent.Outcome.RECEIVED, None)
    }


def test_an_event_after_the_window_pushes_the_next_drain(
    post_event, broker_taking, gift, monkeypatch
):
    clock = [1000.0]
    monkeypatch.setattr(events, "monotonic", lambda: clock[0])
    post_event(refund_of(1000))
    clock[0] += events.DRAIN_WINDOW_SECONDS - 0.01
    post_event(refund_of(2000))
    clock[0] += 0.02
    post_event(refund_of(3000))

    assert [task for task, _, _ in broker_taking] == [events.DRAIN_TASK] * 2


def test_the_drain_queues_each_event_once_and_each_runs_once(
    post_event, broker_taking, gift, monkeypatch
):
    for cents in (1000, 2500, 5000):
        post_event(refund_of(cents))
    worker_arrives(monkeypatch)

    assert drain_run() == 3
    assert drain_run() == 0
    assert requeue_run(minutes=20) == 0

    assert set(StripeEvent.objects.values_list("outcome", "attempts")) == {
        (StripeEvent.Outcome.PROCESSED, 1)
    }
    gift.refresh_from_db()
    assert (gift.status, gift.refunded_cents) == (Gift.Status.REFUNDED, 5000)


def test_a_drain_the_broker_refuses_leaves_the_events_to_the_next_requeue_run(
    post_event, broker_refusing, gift
):
    post_event(refund_of(1000))
    post_event(refund_of(5000))

    assert services.stripe_events_drain() == 0  # the broker refuses each task it queues
    assert set(StripeEvent.objects.values_list("queued_at", flat=True)) == {None}
    broker_back()
    assert requeue_run(minutes=1) == 2
    gift.refresh_from_db()
    assert (gift.status, gift.refunded_cents) == (Gift.Status.REFUNDED, 5000)


def test_a_redelivery_of_an_event_queued_and_not_yet_run_is_handed_over_again(
    post_event, broker_taking, gift, refund
):
    post_event(refund)
    services.stripe_events_drain()
    post_event(refund)

    stored = StripeEvent.objects.get()
    assert broker_taking[1:] == [(events.PROCESS_TASK, {"event_id": stored.pk}, 0)] * 2
    assert stored.outcome == StripeEvent.Outcome.RECEIVED


def test_beat_leaves_an_event_queued_in_the_last_few_minutes_to_its_task(
    post_event, broker_taking, gift, refund, monkeypatch
):
    # Stored, drained and taken by the broker, its worker not there yet.
    post_event(refund)
    assert services.stripe_events_drain() == 1
    worker_arrives(monkeypatch)

    assert requeue_run(minutes=2) == 0
    assert StripeEvent.objects.get().outcome == StripeEvent.Outcome.RECEIVED
    assert requeue_run(minutes=6) == 1
    assert StripeEvent.objects.get().outcome == StripeEvent.Outcome.PROCESSED


def test_the_beat_task_runs_every_minute_and_queues_what_is_owed(
    gift, refund, django_capture_on_commit_callbacks
):
    [entry] = [
        e
        for e in settings.CELERY_BEAT_SCHEDULE.values()
        if e["task"] == stripe_events_requeue_received_task.name
    ]
    assert entry["schedule"] <= 60
    stored = services.stripe_event_store(event=refund)[0]
    StripeEvent.objects.filter(pk=stored.pk).update(
        received_at=timezone.now() - timedelta(minutes=6),
        queued_at=timezone.now() - timedelta(minutes=6),
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert stripe_events_requeue_received_task.delay().get() == 1

    gift.refresh_from_db()
    assert gift.status == Gift.Status.REFUNDED


def test_staff_process_again_an_event_still_received(
    otp_admin_client, gift, refund, django_capture_on_commit_callbacks
):
    stored = StripeEvent.objects.create(stripe_id=refund["id"], type=refund["type"], payload=refund)

    with django_capture_on_commit_callbacks(execute=True):
        response = otp_admin_client.post(
            reverse("admin:donations_stripeevent_changelist"),
            {"action": "process_again", "_selected_action": [stored.pk]},
            follow=True,
        )

    assert "Queued 1 event to be processed again." in response.content.decode()
    stored.refresh_from_db()
    assert stored.outcome == StripeEvent.Outcome.PROCESSED
    gift.refresh_from_db()
    assert (gift.status, gift.refunded_cents) == (Gift.Status.REFUNDED, 5000)


def test_the_nightly_reconcile_processes_an_event_still_received(
    fake_stripe, gift, refund, django_capture_on_commit_callbacks
):
    stored = StripeEvent.objects.create(stripe_id=refund["id"], type=refund["type"], payload=refund)
    StripeEvent.objects.filter(pk=stored.pk).update(received_at=timezone.now() - timedelta(hours=1))

    with django_capture_on_commit_callbacks(execute=True):
        counts = reconcile_stripe_task.delay().get()

    assert counts["retried"] == 1
    stored.refresh_from_db()
    assert stored.outcome == StripeEvent.Outcome.PROCESSED
    gift.refresh_from_db()
    assert gift.status == Gift.Status.REFUNDED


def outbox_run(minutes: int = 2) -> int:
    """Beat's outbox run, `minutes` after now."""
    return outbox.outbox_send_pending(now=timezone.now() + timedelta(minutes=minutes))


def test_a_receipt_queued_while_the_broker_refuses_is_sent_once_when_it_is_back(
    post_event, broker_refusing, fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    pending = GiftFactory(amount_cents=5000)
    post_event(
        p.event("checkout.session.completed", p.checkout_session(pending, payment_intent="pi_1"))
    )
    # A worker processes the event while the broker refuses what it queues in turn.
    with django_capture_on_commit_callbacks(execute=True):
        services.stripe_event_process(event_id=StripeEvent.objects.get().pk)
    pending.refresh_from_db()
    assert pending.status == Gift.Status.PAID
    assert mailoutbox == []
    assert OutboxMessage.objects.filter(task="donations.receipt_send").exists()

    broker_back()
    outbox_run()
    outbox_run(minutes=5)

    receipts = [m for m in mailoutbox if m.to == [pending.donor_email]]
    assert len(receipts) == 1
