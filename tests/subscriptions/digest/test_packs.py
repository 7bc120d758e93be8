"""Packs: the small batches of rare followed sets sent several to a task, calls overlapping."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from anymail.backends.test import EmailBackend as AnymailTestBackend
from anymail.exceptions import AnymailAPIError
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend

from newsroom.models import Category
from subscriptions.digest import plan
from subscriptions.digest import tasks as digest_tasks
from subscriptions.digest.send import edition_send_batches
from subscriptions.digest.staff import batch_resend
from subscriptions.models import Delivery, DeliveryBatch, Edition
from tests.newsroom.factories import CategoryFactory, TopicFactory
from tests.subscriptions.digest.helpers import (
    fate_of,
    fates,
    news,
    plan_and_send,
    plan_only,
    states,
    subscribe,
)

pytestmark = pytest.mark.django_db
ANYMAIL_TEST = "anymail.backends.test.EmailBackend"


class PickyEsp(AnymailTestBackend):
    """anymail's test ESP refusing the connection for calls to `refuse`, `failures` times."""

    refuse: set[str] = set()
    failures = 0
    lock = threading.Lock()

    def post_to_esp(self, payload, message):
        with PickyEsp.lock:
            if PickyEsp.failures and PickyEsp.refuse & set(message.to):
                PickyEsp.failures -= 1
                raise AnymailAPIError(
                    "Connection refused", backend=self
                ) from ConnectionRefusedError(111, "Connection refused")
        return super().post_to_esp(payload, message)


class WorkerLost(BaseException):
    """What the process sees of a SIGKILL: nothing after this line runs."""


class DyingOnSecondCall(AnymailTestBackend):
    calls = 0

    def post_to_esp(self, payload, message):
        DyingOnSecondCall.calls += 1
        answer = super().post_to_esp(payload, message)
        if DyingOnSecondCall.calls == 2:
            raise WorkerLost
        return answer


@pytest.fixture
def sets(newsletter):
    """Six followed sets (one category or one topic each), two readers in each."""
    news(headline="Lead story of the morning", top_story_rank=1)
    owners = [CategoryFactory() for _ in range(3)] + [TopicFactory() for _ in range(3)]
    readers = {}
    for owner in owners:
        if isinstance(owner, Category):
            news(category=owner)
        else:
            news().topics.add(owner)
        readers[owner] = [subscribe(newsletter, follows=[owner]) for _ in range(2)]
    return readers


@pytest.fixture
def tasks(monkeypatch):
    """The batch tasks the planner enqueues, each as the list of its batch ids."""
    enqueued: list[list[int]] = []
    single, packed = plan.enqueue_batch, plan.enqueue_batches

    def record_single(batch_id):
        enqueued.append([batch_id])
        single(batch_id)

    def record_pack(batch_ids):
        if len(batch_ids) > 1:
            enqueued.append(list(batch_ids))
        packed(batch_ids)

    monkeypatch.setattr(plan, "enqueue_batch", record_single)
    monkeypatch.setattr(plan, "enqueue_batches", record_pack)
    return enqueued


def received() -> Counter:
    return Counter(address for message in mail.outbox for address in message.to)


def everyone(sets) -> list:
    return [reader for readers in sets.values() for reader in readers]


def test_small_groups_go_out_in_packs_each_reader_once_with_their_own_links(
    newsletter, sets, tasks, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(plan, "PACK_BATCHES", 4)

    [result] = plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    assert sorted(len(task) for task in tasks) == [2, 4]  # six batches of two, in two tasks
    assert received() == Counter({r.email: 1 for r in everyone(sets)})
    # Django's own backends (SMTP here as locmem) get one message per reader, links filled in.
    for message in mail.outbox:
        assert "{{" not in message.body
        assert "https://news.example/unsubscribe/" in message.body
    assert set(result.edition.batches.values_list("state", flat=True)) == {DeliveryBatch.State.SENT}
    assert set(states()) == {Delivery.State.SENT}
    result.edition.refresh_from_db()
    assert result.edition.state == Edition.State.SENT


def test_each_followed_set_in_a_pack_gets_its_own_sections(
    newsletter, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = ANYMAIL_TEST
    news(top_story_rank=1)
    news(top_story_rank=2)  # the newsletter's two top stories: the rest go in sections
    politics, culture = CategoryFactory(name="Politics"), CategoryFactory(name="Culture")
    news(category=politics, headline="Parliament sits late")
    news(category=culture, headline="A festival opens")
    politics_reader = subscribe(newsletter, follows=[politics])
    culture_reader = subscribe(newsletter, follows=[culture])

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    [to_politics] = [m for m in mail.outbox if m.to == [politics_reader.email]]
    [to_culture] = [m for m in mail.outbox if m.to == [culture_reader.email]]
    assert "Parliament sits late" in to_politics.body and "A festival opens" not in to_politics.body
    assert "A festival opens" in to_culture.body and "Parliament sits late" not in to_culture.body


def test_an_esp_error_in_one_batch_of_a_pack_retries_that_batch_alone(
    newsletter, sets, tasks, eager_retries, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = f"{__name__}.PickyEsp"
    unlucky = next(iter(sets.values()))
    PickyEsp.refuse, PickyEsp.failures = {unlucky[0].email}, 2

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    assert received() == Counter({r.email: 1 for r in everyone(sets)})
    batches = {b.pk: b for b in DeliveryBatch.objects.all()}
    failed_batch = fate_of(unlucky[0]).batch_id
    assert batches[failed_batch].attempts == 3
    assert all(b.attempts == 1 for pk, b in batches.items() if pk != failed_batch)
    assert {b.state for b in batches.values()} == {DeliveryBatch.State.SENT}
    assert Edition.objects.get().state == Edition.State.SENT


def test_a_batch_that_keeps_failing_in_a_pack_ends_failed_and_the_others_are_sent_once(
    newsletter, sets, tasks, eager_retries, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = f"{__name__}.PickyEsp"
    unlucky = next(iter(sets.values()))
    PickyEsp.refuse, PickyEsp.failures = {unlucky[0].email}, 100

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)
    PickyEsp.failures = 0

    lucky = [r for r in everyone(sets) if r not in unlucky]
    assert received() == Counter({r.email: 1 for r in lucky})
    assert {fate_of(r).state for r in unlucky} == {Delivery.State.FAILED}
    failed = DeliveryBatch.objects.get(state=DeliveryBatch.State.FAILED)
    assert failed.attempts == digest_tasks.SEND_MAX_RETRIES + 1 and "refused" in failed.error
    assert DeliveryBatch.objects.filter(state=DeliveryBatch.State.SENT).count() == len(sets) - 1
    assert Edition.objects.get().state == Edition.State.SENT


def test_a_pack_redelivered_after_its_worker_died_resends_nothing_and_sends_the_rest(
    newsletter, sets, settings
):
    settings.EMAIL_BACKEND = f"{__name__}.DyingOnSecondCall"
    settings.ESP_CONCURRENT_CALLS = 1  # one call in flight: the death lands on a known batch
    DyingOnSecondCall.calls = 0
    [result] = plan_only(send_now=True)
    batch_ids = result.batch_ids
    assert len(batch_ids) == len(sets)

    with pytest.raises(WorkerLost):
        edition_send_batches(batch_ids=batch_ids, task_id="pack-1")
    settings.EMAIL_BACKEND = ANYMAIL_TEST
    pack = edition_send_batches(batch_ids=batch_ids, task_id="pack-1")  # redelivered

    states = {pk: outcome.state for pk, outcome in pack.outcomes.items()}
    assert states[batch_ids[0]] == DeliveryBatch.State.SENT  # recorded before the death
    assert states[batch_ids[1]] == DeliveryBatch.State.IN_DOUBT  # its call was in flight
    assert pack.retry == {}
    assert received().most_common(1)[0][1] == 1  # nobody twice
    doubtful = {pk for (_, pk), fate in fates().items() if fate.batch_id == batch_ids[1]}
    assert set(received()) == {r.email for r in everyone(sets)}  # the in-flight call went out
    assert {fates()[(result.edition.pk, pk)].state for pk in doubtful} == {Delivery.State.IN_DOUBT}
    sent = [f for f in fates().values() if f.state == Delivery.State.SENT]
    assert len(sent) == len(everyone(sets)) - len(doubtful)
    assert Edition.objects.get().state == Edition.State.SENT  # nothing left to send; staff decide


class DyingOnFourthMessage(LocmemBackend):
    """One message per call, as SMTP: the worker dies sending the fourth."""

    def send_messages(self, messages):
        if len(mail.outbox) == 3:
            raise WorkerLost
        return super().send_messages(messages)


def test_a_pack_on_smtp_records_each_message_as_accepted_so_a_resend_skips_them(
    newsletter, sets, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = f"{__name__}.DyingOnFourthMessage"
    settings.ESP_CONCURRENT_CALLS = 1  # one call in flight: the death lands on a known batch
    [result] = plan_only(send_now=True)
    first, second = result.batch_ids[:2]

    with pytest.raises(WorkerLost):
        edition_send_batches(batch_ids=result.batch_ids, task_id="pack-1")
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    edition_send_batches(batch_ids=result.batch_ids, task_id="pack-1")  # redelivered

    assert DeliveryBatch.objects.get(pk=first).state == DeliveryBatch.State.SENT
    assert DeliveryBatch.objects.get(pk=second).state == DeliveryBatch.State.IN_DOUBT
    assert Counter(f.state for f in fates().values() if f.batch_id == second) == {
        Delivery.State.SENT: 1,  # accepted before the death, and recorded
        Delivery.State.IN_DOUBT: 1,
    }
    with django_capture_on_commit_callbacks(execute=True):
        assert batch_resend(batch=DeliveryBatch.objects.get(pk=second)) == 1
    assert received() == Counter({r.email: 1 for r in everyone(sets)})


def test_a_pack_sent_twice_sends_each_batch_once(newsletter, sets, settings):
    settings.EMAIL_BACKEND = ANYMAIL_TEST
    [result] = plan_only(send_now=True)

    edition_send_batches(batch_ids=result.batch_ids, task_id="pack-1")
    again = edition_send_batches(batch_ids=result.batch_ids, task_id="pack-2")

    assert {outcome.state for outcome in again.outcomes.values()} == {DeliveryBatch.State.SENT}
    assert received() == Counter({r.email: 1 for r in everyone(sets)})


def test_full_batches_keep_their_own_task_and_only_the_remainders_are_packed(
    newsletter, settings, tasks, django_capture_on_commit_callbacks
):
    settings.ESP_BATCH_SIZE = 3
    news(top_story_rank=1)
    politics, culture = CategoryFactory(), CategoryFactory()
    for _ in range(4):
        subscribe(newsletter, follows=[politics])
    for _ in range(2):
        subscribe(newsletter, follows=[culture])

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    sizes = {b.pk: len(b.readers) for b in DeliveryBatch.objects.all()}
    assert sorted(sizes.values()) == [1, 2, 3]
    [full] = [pk for pk, size in sizes.items() if size == 3]
    assert [full] in tasks  # queued while planning, alone
    assert sorted(map(sorted, tasks)) == sorted([[full], sorted(pk for pk in sizes if pk != full)])
    assert len(mail.outbox) == 6
