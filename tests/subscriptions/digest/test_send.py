"""Sending batches: one ESP call per batch, merge data, suppression, retries, exactly once."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from anymail.backends.test import EmailBackend as AnymailTestBackend
from anymail.exceptions import AnymailAPIError
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from subscriptions.digest import send
from subscriptions.digest import tasks as digest_tasks
from subscriptions.digest.compose import edition_compose
from subscriptions.digest.plan import STALLED_AFTER
from subscriptions.digest.send import SENDING_STALE_AFTER, edition_send_batch
from subscriptions.digest.staff import edition_send_test
from subscriptions.models import (
    Delivery,
    DeliveryBatch,
    Edition,
    Subscription,
    Suppression,
    email_hash,
)
from tests.subscriptions.digest.helpers import (
    fate_of,
    fates,
    plan_and_send,
    plan_only,
    send_all,
    states,
    subscribe,
)

pytestmark = pytest.mark.django_db
ANYMAIL_TEST = "anymail.backends.test.EmailBackend"
# Every copy of an edition is an issue of its newsletter's mailing list (RFC 2919).
LIST_ID = '"Mideast Daily" <mideast-daily.news.example>'


class FlakyEsp(AnymailTestBackend):
    """anymail's test ESP whose first `failures` calls find the connection refused."""

    failures = 0

    def post_to_esp(self, payload, message):
        if FlakyEsp.failures:
            FlakyEsp.failures -= 1
            raise AnymailAPIError("Connection refused", backend=self) from ConnectionRefusedError(
                111, "Connection refused"
            )
        return super().post_to_esp(payload, message)


class WorkerLost(BaseException):
    """What the process sees of a SIGKILL: nothing after this line runs."""


class DyingEsp(AnymailTestBackend):
    def post_to_esp(self, payload, message):
        super().post_to_esp(payload, message)
        raise WorkerLost


def test_an_esp_batch_is_one_call_with_each_readers_merge_data_and_headers(
    newsletter, esp, headlines, django_capture_on_commit_callbacks
):
    readers = [subscribe(newsletter, name=f"Reader {n}") for n in range(4)]

    [result] = plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    assert [len(m.to) for m in mail.outbox] == [3, 1]
    first = mail.outbox[0]
    params = first.anymail_test_params
    assert params["is_batch_send"] is True
    assert set(params["merge_data"]) == set(first.to)
    reader = next(r for r in readers if r.email == first.to[0])
    values = params["merge_data"][reader.email]
    assert values["greeting"] == f"Good morning, {reader.name}"
    assert values["unsubscribe_url"].startswith("https://news.example/unsubscribe/")
    headers = params["merge_headers"][reader.email]
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert values["unsubscribe_url"] in headers["List-Unsubscribe"]
    assert params["metadata"] == {
        "edition_id": str(result.edition.pk),
        "newsletter": newsletter.slug,
    }
    assert params["tags"] == ["digest", newsletter.slug]
    html = params["html_body"]
    assert "{{greeting_html}}" in html and "{{unsubscribe_url}}" in html
    assert reader.name not in html  # shared by the group: personal values are merged by the ESP
    assert states() == {Delivery.State.SENT: 4}
    # One ESP call per batch: the batch's row is its readers' whole record.
    assert not Delivery.objects.exists()


def test_other_backends_get_one_message_per_reader_with_their_own_links(
    newsletter, headlines, django_capture_on_commit_callbacks
):
    dana = subscribe(newsletter, name="Dana")
    omar = subscribe(newsletter, name="Omar")

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    assert sorted(m.to[0] for m in mail.outbox) == sorted([dana.email, omar.email])
    for message in mail.outbox:
        reader = dana if message.to == [dana.email] else omar
        html = message.alternatives[0][0]
        assert (
            f"Good morning, {reader.name}" in message.body
            and f"Good morning, {reader.name}" in html
        )
        assert "{{" not in message.body + html
        unsubscribe = re.search(r"https://news.example/unsubscribe/[^\s<>\"]+", message.body).group(
            0
        )
        assert unsubscribe in message.extra_headers["List-Unsubscribe"]
        assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    links = {re.search(r"unsubscribe/([^/]+)/", m.body).group(1) for m in mail.outbox}
    assert len(links) == 2
    assert (
        fate_of(dana).esp_message_id
        == mail.outbox[[m.to for m in mail.outbox].index([dana.email])].extra_headers["Message-ID"]
    )


def test_the_suppression_check_runs_right_before_sending(esp, planned):
    edition, _, (kept, bounced) = planned(2)
    # The address bounced on another email between planning and sending.
    Suppression.objects.create(email_sha256=email_hash(bounced.email), reason="hard_bounce")

    send_all(edition)

    assert [m.to for m in mail.outbox] == [[kept.email]]
    assert fate_of(bounced).state == Delivery.State.SUPPRESSED


def test_the_claim_reads_its_readers_with_one_array_parameter_on_postgresql(planned):
    if connection.vendor != "postgresql":
        pytest.skip("IN lists elsewhere")
    _, batch, _ = planned(3)

    with CaptureQueriesContext(connection) as queries:
        due, _ = send._readers(batch)

    assert [r.subscriber.pk for r in due] == batch.readers
    # Its own rows, the readers and their subscriptions, the suppressions: each list of
    # the batch's readers (or their hashes) is one array, not a parameter per reader.
    reads = [q["sql"] for q in queries.captured_queries]
    assert len(reads) == 3
    for sql in reads:
        assert " IN (" not in sql
        assert "= ANY(" in sql


def test_a_reader_who_unsubscribed_after_planning_is_not_sent(planned):
    edition, _, [gone] = planned()
    Subscription.objects.filter(subscriber=gone).update(status=Subscription.Status.UNSUBSCRIBED)

    send_all(edition)

    assert mail.outbox == []
    assert states() == {Delivery.State.SUPPRESSED: 1}


def test_an_esp_error_is_retried_and_each_reader_still_gets_one_email(
    newsletter, esp, eager_retries, headlines, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = f"{__name__}.FlakyEsp"
    FlakyEsp.failures = 2
    readers = [subscribe(newsletter) for _ in range(3)]

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    assert sorted(e for m in mail.outbox for e in m.to) == sorted(r.email for r in readers)
    batch = DeliveryBatch.objects.get()
    assert batch.state == DeliveryBatch.State.SENT and batch.attempts == 3
    assert Edition.objects.get().state == Edition.State.SENT


def test_retries_back_off_exponentially():
    waits = [digest_tasks.backoff(n) for n in range(5)]
    assert waits == sorted(waits)
    assert 30 <= waits[0] <= 45 and 480 <= waits[4] <= 495


def test_a_batch_that_keeps_failing_ends_failed_after_the_last_retry(
    newsletter, esp, eager_retries, headlines, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = f"{__name__}.FlakyEsp"
    FlakyEsp.failures = 100
    subscribe(newsletter)

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)
    FlakyEsp.failures = 0

    batch = DeliveryBatch.objects.get()
    assert batch.state == DeliveryBatch.State.FAILED
    assert batch.attempts == digest_tasks.SEND_MAX_RETRIES + 1
    assert "refused" in batch.error
    assert states() == {Delivery.State.FAILED: 1}


def test_a_task_redelivered_after_its_worker_died_mid_call_marks_the_batch_in_doubt(
    esp, planned, settings
):
    settings.EMAIL_BACKEND = f"{__name__}.DyingEsp"
    _, batch, _ = planned(2)

    with pytest.raises(WorkerLost):
        edition_send_batch(batch_id=batch.pk, task_id="task-7")
    settings.EMAIL_BACKEND = ANYMAIL_TEST
    outcome = edition_send_batch(batch_id=batch.pk, task_id="task-7")  # the broker redelivers

    assert outcome.state == DeliveryBatch.State.IN_DOUBT
    assert len(mail.outbox) == 1  # the call that was in flight; nothing resent
    batch.refresh_from_db()
    assert batch.state == DeliveryBatch.State.IN_DOUBT
    assert states() == {Delivery.State.IN_DOUBT: 2}
    assert Edition.objects.get().state == Edition.State.SENT  # nothing left to send; staff decide


def test_another_task_finding_a_batch_being_sent_leaves_it_alone(esp, planned):
    _, batch, _ = planned()
    DeliveryBatch.objects.filter(pk=batch.pk).update(
        state=DeliveryBatch.State.SENDING, task_id="task-1"
    )

    outcome = edition_send_batch(batch_id=batch.pk, task_id="task-2")

    assert outcome.state == "busy"
    assert DeliveryBatch.objects.get().state == DeliveryBatch.State.SENDING
    assert mail.outbox == []


def test_a_task_redelivered_after_the_batch_was_sent_does_nothing(esp, planned):
    _, batch, _ = planned()
    edition_send_batch(batch_id=batch.pk, task_id="task-1")

    outcome = edition_send_batch(batch_id=batch.pk, task_id="task-1")

    assert outcome.state == DeliveryBatch.State.SENT
    assert len(mail.outbox) == 1


def test_a_recipient_the_esp_refuses_is_failed_and_the_rest_are_sent(esp, planned, monkeypatch):
    from anymail.message import AnymailRecipientStatus

    edition, _, (kept, refused) = planned(2)

    def answer(self, payload, message):
        message.anymail_test_params = payload.get_params()
        mail.outbox.append(message)
        return {
            "recipient_status": {
                kept.email: AnymailRecipientStatus(message_id="m-1", status="queued"),
                refused.email: AnymailRecipientStatus(message_id=None, status="rejected"),
            }
        }

    monkeypatch.setattr(AnymailTestBackend, "post_to_esp", answer)
    send_all(edition)

    assert fate_of(kept).state == Delivery.State.SENT
    assert (fate_of(refused).state, fate_of(refused).error) == (
        Delivery.State.FAILED,
        "ESP status: rejected",
    )


def test_a_sent_batch_is_its_readers_whole_record(
    newsletter, esp, headlines, settings, django_capture_on_commit_callbacks
):
    settings.ESP_BATCH_SIZE = 20
    readers = [subscribe(newsletter) for _ in range(12)]

    [result] = plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    batch = result.edition.batches.get()
    assert (batch.state, batch.readers, batch.size) == (
        DeliveryBatch.State.SENT,
        [r.pk for r in readers],
        12,
    )
    assert not Delivery.objects.exists()
    assert {pk: fate.state for (_, pk), fate in fates().items()} == {
        r.pk: Delivery.State.SENT for r in readers
    }


def test_a_batch_whose_task_was_lost_is_given_another_by_the_planner(
    newsletter, headlines, django_capture_on_commit_callbacks
):
    import time_machine
    from django.utils import timezone

    reader = subscribe(newsletter)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        [result] = plan_only(send_now=True)  # the broker was down: no task was enqueued
        clock.shift(STALLED_AFTER - timedelta(minutes=1))
        plan_and_send(django_capture_on_commit_callbacks, send_now=True)
        assert mail.outbox == []

        clock.shift(timedelta(minutes=2))
        plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    assert [m.to for m in mail.outbox] == [[reader.email]]
    assert result.edition.batches.get().state == DeliveryBatch.State.SENT


def test_a_batch_left_sending_by_a_lost_task_is_reported_in_doubt(
    planned, django_capture_on_commit_callbacks
):
    import time_machine
    from django.utils import timezone

    _, batch, _ = planned()
    DeliveryBatch.objects.filter(pk=batch.pk).update(
        state=DeliveryBatch.State.SENDING, task_id="dead", started_at=timezone.now()
    )

    with time_machine.travel(
        timezone.now() + SENDING_STALE_AFTER + timedelta(minutes=1), tick=False
    ):
        plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    assert DeliveryBatch.objects.get().state == DeliveryBatch.State.IN_DOUBT
    assert states() == {Delivery.State.IN_DOUBT: 1}
    assert mail.outbox == []


class NoMergeHeadersEsp(AnymailTestBackend):
    """An anymail ESP that cannot take per-recipient headers in a batch call."""

    def __init__(self, *args, **kwargs):
        from anymail.backends.test import TestPayload

        class Payload(TestPayload):
            def set_merge_headers(self, merge_headers):
                self.unsupported_feature("merge_headers")

        super().__init__(*args, payload_class=Payload, **kwargs)


def test_an_esp_without_per_recipient_headers_gets_one_message_per_reader(
    newsletter, headlines, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = f"{__name__}.NoMergeHeadersEsp"
    readers = [subscribe(newsletter) for _ in range(3)]

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    assert sorted(m.to[0] for m in mail.outbox) == sorted(r.email for r in readers)
    for message in mail.outbox:
        assert "merge_data" not in message.anymail_test_params
        assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "{{" not in message.body
    assert states() == {Delivery.State.SENT: 3}


def test_each_readers_copy_names_the_newsletters_list(
    newsletter, headlines, django_capture_on_commit_callbacks
):
    subscribe(newsletter)

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    [message] = mail.outbox
    assert message.extra_headers["List-Id"] == LIST_ID
    assert message.message()["List-Id"] == LIST_ID


def test_an_esp_batch_names_the_list_for_all_its_readers(
    newsletter, headlines, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    subscribe(newsletter)
    subscribe(newsletter)

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    [message] = mail.outbox
    assert message.anymail_test_params["is_batch_send"] is True
    assert message.anymail_test_params["extra_headers"]["List-Id"] == LIST_ID


def test_a_test_send_carries_the_list_id_readers_get(newsletter, headlines):
    edition = edition_compose(newsletter=newsletter, date=timezone.localdate())

    edition_send_test(edition=edition, to="desk@news.example")

    [message] = mail.outbox
    assert message.extra_headers["List-Id"] == LIST_ID
