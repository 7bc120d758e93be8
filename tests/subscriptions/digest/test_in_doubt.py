"""In-doubt batches settled by asking the ESP: Postmark's message search, Mailgun's events."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import requests
import responses
from anymail.backends.test import EmailBackend as AnymailTestBackend
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from responses import matchers

from subscriptions.digest import tasks as digest_tasks
from subscriptions.digest.in_doubt import SETTLE_AFTER, batches_settle
from subscriptions.digest.ledger import reader_key
from subscriptions.digest.send import edition_send_batch
from subscriptions.models import Delivery, DeliveryBatch, Edition
from tests.helpers import login_staff
from tests.newsroom.factories import StaffFactory
from tests.subscriptions.digest.helpers import fate_of, plan_only, states, subscribe

pytestmark = pytest.mark.django_db
POSTMARK_SEARCH = "https://postmark.test/messages/outbound"
MAILGUN_EVENTS = "https://mailgun.test/v3/newsroom.example/events"


class WorkerLost(BaseException):
    """What the process sees of a SIGKILL: nothing after this line runs."""


class DyingEsp(AnymailTestBackend):
    """The ESP takes the batch; the worker dies before it hears the answer."""

    def post_to_esp(self, payload, message):
        super().post_to_esp(payload, message)
        raise WorkerLost


@pytest.fixture
def doubtful(newsletter, headlines, settings):
    """A batch of three readers in doubt: its worker died during the ESP call."""
    readers = [subscribe(newsletter) for _ in range(3)]
    settings.EMAIL_BACKEND = f"{__name__}.DyingEsp"
    [result] = plan_only(send_now=True)
    batch = result.edition.batches.get()
    with pytest.raises(WorkerLost):
        edition_send_batch(batch_id=batch.pk, task_id="task-1")
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    edition_send_batch(batch_id=batch.pk, task_id="task-1")  # the broker redelivers
    batch.refresh_from_db()
    assert batch.state == DeliveryBatch.State.IN_DOUBT
    mail.outbox.clear()
    return batch, readers


@pytest.fixture
def postmark(settings):
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {
        "POSTMARK_SERVER_TOKEN": "server-token",
        "POSTMARK_API_URL": "https://postmark.test/",
        "WEBHOOK_SECRET": "laptop:webhook",
    }


@pytest.fixture
def mailgun(settings):
    settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
    settings.ANYMAIL = {
        "MAILGUN_API_KEY": "key-test",
        "MAILGUN_API_URL": "https://mailgun.test/v3",
        "WEBHOOK_SECRET": "laptop:webhook",
    }


@pytest.fixture
def esp_network():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as network:
        yield network


def later():
    return timezone.now() + SETTLE_AFTER + timedelta(minutes=1)


def postmark_found(batch, email: str, message_id: str) -> dict:
    """Postmark's outbound search answer with one message (its docs' fields)."""
    return {
        "TotalCount": 1,
        "Messages": [
            {
                "Tag": "digest",
                "MessageID": message_id,
                "To": [{"Email": email, "Name": None}],
                "Recipients": [email],
                "Subject": "Mideast Daily",
                "Status": "Sent",
                "Metadata": {"edition_id": str(batch.edition_id), "newsletter": "mideast-daily"},
            }
        ],
    }


def answer_postmark(network, batch, found: dict[str, str], everyone) -> None:
    for reader in everyone:
        answer = (
            postmark_found(batch, reader.email, found[reader.email])
            if reader.email in found
            else {"TotalCount": 0, "Messages": []}
        )
        network.add(
            responses.GET,
            POSTMARK_SEARCH,
            json=answer,
            match=[
                matchers.query_param_matcher(
                    {"recipient": reader.email, "metadata_edition_id": str(batch.edition_id)},
                    strict_match=False,
                ),
                matchers.header_matcher({"X-Postmark-Server-Token": "server-token"}),
            ],
        )


def resend(settings, callbacks) -> None:
    """Run the batch tasks the settling queued, through anymail's test ESP."""
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    for callback in callbacks:
        callback()


def test_postmark_readers_found_are_recorded_sent_and_the_others_resent_once(
    doubtful, postmark, esp_network, settings, django_capture_on_commit_callbacks
):
    batch, readers = doubtful
    found, missing = readers[:2], readers[2]
    answer_postmark(esp_network, batch, {r.email: f"pm-{n}" for n, r in enumerate(found)}, readers)

    with django_capture_on_commit_callbacks() as callbacks:
        [settled] = batches_settle(now=later())
    resend(settings, callbacks)

    assert (settled.sent, settled.resent) == (2, 1)
    assert all(call.request.req_kwargs["timeout"] for call in esp_network.calls)
    for n, reader in enumerate(found):
        fate = fate_of(reader)
        assert (fate.state, fate.esp_message_id) == (Delivery.State.SENT, f"pm-{n}")
    assert [m.to for m in mail.outbox] == [[missing.email]]
    assert fate_of(missing).state == Delivery.State.SENT
    assert DeliveryBatch.objects.get().state == DeliveryBatch.State.SENT
    assert Edition.objects.get().state == Edition.State.SENT


def test_a_batch_postmark_had_entirely_is_sent_with_nothing_resent(
    doubtful, postmark, esp_network, django_capture_on_commit_callbacks
):
    batch, readers = doubtful
    answer_postmark(esp_network, batch, {r.email: r.email for r in readers}, readers)

    with django_capture_on_commit_callbacks(execute=True):
        [settled] = batches_settle(now=later())

    assert (settled.sent, settled.resent) == (3, 0)
    assert mail.outbox == []
    assert DeliveryBatch.objects.get().state == DeliveryBatch.State.SENT


def test_an_esp_that_does_not_answer_leaves_the_batch_in_doubt(doubtful, postmark, esp_network):
    esp_network.add(responses.GET, POSTMARK_SEARCH, body=requests.ReadTimeout("timed out"))

    assert batches_settle(now=later()) == []

    assert DeliveryBatch.objects.get().state == DeliveryBatch.State.IN_DOUBT
    assert states() == {Delivery.State.IN_DOUBT: 3}


def test_a_batch_just_in_doubt_waits_for_the_esps_search_to_catch_up(
    doubtful, postmark, esp_network
):
    assert batches_settle(now=timezone.now()) == []

    assert len(esp_network.calls) == 0
    assert DeliveryBatch.objects.get().state == DeliveryBatch.State.IN_DOUBT


def mailgun_accepted(batch, email: str, delivery_id: str, message_id: str) -> dict:
    """An `accepted` event of Mailgun's events API (its docs' fields)."""
    return {
        "event": "accepted",
        "id": f"event-{message_id}",
        "timestamp": timezone.now().timestamp(),
        "recipient": email,
        "user-variables": {
            "edition_id": str(batch.edition_id),
            "newsletter": "mideast-daily",
            "delivery_id": str(delivery_id),
        },
        "message": {"headers": {"message-id": message_id, "to": email}},
    }


def test_mailgun_readers_found_in_its_events_are_sent_and_the_others_resent(
    doubtful, mailgun, esp_network, settings, django_capture_on_commit_callbacks
):
    batch, readers = doubtful
    deliveries = {pk: reader_key(batch.pk, pk) for pk in batch.readers}
    page_two = f"{MAILGUN_EVENTS}/page-two"
    esp_network.add(
        responses.GET,
        MAILGUN_EVENTS,
        json={
            "items": [mailgun_accepted(batch, readers[0].email, deliveries[readers[0].pk], "mg-0")],
            "paging": {"next": page_two},
        },
        match=[
            matchers.query_param_matcher(
                {
                    "event": "accepted",
                    "user-variables": json.dumps({"edition_id": str(batch.edition_id)}),
                },
                strict_match=False,
            )
        ],
    )
    esp_network.add(
        responses.GET,
        page_two,
        json={
            "items": [mailgun_accepted(batch, readers[1].email, deliveries[readers[1].pk], "mg-1")],
            "paging": {"next": f"{MAILGUN_EVENTS}/page-three"},
        },
    )
    esp_network.add(responses.GET, f"{MAILGUN_EVENTS}/page-three", json={"items": []})

    with django_capture_on_commit_callbacks() as callbacks:
        [settled] = batches_settle(now=later())
    resend(settings, callbacks)

    assert (settled.sent, settled.resent) == (2, 1)
    assert fate_of(readers[1]).esp_message_id == "mg-1"
    assert [m.to for m in mail.outbox] == [[readers[2].email]]


def test_mailgun_paging_to_another_host_is_not_followed(doubtful, mailgun, esp_network):
    esp_network.add(
        responses.GET,
        MAILGUN_EVENTS,
        json={"items": [{"event": "accepted"}], "paging": {"next": "https://elsewhere.test/"}},
    )

    batches_settle(now=later())

    assert [call.request.url.split("?")[0] for call in esp_network.calls] == [MAILGUN_EVENTS]


def test_elsewhere_in_doubt_batches_wait_for_staff(doubtful, settings, esp_network):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"

    assert batches_settle(now=later()) == []

    assert DeliveryBatch.objects.get().state == DeliveryBatch.State.IN_DOUBT


def test_beat_settles_in_doubt_batches(doubtful, postmark, esp_network, time_machine):
    batch, readers = doubtful
    answer_postmark(esp_network, batch, {r.email: r.email for r in readers}, readers)
    time_machine.move_to(later())

    digest_tasks.digest_settle_in_doubt_task.delay()

    assert DeliveryBatch.objects.get().state == DeliveryBatch.State.SENT
    assert "settle-in-doubt-digest-batches" in settings_beat()


def settings_beat() -> list[str]:
    from django.conf import settings

    return [
        name
        for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
        if entry["task"] == digest_tasks.digest_settle_in_doubt_task.name
    ]


def test_staff_settle_selected_batches_from_the_admin(
    client, doubtful, postmark, esp_network, time_machine
):
    batch, readers = doubtful
    answer_postmark(esp_network, batch, {r.email: r.email for r in readers}, readers)
    login_staff(client, StaffFactory())
    time_machine.move_to(later())

    response = client.post(
        reverse("admin:subscriptions_deliverybatch_changelist"),
        {"action": "settle_from_esp", "_selected_action": [batch.pk]},
        follow=True,
    )

    assert "3 readers found in the ESP" in response.content.decode()
    assert DeliveryBatch.objects.get().state == DeliveryBatch.State.SENT


def test_the_dashboard_counts_every_reader_in_doubt(client, doubtful):
    login_staff(client, StaffFactory(is_superuser=True))

    page = client.get(reverse("admin:index")).content.decode()

    assert "3 readers in 1 batch in doubt" in page
    assert "?state__exact=in_doubt" in page
