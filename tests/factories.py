"""factory_boy factories for the content and the audience every app's tests build on.

The donations app's factories live in tests/donations/factories.py.
"""

from __future__ import annotations

from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone
from factory.django import DjangoModelFactory

from newsroom.models import Article, Author, Category, Topic
from subscriptions.models import Follow, Newsletter, Subscriber, Subscription


class UserFactory(DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@staff.example")
    password = factory.django.Password("correct horse battery")


class StaffFactory(UserFactory):
    is_staff = True
    is_superuser = True


class CategoryFactory(DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.Sequence(lambda n: f"category-{n}")
    description = "Reporting from the region."
    order = factory.Sequence(lambda n: n)


class TopicFactory(DjangoModelFactory):
    class Meta:
        model = Topic
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Topic {n}")
    slug = factory.Sequence(lambda n: f"topic-{n}")


class AuthorFactory(DjangoModelFactory):
    class Meta:
        model = Author

    name = factory.Sequence(lambda n: f"Reporter {n}")
    slug = factory.Sequence(lambda n: f"reporter-{n}")
    bio = "Covers water, energy and the cities that need both."


class ArticleFactory(DjangoModelFactory):
    class Meta:
        model = Article
        skip_postgeneration_save = True

    headline = factory.Sequence(lambda n: f"Desalination plant {n} opens on the coast")
    slug = factory.Sequence(lambda n: f"desalination-plant-{n}")
    dek = "The plant will supply a third of the city's drinking water by spring."
    body = "<p>The first pumps started at dawn.</p><p>Engineers said the output would double.</p>"
    category = factory.SubFactory(CategoryFactory)
    status = Article.Status.PUBLISHED
    published_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))

    @factory.post_generation
    def authors(self, create, extracted, **kwargs):
        if not create:
            return
        self.authors.set(extracted if extracted is not None else [AuthorFactory()])

    @factory.post_generation
    def topics(self, create, extracted, **kwargs):
        if create and extracted:
            self.topics.set(extracted)


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
