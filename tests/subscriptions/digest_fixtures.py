"""Fixtures and helpers of the digest tests (imported by tests/subscriptions/test_digest_*.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.utils import timezone

from subscriptions.digest import compose, render
from subscriptions.digest.plan import digest_plan
from subscriptions.digest.send import edition_send_batch
from subscriptions.models import DeliveryBatch, Edition
from tests.newsroom.factories import ArticleFactory, CategoryFactory, TopicFactory
from tests.subscriptions.factories import (
    FollowFactory,
    NewsletterFactory,
    SubscriberFactory,
    SubscriptionFactory,
)

UTC = ZoneInfo("UTC")


@pytest.fixture(autouse=True)
def _digest_settings(settings, monkeypatch):
    settings.SITE_URL = "https://news.example"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.ESP_BATCH_SIZE = 500
    settings.ESP_MERGE_FIELD_FORMAT = "{{FIELD}}"
    render._RENDERS.clear()
    compose._PARTS.clear()


@pytest.fixture(name="newsletter")
def newsletter_fixture(db):
    return NewsletterFactory(top_stories_count=2, section_cap=2)


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


__all__ = [
    "UTC",
    "CategoryFactory",
    "TopicFactory",
    "at",
    "emails_to",
    "news",
    "plan_and_send",
    "plan_only",
    "send_all",
    "subscribe",
]
