"""The outbox: a task a change needs waits in the database until the broker takes it."""

from __future__ import annotations

import json
import socket
import time
from datetime import datetime, timedelta

import pytest
from django.db import transaction
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

from newsroom import outbox
from newsroom.celery import app as celery_app
from newsroom.models import OutboxMessage

pytestmark = pytest.mark.django_db


def enqueue_and_commit(task: str = "newsroom.no_such_task", **kwargs) -> OutboxMessage:
    with TestCase.captureOnCommitCallbacks(execute=True), transaction.atomic():
        message = outbox.outbox_enqueue(task=task, kwargs=kwargs)
    message.refresh_from_db()
    return message


def test_a_row_the_broker_refuses_stays_pending_with_the_reason(broker_refusing):
    message = enqueue_and_commit(article_id=7)

    assert message.state == OutboxMessage.State.PENDING
    assert message.attempts == 1
    assert "OperationalError" in message.last_error
    assert message.kwargs == {"article_id": 7}


def test_a_broker_that_never_answers_holds_the_commit_about_a_second(monkeypatch):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        monkeypatch.setattr(celery_app.conf, "broker_write_url", url)
        celery_app.conf.task_always_eager = False
        started = time.monotonic()
        message = enqueue_and_commit()
        waited = time.monotonic() - started

    assert message.state == OutboxMessage.State.PENDING
    assert "Timeout" in message.last_error or "timed out" in message.last_error
    assert waited < 3


def test_a_rolled_back_change_leaves_no_row_and_sends_nothing(broker_refusing):
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox.outbox_enqueue(task="newsroom.no_such_task", kwargs={})
        raise RuntimeError("the change failed")

    assert not OutboxMessage.objects.exists()


def test_the_beat_run_leaves_rows_younger_than_a_minute_to_their_own_commit(broker_refusing):
    message = enqueue_and_commit()

    assert outbox.outbox_send_pending(now=timezone.now() + timedelta(seconds=30)) == 0
    message.refresh_from_db()
    assert message.attempts == 1


def test_a_row_refused_again_and_again_is_marked_failed_and_left_alone(broker_refusing):
    message = enqueue_and_commit()
    later = timezone.now()
    for _ in range(outbox.MAX_ATTEMPTS + 2):
        later += timedelta(minutes=1)
        outbox.outbox_send_pending(now=later)

    message.refresh_from_db()
    assert message.state == OutboxMessage.State.FAILED
    assert message.attempts == outbox.MAX_ATTEMPTS


def test_in_process_a_task_that_cannot_run_is_kept_pending_with_its_error():
    assert celery_app.conf.task_always_eager

    message = enqueue_and_commit(task="newsroom.no_such_task")

    assert message.state == OutboxMessage.State.PENDING
    assert "no task named 'newsroom.no_such_task'" in message.last_error


def test_in_process_the_task_runs_on_commit_and_the_row_is_marked_sent():
    # The beat task itself, queued through the outbox: it runs here, at once.
    message = enqueue_and_commit(task="newsroom.outbox_send_pending")

    assert message.state == OutboxMessage.State.SENT
    assert message.sent_at is not None
    assert message.last_error == ""


def test_sent_rows_are_deleted_after_a_week_and_waiting_ones_are_kept(broker_refusing):
    week_ago = timezone.now() - timedelta(days=8)
    old = OutboxMessage.objects.create(
        task="a", state=OutboxMessage.State.SENT, created_at=week_ago, sent_at=week_ago
    )
    waiting = OutboxMessage.objects.create(task="b", created_at=week_ago)

    outbox.outbox_send_pending()

    assert not OutboxMessage.objects.filter(pk=old.pk).exists()
    assert OutboxMessage.objects.filter(pk=waiting.pk).exists()


def test_staff_see_what_waits_and_why_and_cannot_change_it(otp_admin_client, broker_refusing):
    message = enqueue_and_commit(task="subscriptions.somewhere")

    listing = otp_admin_client.get(reverse("admin:newsroom_outboxmessage_changelist"))
    detail = otp_admin_client.get(reverse("admin:newsroom_outboxmessage_change", args=[message.pk]))

    assert listing.status_code == 200
    assert b"subscriptions.somewhere" in listing.content
    assert b"Waiting to be sent" in listing.content
    assert b"OperationalError" in listing.content
    assert b"Save" not in detail.content
    add = otp_admin_client.get(reverse("admin:newsroom_outboxmessage_add"))
    assert add.status_code == 403


def test_a_countdown_is_the_eta_celery_reads_from_the_message(settings):
    if not settings.CELERY_BROKER_URL:
        pytest.skip("needs the Redis broker (CELERY_BROKER_URL)")
    celery_app.conf.task_always_eager = False
    client = outbox._connection().default_channel.client
    before = timezone.now()

    assert outbox.task_send(task="newsroom.no_such_task", kwargs={"n": 1}, countdown=2.5)

    [raw] = [
        message
        for message in client.lrange("celery", 0, -1)
        if json.loads(message)["headers"]["task"] == "newsroom.no_such_task"
    ]
    client.lrem("celery", 0, raw)
    eta = datetime.fromisoformat(json.loads(raw)["headers"]["eta"])
    assert timedelta(seconds=2.5) <= eta - before < timedelta(seconds=4)
