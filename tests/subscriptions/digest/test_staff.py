"""What staff do to a send: resend a batch in doubt, pause and resume an edition."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from newsroom import outbox
from newsroom.celery import app as celery_app
from newsroom.models import OutboxMessage
from subscriptions.digest.staff import batch_resend, edition_pause, edition_resume
from subscriptions.models import Delivery, DeliveryBatch, Edition
from tests.subscriptions.digest.helpers import fate_of, plan_only, send_all, subscribe

pytestmark = pytest.mark.django_db


def test_staff_resend_an_in_doubt_batch_once(
    newsletter, esp, headlines, django_capture_on_commit_callbacks
):
    reader = subscribe(newsletter)
    [result] = plan_only(send_now=True)
    batch = result.edition.batches.get()
    DeliveryBatch.objects.filter(pk=batch.pk).update(state=DeliveryBatch.State.IN_DOUBT)

    with django_capture_on_commit_callbacks(execute=True):
        assert batch_resend(batch=batch) == 1
        assert batch_resend(batch=batch) == 0

    assert [m.to for m in mail.outbox] == [[reader.email]]
    assert fate_of(reader).state == Delivery.State.SENT


def test_a_paused_edition_holds_its_batches_until_resumed(
    newsletter, esp, headlines, django_capture_on_commit_callbacks
):
    subscribe(newsletter)
    [result] = plan_only(send_now=True)
    edition = result.edition
    edition_pause(edition=edition)

    assert send_all(edition)[0].state == "paused"
    assert mail.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        assert edition_resume(edition=edition) == 1

    assert len(mail.outbox) == 1
    assert Edition.objects.get().state == Edition.State.SENT


def test_resuming_while_the_broker_refuses_loses_no_batch(
    newsletter, esp, headlines, django_capture_on_commit_callbacks, broker_refusing
):
    reader = subscribe(newsletter)
    [result] = plan_only(send_now=True)
    edition = result.edition
    edition_pause(edition=edition)

    with django_capture_on_commit_callbacks(execute=True):
        assert edition_resume(edition=edition) == 1

    assert mail.outbox == []
    assert OutboxMessage.objects.get().state == OutboxMessage.State.PENDING
    # The broker is back; beat's outbox run hands the batch over, played here in-process.
    celery_app.conf.task_always_eager = True
    outbox.outbox_send_pending(now=timezone.now() + timedelta(minutes=2))
    assert [m.to for m in mail.outbox] == [[reader.email]]
    assert Edition.objects.get().state == Edition.State.SENT


def test_an_in_doubt_batch_resent_while_the_broker_refuses_goes_once_it_is_back(
    newsletter, esp, headlines, django_capture_on_commit_callbacks, broker_refusing
):
    reader = subscribe(newsletter)
    [result] = plan_only(send_now=True)
    batch = result.edition.batches.get()
    DeliveryBatch.objects.filter(pk=batch.pk).update(state=DeliveryBatch.State.IN_DOUBT)

    with django_capture_on_commit_callbacks(execute=True):
        assert batch_resend(batch=batch) == 1

    celery_app.conf.task_always_eager = True
    outbox.outbox_send_pending(now=timezone.now() + timedelta(minutes=2))
    outbox.outbox_send_pending(now=timezone.now() + timedelta(minutes=4))
    assert [m.to for m in mail.outbox] == [[reader.email]]
    assert fate_of(reader).state == Delivery.State.SENT
