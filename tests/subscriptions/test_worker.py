"""The same paths through a real Celery worker on the broker.

Skipped without PostgreSQL and Redis.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from anymail.signals import AnymailTrackingEvent, tracking
from django.utils import timezone

from newsroom.celery import app as celery_app
from newsroom.models import OutboxMessage
from subscriptions.models import Suppression, TrackingEvent
from subscriptions.selectors import suppressed_among
from tests.subscriptions.factories import NewsletterFactory, SubscriptionFactory
from tests.subscriptions.helpers import signup, wait_for

pytestmark = pytest.mark.worker


def written_email(outbox: Path) -> str:
    """The first email the file backend has finished writing, or "" while none has.

    The backend opens the file before it writes: a file seen at once may still be empty.
    Each message ends with a line of 79 dashes, written last.
    """
    for path in sorted(outbox.glob("*.log")) if outbox.exists() else []:
        text = path.read_text()
        if "-" * 79 in text:
            return text
    return ""


def test_a_bounce_is_processed_by_the_worker(celery_worker):
    SubscriptionFactory(subscriber__email="far@mail.example")

    tracking.send(
        sender=object,
        event=AnymailTrackingEvent(
            event_type="bounced",
            timestamp=timezone.now(),
            event_id="worker-bounce-1",
            recipient="far@mail.example",
            esp_event={},
        ),
        esp_name="TestESP",
    )

    wait_for(lambda: suppressed_among(["far@mail.example"]))
    assert Suppression.objects.get().reason == Suppression.Reason.HARD_BOUNCE
    assert TrackingEvent.objects.get().processed_at is not None


def test_the_worker_sends_the_confirmation_email(worker_outbox, client):
    outbox = worker_outbox
    daily = NewsletterFactory()

    signup(client, "queued@mail.example", daily)

    text = wait_for(lambda: written_email(outbox))
    assert "To: queued@mail.example" in text
    assert "/newsletters/confirm/" in text


def test_a_reader_who_signed_up_while_the_broker_refused_gets_one_confirmation(
    worker_outbox, client, broker_refusing
):
    outbox = worker_outbox
    daily = NewsletterFactory()

    response = signup(client, "late@mail.example", daily)

    assert response.status_code == 200
    assert b"Check your inbox" in response.content
    assert OutboxMessage.objects.get().state == OutboxMessage.State.PENDING

    # The broker is back; a minute later beat queues its outbox run, as it does every minute.
    celery_app.conf.broker_write_url = None
    OutboxMessage.objects.update(created_at=timezone.now() - timedelta(minutes=2))
    celery_app.send_task("newsroom.outbox_send_pending")
    wait_for(lambda: OutboxMessage.objects.get().state == OutboxMessage.State.SENT)
    files = wait_for(lambda: list(Path(outbox).glob("*.log")) if outbox.exists() else [])
    celery_app.send_task("newsroom.outbox_send_pending")
    time.sleep(3)

    texts = [path.read_text() for path in Path(outbox).glob("*.log")]
    assert files
    assert sum(text.count("To: late@mail.example") for text in texts) == 1


def test_signing_up_again_while_the_broker_refused_neither_blocks_nor_doubles(
    worker_outbox, client, broker_refusing
):
    outbox = worker_outbox
    daily = NewsletterFactory()

    assert signup(client, "eager@mail.example", daily).status_code == 200
    assert signup(client, "eager@mail.example", daily).status_code == 200

    celery_app.conf.broker_write_url = None
    OutboxMessage.objects.update(created_at=timezone.now() - timedelta(minutes=2))
    celery_app.send_task("newsroom.outbox_send_pending")
    wait_for(lambda: not OutboxMessage.objects.exclude(state=OutboxMessage.State.SENT).exists())
    wait_for(lambda: list(Path(outbox).glob("*.log")) if outbox.exists() else [])
    time.sleep(3)  # room for a second email, were one coming

    texts = [path.read_text() for path in Path(outbox).glob("*.log")]
    assert sum(text.count("To: eager@mail.example") for text in texts) == 1


def test_a_bounce_received_while_the_broker_refused_is_applied_once_it_is_back(
    celery_worker, broker_refusing
):
    SubscriptionFactory(subscriber__email="gone@mail.example")

    tracking.send(
        sender=object,
        event=AnymailTrackingEvent(
            event_type="bounced",
            timestamp=timezone.now(),
            event_id="worker-bounce-refused",
            recipient="gone@mail.example",
            esp_event={},
        ),
        esp_name="TestESP",
    )
    assert OutboxMessage.objects.get().state == OutboxMessage.State.PENDING

    celery_app.conf.broker_write_url = None
    OutboxMessage.objects.update(created_at=timezone.now() - timedelta(minutes=2))
    celery_app.send_task("newsroom.outbox_send_pending")

    wait_for(lambda: suppressed_among(["gone@mail.example"]))
    assert TrackingEvent.objects.get().processed_at is not None
