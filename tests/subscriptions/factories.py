"""factory_boy factories for the subscriptions app: newsletters, readers and what they follow."""

from __future__ import annotations

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from subscriptions.models import Follow, Newsletter, Subscriber, Subscription
from tests.newsroom.factories import CategoryFactory


class NewsletterFactory(DjangoModelFactory):
    class Meta:
        model = Newsletter
        django_get_or_create = ("slug",)

    name = "Mideast Daily"
    slug = "mideast-daily"
    description = "The region's most important stories, every morning."
    send_hour = 6


class SubscriberFactory(DjangoModelFactory):
    class Meta:
        model = Subscriber

    email = factory.Sequence(lambda n: f"reader{n}@mail.example")
    time_zone = "Asia/Jerusalem"
    confirmed_at = factory.LazyFunction(timezone.now)


class SubscriptionFactory(DjangoModelFactory):
    class Meta:
        model = Subscription

    subscriber = factory.SubFactory(SubscriberFactory)
    newsletter = factory.SubFactory(NewsletterFactory)
    status = Subscription.Status.ACTIVE
    confirmed_at = factory.LazyFunction(timezone.now)


class FollowFactory(DjangoModelFactory):
    class Meta:
        model = Follow

    subscriber = factory.SubFactory(SubscriberFactory)
    category = factory.SubFactory(CategoryFactory)
    topic = None
