"""Staff watch and steer a send in the admin."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from subscriptions.digest.compose import edition_compose
from subscriptions.digest.send import edition_send_batch
from subscriptions.models import Delivery, DeliveryBatch, Edition, Subscriber, TrackingEvent
from tests.helpers import login_staff
from tests.newsroom.factories import CategoryFactory, StaffFactory
from tests.subscriptions.digest.helpers import fates, news, plan_only, states, subscribe

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    user = StaffFactory(email="desk@news.example")
    login_staff(client, user)
    return user


@pytest.fixture
def sending(newsletter):
    """An edition mid-send: one reader sent, one queued, one batch in doubt."""
    news(headline="Ceasefire talks resume in Cairo", top_story_rank=1)
    readers = [subscribe(newsletter) for _ in range(3)]
    [result] = plan_only(send_now=True, batch_size=1)
    batches = list(result.edition.batches.order_by("pk"))
    edition_send_batch(batch_id=batches[0].pk, task_id="t-1")
    DeliveryBatch.objects.filter(pk=batches[2].pk).update(state=DeliveryBatch.State.IN_DOUBT)
    TrackingEvent.objects.create(
        esp_event_id="e-1",
        event_type="opened",
        recipient=readers[0].email,
        edition=result.edition,
        occurred_at=timezone.now(),
    )
    mail.outbox.clear()
    return result.edition, batches


def change_url(edition):
    return reverse("admin:subscriptions_edition_change", args=[edition.pk])


def test_the_edition_page_shows_live_progress_and_counts(client, staff, sending):
    edition, _ = sending

    page = client.get(change_url(edition)).content.decode()

    assert '<progress max="3" value="2"' in page
    assert "<dt>Sent</dt><dd>1</dd>" in page
    assert "<dt>Queued</dt><dd>1</dd>" in page
    assert "<dt>In doubt</dt><dd>1</dd>" in page
    assert "<dt>Opened</dt><dd>1</dd>" in page
    assert 'http-equiv="refresh"' in page  # refreshes itself while sending


def test_the_edition_list_shows_state_and_progress(client, staff, sending):
    page = client.get(reverse("admin:subscriptions_edition_changelist")).content.decode()

    assert "Sending" in page and "<progress" in page


def test_a_skipped_edition_says_why(client, staff, newsletter):
    edition = edition_compose(newsletter=newsletter, date=timezone.localdate())

    page = client.get(change_url(edition)).content.decode()

    assert "Nothing was published" in page


def test_staff_resend_an_in_doubt_batch(client, staff, sending, django_capture_on_commit_callbacks):
    _, batches = sending
    [doubtful] = Subscriber.objects.filter(pk__in=batches[2].readers)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:subscriptions_deliverybatch_resend", args=[batches[2].pk])
        )

    assert response.status_code == 302
    assert [m.to for m in mail.outbox] == [[doubtful.email]]
    assert DeliveryBatch.objects.get(pk=batches[2].pk).state == DeliveryBatch.State.SENT


def test_staff_record_an_in_doubt_batch_as_sent(client, staff, sending):
    _, batches = sending

    client.post(reverse("admin:subscriptions_deliverybatch_mark_sent", args=[batches[2].pk]))

    [doubtful] = batches[2].readers
    assert fates()[(batches[2].edition_id, doubtful)].state == Delivery.State.SENT
    assert mail.outbox == []


def test_preview_as_a_subscriber_or_a_followed_set(client, staff, newsletter):
    economy = CategoryFactory(name="Economy")
    news(headline="Ceasefire talks resume in Cairo", top_story_rank=1)
    news(headline="Port traffic rises for a third month", category=economy)
    reader = subscribe(newsletter, name="Dana", follows=[economy])
    edition = edition_compose(newsletter=newsletter, date=timezone.localdate())
    url = reverse("admin:subscriptions_edition_preview", args=[edition.pk])

    as_reader = client.get(url, {"subscriber": reader.email}).content.decode()
    as_set = client.get(url, {"follow": [f"c:{economy.pk}"]}).content.decode()

    assert "Good morning, Dana" in as_reader and "Port traffic rises" in as_reader
    assert "/unsubscribe/" in as_reader
    assert "Port traffic rises" in as_set and "Good morning" in as_set
    assert "{{" not in as_reader + as_set
    unknown = client.get(url, {"subscriber": "nobody@mail.example"})
    assert unknown.status_code == 302


def test_send_a_test_to_me(client, staff, sending):
    edition, _ = sending

    client.post(reverse("admin:subscriptions_edition_send_test", args=[edition.pk]))

    [message] = mail.outbox
    assert message.to == ["desk@news.example"]
    assert message.subject.startswith("[Test]")
    assert Delivery.objects.filter(subscriber__email="desk@news.example").count() == 0


def test_a_test_copy_is_marked_in_the_staff_members_language(client, staff, sending):
    from staff.models import StaffPreference

    edition, _ = sending
    StaffPreference.objects.create(user=staff, language="he")

    client.post(reverse("admin:subscriptions_edition_send_test", args=[edition.pk]))

    [message] = mail.outbox
    assert message.subject.startswith("[בדיקה] ")
    assert "[Test]" not in message.subject


def test_pause_and_resume(client, staff, sending, django_capture_on_commit_callbacks):
    edition, _ = sending

    client.post(reverse("admin:subscriptions_edition_pause", args=[edition.pk]))
    assert Edition.objects.get().state == Edition.State.PAUSED
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("admin:subscriptions_edition_resume", args=[edition.pk]))

    assert len(mail.outbox) == 1  # the queued reader; the in-doubt one waits for staff
    assert Delivery.State.QUEUED not in states()


def test_changes_need_a_post(client, staff, sending):
    edition, _ = sending

    assert (
        client.get(reverse("admin:subscriptions_edition_pause", args=[edition.pk])).status_code
        == 405
    )
    assert Edition.objects.get().state == Edition.State.SENDING
