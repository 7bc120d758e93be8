"""The demo seed creates Mideast Daily and a reader of each language, and can run twice."""

from __future__ import annotations

import pytest

from subscriptions import demo
from subscriptions.models import Follow, Newsletter, Subscriber, Subscription
from tests.newsroom.factories import CategoryFactory, TopicFactory

pytestmark = pytest.mark.django_db


def test_seed_is_idempotent():
    CategoryFactory.create_batch(4)
    TopicFactory.create_batch(2)

    first = demo.seed()
    second = demo.seed()

    daily = Newsletter.objects.get(slug="mideast-daily")
    assert daily.name == "Mideast Daily" and daily.send_hour == 6
    assert sorted(Subscriber.objects.values_list("language", flat=True)) == ["ar", "en", "he"]
    assert Subscription.objects.filter(status="active").count() == 3
    assert all(s.confirmed_at for s in Subscriber.objects.all())
    assert Follow.objects.count() == 9  # 2 + 1, 3 + 1 and, past the two topics, 2
    assert len(first) == len(second) == 4
