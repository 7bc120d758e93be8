"""The digest through real Celery workers on the real broker, with a worker killed mid-send.

Run with PostgreSQL and Redis, e.g.
DATABASE_URL=postgres://... REDIS_URL=redis://... CELERY_BROKER_URL=redis://... pytest -m worker
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from subscriptions.digest import ledger
from subscriptions.digest import plan as planner
from subscriptions.digest.ledger import edition_readers
from subscriptions.digest.plan import digest_plan
from subscriptions.digest.staff import edition_progress
from subscriptions.models import Delivery, DeliveryBatch, Follow, Subscriber, Subscription
from tests.conftest import skip_or_fail
from tests.newsroom.factories import CategoryFactory
from tests.subscriptions.digest.helpers import news
from tests.subscriptions.digest.slow_http_esp import SlowMailgun
from tests.subscriptions.factories import NewsletterFactory
from tests.subscriptions.helpers import wait_for

READERS = 2000


def readers(newsletter, count: int, categories, *, some_follow_nothing: bool = True):
    """`count` confirmed subscribers, written in bulk, spread evenly over `categories`; with
    `some_follow_nothing`, one in every len(categories) + 1 follows no category."""
    now = timezone.now()
    subscribers = Subscriber.objects.bulk_create(
        [
            Subscriber(
                email=f"reader{n}@load.example", confirmed_at=now, time_zone="Asia/Jerusalem"
            )
            for n in range(count)
        ]
    )
    Subscription.objects.bulk_create(
        [
            Subscription(
                subscriber=s,
                newsletter=newsletter,
                status=Subscription.Status.ACTIVE,
                confirmed_at=now,
            )
            for s in subscribers
        ]
    )
    Follow.objects.bulk_create(
        [
            Follow(subscriber=s, category=categories[n % len(categories)], position=0)
            for n, s in enumerate(subscribers)
            if not some_follow_nothing or n % (len(categories) + 1) != len(categories)
        ]
    )
    return subscribers


def batches_settled(edition) -> bool:
    """No batch of `edition` is still queued or being sent: each was sent or is in doubt."""
    return not DeliveryBatch.objects.filter(
        edition=edition, state__in=[DeliveryBatch.State.QUEUED, DeliveryBatch.State.SENDING]
    ).exists()


@pytest.fixture
def sent_log():
    """The Redis list the slow fake ESP appends each recipient to."""
    client = redis.Redis.from_url(settings.REDIS_URL or settings.CELERY_BROKER_URL)
    key = f"digest-test:sent:{uuid.uuid4().hex}"
    yield client, key
    client.delete(key)


@pytest.mark.worker
@pytest.mark.parametrize(
    ("sets", "threads", "in_flight"),
    # 5 followed sets of 400 readers: full batches of 100, a task each. 41 sets of
    # about 49: small batches, sent in packs with up to ESP_CONCURRENT_CALLS in flight.
    # A worker of the threads pool runs two tasks at once: two batches in flight.
    [(5, 0, 1), (41, 0, 4), (5, 2, 2)],
    ids=["full batches", "packs of small batches", "full batches, two threads"],
)
def test_a_worker_killed_mid_send_loses_nobody_and_duplicates_nobody(
    celery_worker_factory, sent_log, settings, sets, threads, in_flight
):
    client, key = sent_log
    settings.ESP_BATCH_SIZE = 100
    newsletter = NewsletterFactory()
    categories = [CategoryFactory() for _ in range(sets - 1)]
    for category in categories:
        news(category=category)
    news(top_story_rank=1)
    everyone = readers(newsletter, READERS, categories)
    env = {
        "EMAIL_BACKEND": "tests.subscriptions.digest.slow_esp.EmailBackend",
        "SLOW_ESP_SECONDS": "0.4",
        "SLOW_ESP_KEY": key,
        "SLOW_ESP_REDIS_URL": settings.REDIS_URL or settings.CELERY_BROKER_URL,
        # Redis gives a dead worker's unacknowledged task to another after this long.
        "CELERY_VISIBILITY_TIMEOUT": "5",
        "SITE_URL": settings.SITE_URL,
        "ESP_BATCH_SIZE": "100",
        "ESP_CONCURRENT_CALLS": "4",
    }
    first = celery_worker_factory(env, threads=threads)

    [result] = digest_plan(send_now=True)
    assert result.queued == READERS

    wait_for(lambda: client.llen(key) >= READERS // 4, timeout=120, what="a quarter of the emails")
    first.kill()
    killed_at = client.llen(key)
    assert killed_at < READERS, "the send finished before the worker could be killed"
    celery_worker_factory(env, threads=threads)

    wait_for(
        lambda: batches_settled(result.edition),
        timeout=180,
        every=1,
        what="every batch to be sent or reported in doubt",
    )

    received = Counter(email.decode() for email in client.lrange(key, 0, -1))
    in_doubt = list(
        DeliveryBatch.objects.filter(edition=result.edition, state=DeliveryBatch.State.IN_DOUBT)
    )
    # At most the calls in flight when the worker died: one batch, a pack's four, or
    # one batch in each of the threads pool's two tasks.
    assert len(in_doubt) <= in_flight
    doubtful = readers_of(in_doubt)
    assert all(count == 1 for count in received.values()), "somebody got the edition twice"
    for subscriber in everyone:
        if subscriber.email not in doubtful:
            assert received[subscriber.email] == 1, f"{subscriber.email} got nothing"
    states = Counter(fate.state for fate in edition_readers(result.edition.pk).values())
    assert states[Delivery.State.SENT] == READERS - len(doubtful)
    assert states[Delivery.State.IN_DOUBT] == len(doubtful)
    result.edition.refresh_from_db()
    assert result.edition.state == result.edition.State.SENT
    progress = edition_progress(result.edition)
    assert progress["in_doubt"] == len(doubtful)  # what staff see in the admin
    print(
        f"\nkilled after {killed_at} emails; {len(in_doubt)} batch in doubt "
        f"({len(doubtful)} readers, {sum(received[e] for e in doubtful)} of them reached the ESP)"
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("batch_size", [50, 500], ids=["full batches", "packs of small batches"])
def test_two_planners_at_once_queue_each_reader_once(monkeypatch, batch_size):
    if connection.vendor != "postgresql":
        skip_or_fail("concurrent planners need a database server")
    newsletter = NewsletterFactory()
    news()
    categories = [CategoryFactory() for _ in range(3)]
    readers(newsletter, 600, categories)
    enqueued: list[int] = []
    lock = threading.Lock()

    def record(batch_id: int) -> None:
        with lock:
            enqueued.append(batch_id)

    monkeypatch.setattr(planner, "enqueue_batch", record)
    monkeypatch.setattr(
        planner, "enqueue_batches", lambda batch_ids: [record(pk) for pk in batch_ids]
    )
    monkeypatch.setattr(planner, "_planner_lock", _no_lock)  # both really run side by side
    errors: list[BaseException] = []

    def plan() -> None:
        try:
            digest_plan(send_now=True, batch_size=batch_size)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=plan) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    planned = [pk for batch in DeliveryBatch.objects.all() for pk in batch.readers]
    assert len(planned) == len(set(planned)) == 600  # each reader in one batch
    assert len(enqueued) == len(set(enqueued)) == DeliveryBatch.objects.count()
    assert all(b.readers for b in DeliveryBatch.objects.all())


def _no_lock(newsletter_id):
    from contextlib import nullcontext

    return nullcontext(True)


@pytest.mark.worker
@pytest.mark.parametrize(
    ("sets", "bound"),
    # 2 followed sets of 200 readers: full batches of 100, a task each, one call in
    # flight. 40 sets of 10: small batches in packs, ESP_CONCURRENT_CALLS calls in flight.
    [(2, 1), (40, 4)],
    ids=["full batches", "packs of small batches"],
)
def test_sigkill_with_calls_in_flight_at_the_esp_leaves_in_doubt_only_those_calls(
    celery_worker_factory, settings, sets, bound
):
    settings.ESP_BATCH_SIZE = 100
    newsletter = NewsletterFactory()
    categories = [CategoryFactory() for _ in range(sets)]
    for category in categories:
        news(category=category)
    news(top_story_rank=1)
    everyone = readers(newsletter, 400, categories, some_follow_nothing=False)
    with SlowMailgun(delay=3) as esp:
        env = {
            "EMAIL_BACKEND": "anymail.backends.mailgun.EmailBackend",
            "ANYMAIL_MAILGUN_API_KEY": "key-test",
            "ANYMAIL_MAILGUN_API_URL": esp.url,
            "ESP_MERGE_FIELD_FORMAT": "%recipient.FIELD%",
            "ESP_BATCH_SIZE": "100",
            "ESP_CONCURRENT_CALLS": str(bound if bound > 1 else 4),
            # Redis gives a dead worker's unacknowledged task to another after this long.
            "CELERY_VISIBILITY_TIMEOUT": "5",
            "SITE_URL": settings.SITE_URL,
        }
        first = celery_worker_factory(env)
        [result] = digest_plan(send_now=True)

        wait_for(
            lambda: len(esp.snapshot()[1]) >= bound,
            timeout=120,
            every=0.05,
            what=f"{bound} ESP call(s) in flight",
        )
        first.kill()
        _, unanswered = esp.snapshot()
        esp.delay = 0
        celery_worker_factory(env)

        wait_for(
            lambda: batches_settled(result.edition),
            timeout=180,
            every=1,
            what="every batch sent or in doubt",
        )
        calls, _ = esp.snapshot()

    in_doubt = list(
        DeliveryBatch.objects.filter(edition=result.edition, state=DeliveryBatch.State.IN_DOUBT)
    )
    assert 1 <= len(in_doubt) <= bound
    doubtful = readers_of(in_doubt)
    assert {address for call in unanswered for address in call} <= doubtful
    received = Counter(address for call in calls for address in call)
    assert all(count == 1 for count in received.values()), "somebody got the edition twice"
    for subscriber in everyone:
        if subscriber.email not in doubtful:
            assert received[subscriber.email] == 1, f"{subscriber.email} got nothing"
    in_doubt_now = [
        fate
        for fate in edition_readers(result.edition.pk).values()
        if fate.state == Delivery.State.IN_DOUBT
    ]
    assert len(in_doubt_now) == len(doubtful)


def readers_of(batches) -> set[str]:
    """The addresses of the readers of `batches` who share their batch's fate."""
    return set(
        Subscriber.objects.filter(
            pk__in=[pk for batch in batches for pk in ledger.readers_waiting(batch)]
        ).values_list("email", flat=True)
    )
