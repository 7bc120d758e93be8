"""The digest's ledger: batch rows hold their readers; a reader row only where one differs."""

from __future__ import annotations

from functools import partial

import pytest
from anymail.signals import AnymailTrackingEvent, tracking
from django.core import mail
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import TestCase
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from subscriptions.digest import plan
from subscriptions.digest.ledger import copies_sent_by_language, edition_readers, reader_key
from subscriptions.digest.staff import edition_progress
from subscriptions.models import Delivery, DeliveryBatch, Suppression, TrackingEvent, email_hash
from subscriptions.selectors import subscriber_export
from subscriptions.services.leaving import subscriber_delete
from tests.newsroom.factories import CategoryFactory
from tests.subscriptions.digest.helpers import (
    fates,
    news,
    plan_and_send,
    plan_only,
    send_all,
    states,
    subscribe,
)

pytestmark = pytest.mark.django_db


def test_a_million_readers_cost_batches_not_rows_each_reader_once(
    newsletter, esp, headlines, django_capture_on_commit_callbacks
):
    readers = [subscribe(newsletter) for _ in range(7)]
    bounced = subscribe(newsletter)
    Suppression.objects.create(email_sha256=email_hash(bounced.email), reason="hard_bounce")

    [result] = plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    # Three to a batch (the esp fixture): three batch rows, one reader row (the bounce).
    assert [b.readers for b in result.edition.batches.order_by("pk")] == [
        [r.pk for r in readers[:3]],
        [r.pk for r in readers[3:6]],
        [readers[6].pk],
    ]
    assert list(Delivery.objects.values_list("subscriber_id", "state")) == [
        (bounced.pk, Delivery.State.SUPPRESSED)
    ]
    assert sorted(e for m in mail.outbox for e in m.to) == sorted(r.email for r in readers)
    assert states() == {Delivery.State.SENT: 7, Delivery.State.SUPPRESSED: 1}


def test_a_reader_whose_follows_changed_since_the_last_run_is_not_batched_again(newsletter):
    politics, culture = CategoryFactory(), CategoryFactory()
    news()
    moving = subscribe(newsletter, follows=[politics])
    plan_only(send_now=True)
    moving.follows.update(category=culture)  # another followed set: another batch's key
    subscribe(newsletter, follows=[culture])

    [second] = plan_only(send_now=True)

    assert second.queued == 1
    planned = [pk for b in DeliveryBatch.objects.all() for pk in b.readers]
    assert sorted(planned) == sorted(set(planned)) and moving.pk in planned


def test_a_planner_run_overtaken_by_another_stops_and_each_reader_is_in_one_batch(
    newsletter, settings, monkeypatch
):
    settings.ESP_BATCH_SIZE = 2
    news()
    readers = [subscribe(newsletter) for _ in range(6)]
    flush = plan._flush_pack
    overtaken = []

    def a_second_planner_starts_first(**kwargs):
        # The first run is about to write its first batch when another run starts and
        # writes everything; the first run's batch must not follow.
        if not overtaken:
            overtaken.append(kwargs["run"])
            plan.digest_plan(send_now=True, enqueue=False)
        return flush(**kwargs)

    monkeypatch.setattr(plan, "_flush_pack", a_second_planner_starts_first)
    [first] = plan.digest_plan(send_now=True, enqueue=False)

    assert first.queued == 0
    planned = [pk for b in DeliveryBatch.objects.all() for pk in b.readers]
    assert sorted(planned) == sorted(r.pk for r in readers)


def send_event(event_type: str, *, recipient: str, metadata: dict, event_id: str) -> None:
    event = AnymailTrackingEvent(
        event_type=event_type,
        timestamp=timezone.now(),
        event_id=event_id,
        recipient=recipient,
        message_id="m-1",
        metadata=metadata,
        esp_event={"raw": event_type},
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        tracking.send(sender=object, event=event, esp_name="TestESP")


def test_a_tracking_event_finds_its_batch_and_a_stray_key_finds_nothing(
    newsletter, esp, headlines, django_capture_on_commit_callbacks
):
    dana, omar = subscribe(newsletter), subscribe(newsletter)
    [result] = plan_and_send(django_capture_on_commit_callbacks, send_now=True)
    batch = result.edition.batches.get()
    edition_id = str(result.edition.pk)

    send_event(
        "bounced",
        recipient=dana.email,
        metadata={"edition_id": edition_id, "delivery_id": reader_key(batch.pk, dana.pk)},
        event_id="e-1",
    )
    # Omar's key on an event about Dana: another reader's copy, not hers.
    send_event(
        "opened",
        recipient=dana.email,
        metadata={"edition_id": edition_id, "delivery_id": reader_key(batch.pk, omar.pk)},
        event_id="e-2",
    )

    assert TrackingEvent.objects.get(esp_event_id="e-1").batch == batch
    assert TrackingEvent.objects.get(esp_event_id="e-2").batch is None
    assert edition_progress(result.edition)["bounced"] == 1


def test_a_readers_data_export_lists_the_editions_their_batches_brought(
    newsletter, esp, headlines, django_capture_on_commit_callbacks
):
    reader = subscribe(newsletter)
    other = subscribe(newsletter)
    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    exported = subscriber_export(subscriber=reader)["deliveries"]

    assert [(d["newsletter"], d["state"]) for d in exported] == [
        (newsletter.name, Delivery.State.SENT)
    ]
    assert exported[0]["edition"] == timezone.localdate().isoformat()
    assert exported[0]["sent_at"] is not None
    assert subscriber_export(subscriber=other)["deliveries"] == exported


def test_a_reader_deleted_after_planning_is_skipped_and_named_nowhere(esp, planned):
    edition, batch, (stays, leaves) = planned(2)
    gone = leaves.pk
    subscriber_delete(subscriber=leaves, actor=None, by="reader")

    send_all(edition)

    assert [m.to for m in mail.outbox] == [[stays.email]]
    assert gone in DeliveryBatch.objects.get(pk=batch.pk).readers  # an id that names nobody now
    assert set(fates()) == {(edition.pk, stays.pk)}


def test_staff_progress_counts_a_sent_batch_in_two_queries(
    newsletter, esp, headlines, django_capture_on_commit_callbacks
):
    readers = [subscribe(newsletter) for _ in range(5)]
    Suppression.objects.create(email_sha256=email_hash(readers[0].email), reason="hard_bounce")
    [result] = plan_only(send_now=True)
    send_all(result.edition)  # the suppression is found at the claim: a reader row

    with CaptureQueriesContext(connection) as queries:
        progress = edition_progress(result.edition)

    assert (progress["sent"], progress["suppressed"], progress["total"]) == (4, 1, 5)
    assert progress["percent"] == 100
    assert len(queries) == 3  # batches, reader rows, tracked events


def test_copies_sent_are_counted_in_each_batchs_language(
    newsletter, esp, django_capture_on_commit_callbacks
):
    news(language="en", top_story_rank=1)
    news(language="ar", top_story_rank=2)
    for _ in range(2):
        subscribe(newsletter, language="en")
    arabic = [subscribe(newsletter, language="ar") for _ in range(3)]
    Suppression.objects.create(email_sha256=email_hash(arabic[0].email), reason="hard_bounce")
    [result] = plan_only(send_now=True)
    send_all(result.edition)

    assert copies_sent_by_language([result.edition.pk]) == {"en": 2, "ar": 2}


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_unfinished_batches_readers_into_their_lists():
    before = [("subscriptions", "0013_newsletter_translations_admin_names")]
    after = [("subscriptions", "0014_batch_ledger")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    model = partial(old.get_model, "subscriptions")
    newsletter = model("Newsletter").objects.create(name="Daily", slug="daily")
    edition = model("Edition").objects.create(
        newsletter=newsletter, date=timezone.localdate(), cutoff_end=timezone.now()
    )
    readers = [model("Subscriber").objects.create(email=f"r{n}@mail.example") for n in range(4)]
    sent = model("DeliveryBatch").objects.create(edition=edition, state="sent")
    in_doubt = model("DeliveryBatch").objects.create(edition=edition, state="in_doubt")
    for reader, batch, state in [
        (readers[0], sent, "sent"),
        (readers[1], in_doubt, "sent"),  # accepted alone (SMTP) before the worker died
        (readers[2], in_doubt, "in_doubt"),
        (readers[3], in_doubt, "in_doubt"),
    ]:
        model("Delivery").objects.create(
            edition=edition, subscriber=reader, batch=batch, state=state
        )

    executor = MigrationExecutor(connection)
    executor.migrate(after)
    new = executor.loader.project_state(after).apps
    batches = {b.pk: b for b in new.get_model("subscriptions", "DeliveryBatch").objects.all()}
    rows = sorted(
        new.get_model("subscriptions", "Delivery").objects.values_list("subscriber_id", "state")
    )
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert (batches[sent.pk].readers, batches[sent.pk].size) == ([], 0)  # history as it was
    assert batches[in_doubt.pk].readers == [r.pk for r in readers[1:]]
    assert rows == [(readers[0].pk, "sent"), (readers[1].pk, "sent")]
    by_reader = edition_readers(edition.pk)
    assert {pk: fate.state for pk, fate in by_reader.items()} == {
        readers[0].pk: Delivery.State.SENT,
        readers[1].pk: Delivery.State.SENT,
        readers[2].pk: Delivery.State.IN_DOUBT,
        readers[3].pk: Delivery.State.IN_DOUBT,
    }
