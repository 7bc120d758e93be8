"""Preferences: newsletters, follows, time zone and pauses, each change recorded."""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from newsroom.models import Category, Topic
from subscriptions.models import ConsentRecord, Follow, Newsletter, Subscriber, Subscription
from subscriptions.services.consent import RequestMeta, _record, consent_text_current

PAUSE_DAYS = 7
# A cookie or a form may carry at most this many follows.
MAX_FOLLOWS = 100


@functools.cache
def time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def valid_time_zone(value: str | None) -> str:
    """The IANA name when it is one we know, otherwise the newsroom's own time zone."""
    value = (value or "").strip()
    return value if value in time_zones() else settings.TIME_ZONE


def is_time_zone(value: str | None) -> bool:
    return bool(value) and value in time_zones()


@dataclass(frozen=True)
class FollowRefs:
    """Categories and topics by id, in the order they were followed."""

    category_ids: tuple[int, ...] = ()
    topic_ids: tuple[int, ...] = ()


def _follows_add(*, subscriber: Subscriber, follows: FollowRefs) -> None:
    position = (
        subscriber.follows.order_by("-position").values_list("position", flat=True).first() or 0
    )
    have_categories = set(
        subscriber.follows.filter(category__isnull=False).values_list("category_id", flat=True)
    )
    have_topics = set(
        subscriber.follows.filter(topic__isnull=False).values_list("topic_id", flat=True)
    )
    categories = set(
        Category.objects.filter(pk__in=follows.category_ids).values_list("pk", flat=True)
    )
    topics = set(Topic.objects.filter(pk__in=follows.topic_ids).values_list("pk", flat=True))
    for category_id in follows.category_ids:
        if category_id in categories and category_id not in have_categories:
            position += 1
            Follow.objects.create(subscriber=subscriber, category_id=category_id, position=position)
            have_categories.add(category_id)
    for topic_id in follows.topic_ids:
        if topic_id in topics and topic_id not in have_topics:
            position += 1
            Follow.objects.create(subscriber=subscriber, topic_id=topic_id, position=position)
            have_topics.add(topic_id)


def follows_merge(*, subscriber: Subscriber, follows: FollowRefs) -> None:
    """Add a browser's follows to the subscriber's, when its reader chose to link the two."""
    with transaction.atomic():
        _follows_add(subscriber=subscriber, follows=follows)


def follow_set(
    *,
    subscriber: Subscriber,
    category: Category | None = None,
    topic: Topic | None = None,
    following: bool,
) -> None:
    """Follow or stop following one category or topic; setting the same state twice is a no-op."""
    if (category is None) == (topic is None):
        raise ValueError("give exactly one of category or topic")
    with transaction.atomic():
        if following:
            _follows_add(
                subscriber=subscriber,
                follows=FollowRefs(
                    category_ids=(category.pk,) if category else (),
                    topic_ids=(topic.pk,) if topic else (),
                ),
            )
        elif category is not None:
            subscriber.follows.filter(category=category).delete()
        else:
            subscriber.follows.filter(topic=topic).delete()


def preferences_update(
    *,
    subscriber: Subscriber,
    newsletters: Iterable[Newsletter],
    categories: Iterable[Category],
    topics: Iterable[Topic],
    time_zone: str,
    meta: RequestMeta,
    language: str | None = None,
) -> None:
    """Save the preferences page: newsletters, follows, time zone and language, recording
    each change (`language` None keeps the reader's)."""
    chosen = {newsletter.pk: newsletter for newsletter in newsletters}
    category_ids = [category.pk for category in categories][:MAX_FOLLOWS]
    topic_ids = [topic.pk for topic in topics][:MAX_FOLLOWS]
    now = timezone.now()
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        current = {
            s.newsletter_id: s for s in subscriber.subscriptions.select_related("newsletter")
        }
        consent = None
        for newsletter_id, newsletter in chosen.items():
            subscription = current.get(newsletter_id)
            if subscription is not None and subscription.status == Subscription.Status.ACTIVE:
                continue
            # The preferences link arrived in this mailbox, so the address is proven:
            # joining here needs no second confirmation email.
            consent = consent or consent_text_current()
            if subscription is None:
                subscription = Subscription(subscriber=subscriber, newsletter=newsletter)
            subscription.status = Subscription.Status.ACTIVE
            subscription.confirmed_at = now
            subscription.unsubscribed_at = None
            subscription.save()
            _record(
                subscriber=subscriber,
                newsletter=newsletter,
                action=ConsentRecord.Action.SUBSCRIBE,
                meta=meta,
                consent_text=consent,
            )
        for newsletter_id, subscription in current.items():
            if newsletter_id in chosen or subscription.status == Subscription.Status.UNSUBSCRIBED:
                continue
            subscription.status = Subscription.Status.UNSUBSCRIBED
            subscription.unsubscribed_at = now
            subscription.save(update_fields=["status", "unsubscribed_at"])
            _record(
                subscriber=subscriber,
                newsletter=subscription.newsletter,
                action=ConsentRecord.Action.UNSUBSCRIBE,
                meta=meta,
            )

        changed = False
        have = list(subscriber.follows.all())
        keep_categories = set(category_ids)
        keep_topics = set(topic_ids)
        for follow in have:
            if (follow.category_id and follow.category_id not in keep_categories) or (
                follow.topic_id and follow.topic_id not in keep_topics
            ):
                follow.delete()
                changed = True
        before = len(have)
        _follows_add(
            subscriber=subscriber,
            follows=FollowRefs(category_ids=tuple(category_ids), topic_ids=tuple(topic_ids)),
        )
        if subscriber.follows.count() != before:
            changed = True
        zone = valid_time_zone(time_zone)
        if zone != subscriber.time_zone:
            subscriber.time_zone = zone
            subscriber.save(update_fields=["time_zone"])
            changed = True
        offered = {code for code, _ in settings.LANGUAGES}
        if language in offered and language != subscriber.language:
            subscriber.language = language
            subscriber.save(update_fields=["language"])
            changed = True
        if changed:
            _record(subscriber=subscriber, action=ConsentRecord.Action.PREFERENCE_CHANGE, meta=meta)


def subscriber_pause(*, subscriber: Subscriber, meta: RequestMeta, days: int = PAUSE_DAYS) -> None:
    """Hold every newsletter for `days` days; the digest skips a paused subscriber."""
    with transaction.atomic():
        subscriber.paused_until = timezone.now() + timedelta(days=days)
        subscriber.save(update_fields=["paused_until"])
        _record(subscriber=subscriber, action=ConsentRecord.Action.PREFERENCE_CHANGE, meta=meta)


def subscriber_resume(*, subscriber: Subscriber, meta: RequestMeta) -> None:
    with transaction.atomic():
        subscriber.paused_until = None
        subscriber.save(update_fields=["paused_until"])
        _record(subscriber=subscriber, action=ConsentRecord.Action.PREFERENCE_CHANGE, meta=meta)
