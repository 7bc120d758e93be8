"""Batches of several small followed sets: one ESP call and one row for readers of many sets.

Only an ESP taking each reader's whole message in one call (Postmark here, through
anymail's real backend with the network cut beneath it) mixes followed sets in a batch.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import timedelta

import pytest
import responses
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from newsroom.models import Category
from staff import dashboard
from subscriptions.digest.in_doubt import SETTLE_AFTER, batches_settle
from subscriptions.digest.ledger import copies_sent_by_language, reader_editions
from subscriptions.digest.send import edition_send_batch
from subscriptions.digest.staff import batch_resend, edition_progress
from subscriptions.models import Delivery, DeliveryBatch, Edition
from tests.helpers import login_staff
from tests.newsroom.factories import CategoryFactory, StaffFactory, TopicFactory
from tests.subscriptions.digest.helpers import (
    fate_of,
    news,
    plan_and_send,
    plan_only,
    states,
    subscribe,
)
from tests.subscriptions.digest.providers import (
    assert_each_reader_got_their_own,
    events_of,
    post_webhook,
    postmark_received,
    use_esp,
)

pytestmark = pytest.mark.django_db
POSTMARK = "https://postmark.test/"


@pytest.fixture
def postmark(settings):
    """Postmark's batch call answering each message accepted, or 500 while `down`."""
    use_esp(
        settings,
        "anymail.backends.postmark.EmailBackend",
        POSTMARK_SERVER_TOKEN="token",
        POSTMARK_API_URL=POSTMARK,
    )
    state = {"down": False}

    def accept(request):
        if state["down"]:
            return 500, {}, json.dumps({"ErrorCode": 500, "Message": "Internal error"})
        answers = [
            {"To": item["To"], "MessageID": str(uuid.uuid4()), "ErrorCode": 0, "Message": "OK"}
            for item in json.loads(request.body)
        ]
        return 200, {}, json.dumps(answers)

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.add_callback(responses.POST, f"{POSTMARK}email/batch", callback=accept)
        mocked.down = state
        yield mocked


@pytest.fixture
def sets(newsletter):
    """Six followed sets (one category or topic each, each with its own story), two readers
    in each: {owner: (headline, readers)}."""
    news(headline="Lead story of the morning", top_story_rank=1)
    news(headline="Second story of the morning", top_story_rank=2)
    owners = [CategoryFactory() for _ in range(3)] + [TopicFactory() for _ in range(3)]
    readers = {}
    for number, owner in enumerate(owners):
        headline = f"Only for followers of set {number}"
        if isinstance(owner, Category):
            news(category=owner, headline=headline)
        else:
            news(headline=headline).topics.add(owner)
        readers[owner] = (headline, [subscribe(newsletter, follows=[owner]) for _ in range(2)])
    return readers


def everyone(sets) -> list:
    return [reader for _, readers in sets.values() for reader in readers]


def assert_each_got_their_own_sections(messages: list[dict], sets) -> None:
    """Every reader one message, with their own set's story and no other set's."""
    assert Counter(m["to"] for m in messages) == Counter(r.email for r in everyone(sets))
    headlines = [headline for headline, _ in sets.values()]
    for headline, readers in sets.values():
        for reader in readers:
            [message] = [m for m in messages if m["to"] == reader.email]
            assert headline in message["text"]
            assert not [h for h in headlines if h != headline and h in message["text"]]


def test_readers_of_several_small_followed_sets_share_one_batch_and_one_call(
    postmark, newsletter, sets, django_capture_on_commit_callbacks
):
    [result] = plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    [batch] = DeliveryBatch.objects.all()
    assert len(postmark.calls) == 1
    assert len(batch.groups) == len(sets) and sorted(batch.readers) == sorted(
        r.pk for r in everyone(sets)
    )
    assert result.groups == {key for key, _, _ in batch.groups}
    messages = postmark_received(postmark)
    assert_each_got_their_own_sections(messages, sets)
    assert_each_reader_got_their_own(messages, everyone(sets), newsletter)
    assert set(states()) == {Delivery.State.SENT}
    assert Edition.objects.get().state == Edition.State.SENT
    assert not Delivery.objects.exists()  # the whole ledger of the send: one row


def test_small_sets_fill_batches_of_the_batch_size_one_language_each(
    postmark, newsletter, sets, settings, django_capture_on_commit_callbacks
):
    settings.ESP_BATCH_SIZE = 5
    news(headline="أخبار الصباح", language="ar", top_story_rank=1)
    arabic = [subscribe(newsletter, language="ar") for _ in range(2)]

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    batches = list(DeliveryBatch.objects.order_by("pk"))
    languages = {b.pk: {r for r in b.readers if r in {a.pk for a in arabic}} for b in batches}
    assert sorted(b.size for b in batches) == [2, 2, 5, 5]  # 12 English readers, 2 Arabic
    [arabic_batch] = [b for b in batches if languages[b.pk]]
    assert arabic_batch.readers == [a.pk for a in arabic] and arabic_batch.groups == []
    assert arabic_batch.followed == [["l", "ar"]]
    # The last English batch holds the tail of one set: a batch of that one set.
    assert [b.followed[0] for b in batches if b != arabic_batch] == [["l", "en"]] * 3
    assert [b.followed for b in batches if b.groups] == [[["l", "en"]]] * 2
    assert len(postmark.calls) == 4
    messages = postmark_received(postmark)
    assert_each_got_their_own_sections(
        [m for m in messages if m["to"] not in {a.email for a in arabic}], sets
    )
    assert Counter(m["to"] for m in messages)[arabic[0].email] == 1
    assert copies_sent_by_language(Edition.objects.values("pk")) == {"en": 12, "ar": 2}


def test_an_esp_that_merges_into_one_body_gets_one_followed_set_per_batch(
    newsletter, sets, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    assert DeliveryBatch.objects.count() == len(sets)
    assert not DeliveryBatch.objects.exclude(groups=[]).exists()


def test_a_batch_of_several_sets_sent_through_an_esp_that_cannot_mix_goes_set_by_set(
    postmark, newsletter, sets, settings
):
    plan_only(send_now=True)  # planned for Postmark
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"  # changed before sending
    [batch] = DeliveryBatch.objects.all()
    edition_send_batch(batch_id=batch.pk, task_id="t-1")

    assert len(mail.outbox) == len(sets)  # one merge call per followed set
    messages = [{"to": to, "text": message.body} for message in mail.outbox for to in message.to]
    assert Counter(m["to"] for m in messages) == Counter(r.email for r in everyone(sets))
    for headline, readers in sets.values():
        [message] = [m for m in mail.outbox if readers[0].email in m.to]
        assert headline in message.body
    assert set(states()) == {Delivery.State.SENT}


def in_doubt(postmark) -> DeliveryBatch:
    """Plan one mixed batch and send it while Postmark answers 500: it is in doubt."""
    [result] = plan_only(send_now=True)
    [batch] = result.edition.batches.all()
    postmark.down["down"] = True
    edition_send_batch(batch_id=batch.pk, task_id="t-1")
    postmark.down["down"] = False
    batch.refresh_from_db()
    assert batch.state == DeliveryBatch.State.IN_DOUBT
    return batch


def test_an_in_doubt_batch_of_several_sets_is_settled_from_postmarks_log(
    postmark, newsletter, sets, django_capture_on_commit_callbacks
):
    batch = in_doubt(postmark)
    readers = everyone(sets)
    took = {readers[0].email, readers[3].email}  # two readers of two sets

    def search(request):
        email = request.params["recipient"]
        found = email in took
        messages = [
            {
                "MessageID": f"pm-{email}",
                "Recipients": [email],
                "Metadata": {"edition_id": str(batch.edition_id)},
            }
        ]
        return 200, {}, json.dumps({"TotalCount": int(found), "Messages": messages * found})

    postmark.add_callback(responses.GET, f"{POSTMARK}messages/outbound", callback=search)
    with django_capture_on_commit_callbacks(execute=True):
        [settled] = batches_settle(now=timezone.now() + SETTLE_AFTER + timedelta(minutes=1))

    assert (settled.sent, settled.resent) == (2, len(readers) - 2)
    for reader in readers:
        assert fate_of(reader).state == Delivery.State.SENT
    resent = postmark_received(postmark)
    others = [r.email for r in readers if r.email not in took]
    assert sorted(m["to"] for m in resent) == sorted(others)
    for headline, group in sets.values():
        for reader in group:
            for message in (m for m in resent if m["to"] == reader.email):
                assert headline in message["text"]


def test_staff_resend_an_in_doubt_batch_of_several_sets_each_reader_their_own(
    postmark, newsletter, sets, django_capture_on_commit_callbacks
):
    batch = in_doubt(postmark)

    with django_capture_on_commit_callbacks(execute=True):
        assert batch_resend(batch=batch) == len(everyone(sets))

    assert_each_got_their_own_sections(postmark_received(postmark), sets)
    assert set(states()) == {Delivery.State.SENT}


def test_tracking_finds_a_readers_copy_in_a_batch_of_several_sets(
    postmark, newsletter, sets, django_capture_on_commit_callbacks
):
    plan_and_send(django_capture_on_commit_callbacks, send_now=True)
    last = postmark_received(postmark)[-1]

    body = {
        "RecordType": "Open",
        "MessageID": "m-1",
        "Recipient": last["to"],
        "ReceivedAt": "2026-11-30T06:10:00Z",
        "FirstOpen": True,
        "Metadata": last["metadata"],
    }
    assert post_webhook("postmark", json.dumps(body)).status_code == 200

    assert events_of(last["to"]) == ["opened"]


def test_a_readers_history_progress_and_the_dashboard_read_batches_of_several_sets(
    postmark, newsletter, sets, django_capture_on_commit_callbacks
):
    [result] = plan_and_send(django_capture_on_commit_callbacks, send_now=True)
    reader = everyone(sets)[-1]

    [row] = reader_editions(reader)
    assert row["state"] == Delivery.State.SENT and row["edition"] == result.edition.date
    assert edition_progress(result.edition)["sent"] == len(everyone(sets))
    [shown] = dashboard.last_editions(now=timezone.now())
    assert (shown.sent, shown.in_doubt, shown.waiting) == (len(everyone(sets)), 0, 0)


def test_the_admin_shows_a_batch_of_several_sets(
    client, postmark, newsletter, sets, django_capture_on_commit_callbacks
):
    login_staff(client, StaffFactory(email="desk@news.example"))
    [result] = plan_and_send(django_capture_on_commit_callbacks, send_now=True)
    [batch] = DeliveryBatch.objects.all()

    page = client.get(reverse("admin:subscriptions_deliverybatch_change", args=[batch.pk]))
    edition_page = client.get(
        reverse("admin:subscriptions_edition_change", args=[result.edition.pk])
    )

    assert page.status_code == 200 and edition_page.status_code == 200
    content = page.content.decode()
    assert "followed sets" in content.lower()
    assert all(key in content for key, _, _ in batch.groups)
