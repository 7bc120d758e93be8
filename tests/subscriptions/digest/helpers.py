"""Helpers of the digest tests: readers who subscribe, news, and running the planner."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.core import mail
from django.utils import timezone

from subscriptions.digest.ledger import Fate, edition_readers
from subscriptions.digest.plan import digest_plan
from subscriptions.digest.send import edition_send_batch
from subscriptions.models import DeliveryBatch, Edition
from tests.newsroom.factories import ArticleFactory
from tests.subscriptions.factories import FollowFactory, SubscriberFactory, SubscriptionFactory

UTC = ZoneInfo("UTC")


def subscribe(newsletter, *, follows=(), **fields):
    """An active, confirmed subscriber of `newsletter` following `follows` in that order."""
    subscriber = SubscriberFactory(**fields)
    SubscriptionFactory(subscriber=subscriber, newsletter=newsletter)
    for position, followed in enumerate(follows):
        if followed.__class__.__name__ == "Topic":
            FollowFactory(subscriber=subscriber, category=None, topic=followed, position=position)
        else:
            FollowFactory(subscriber=subscriber, category=followed, position=position)
    return subscriber


def at(text: str, zone: str = "UTC") -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))


def plan_and_send(django_capture_on_commit_callbacks, **kwargs):
    """Run the planner; the batch tasks it enqueues on commit run in-process."""
    with django_capture_on_commit_callbacks(execute=True):
        return digest_plan(**kwargs)


def plan_only(**kwargs):
    """Run the planner without sending: the batches stay queued for the test to send."""
    return digest_plan(enqueue=False, **kwargs)


def send_all(edition: Edition, *, task_id: str = "task-1"):
    return [
        edition_send_batch(batch_id=pk, task_id=f"{task_id}-{pk}")
        for pk in edition.batches.filter(state=DeliveryBatch.State.QUEUED).values_list(
            "pk", flat=True
        )
    ]


def emails_to(address: str) -> list:
    return [m for m in mail.outbox if address in m.to]


def news(**fields):
    """A published article, an hour old unless told otherwise."""
    fields.setdefault("published_at", timezone.now() - timedelta(hours=1))
    return ArticleFactory(**fields)


def fates(edition: Edition | None = None) -> dict[tuple[int, int], Fate]:
    """Every reader's copy, by (edition id, subscriber id), as the ledger tells it."""
    editions = [edition] if edition is not None else Edition.objects.order_by("pk")
    return {(e.pk, pk): fate for e in editions for pk, fate in edition_readers(e.pk).items()}


def states(edition: Edition | None = None) -> Counter:
    """How many readers' copies are in each state (Delivery.State)."""
    return Counter(fate.state for fate in fates(edition).values())


def fate_of(subscriber, edition: Edition | None = None) -> Fate:
    """The one copy `subscriber` has (of `edition`, or of the only edition they are in)."""
    (fate,) = [f for (_, pk), f in fates(edition).items() if pk == subscriber.pk]
    return fate
