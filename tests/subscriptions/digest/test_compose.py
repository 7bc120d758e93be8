"""Composing an edition: its top stories and sections, and the ones each reader gets."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from subscriptions.digest.compose import edition_compose
from subscriptions.models import Delivery, Edition
from tests.newsroom.factories import CategoryFactory, TopicFactory
from tests.subscriptions.digest.helpers import news, plan_and_send, subscribe

pytestmark = pytest.mark.django_db


def compose(newsletter, **kwargs):
    return edition_compose(newsletter=newsletter, date=timezone.localdate(), **kwargs)


def test_top_stories_are_ranked_first_then_newest(newsletter):
    now = timezone.now()
    newest = news(published_at=now - timedelta(minutes=5))
    lead = news(top_story_rank=1, published_at=now - timedelta(hours=5))
    news(published_at=now - timedelta(hours=2))

    edition = compose(newsletter)

    assert edition.contents["top"] == [lead.pk, newest.pk]


def test_sections_never_repeat_a_top_story_and_keep_to_the_cap(newsletter):
    politics = CategoryFactory(name="Politics")
    water = TopicFactory(name="Water")
    now = timezone.now()
    top = news(category=politics, top_story_rank=1, topics=[water])
    news(category=politics, top_story_rank=2)
    recent = [
        news(category=politics, topics=[water], published_at=now - timedelta(minutes=m))
        for m in (10, 20, 30)
    ]

    edition = compose(newsletter)

    politics_ids = edition.contents["categories"][str(politics.pk)]
    water_ids = edition.contents["topics"][str(water.pk)]
    assert politics_ids == [recent[0].pk, recent[1].pk]  # cap 2, newest first
    assert water_ids == [recent[0].pk, recent[1].pk]
    assert top.pk not in politics_ids + water_ids


def test_only_articles_after_the_previous_editions_cutoff_are_new(newsletter):
    yesterday = timezone.localdate() - timedelta(days=1)
    cutoff = timezone.now() - timedelta(hours=3)
    Edition.objects.create(newsletter=newsletter, date=yesterday, cutoff_end=cutoff, contents={})
    old = news(published_at=cutoff - timedelta(minutes=1))
    fresh = news(published_at=cutoff + timedelta(minutes=1))

    edition = compose(newsletter)

    assert edition.cutoff_start == cutoff
    assert edition.contents["top"] == [fresh.pk]
    assert old.pk not in [pk for ids in edition.contents["categories"].values() for pk in ids]


def test_a_day_with_nothing_new_sends_nothing_and_says_why(
    newsletter, django_capture_on_commit_callbacks
):
    subscribe(newsletter)
    news(published_at=timezone.now() - timedelta(days=3))

    [result] = plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    edition = result.edition
    assert edition.state == Edition.State.SKIPPED
    assert "Nothing was published" in edition.skip_reason
    assert not Delivery.objects.exists()
    assert mail.outbox == []


def test_a_reader_gets_their_follows_in_their_order_and_each_story_once(
    newsletter, django_capture_on_commit_callbacks
):
    culture = CategoryFactory(name="Culture", order=1)
    economy = CategoryFactory(name="Economy", order=2)
    energy = TopicFactory(name="Energy")
    news(headline="Lead story of the morning", top_story_rank=1)
    news(headline="Second story of the morning", top_story_rank=2)
    shared = news(headline="Gas field deal signed", category=economy, topics=[energy])
    news(headline="Film festival opens", category=culture)
    reader = subscribe(newsletter, follows=[energy, economy], email="dana@mail.example")

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    [message] = mail.outbox
    assert message.to == [reader.email]
    text = message.body
    sections = re.findall(r"^== (.+) ==$", text, flags=re.M)
    assert sections == ["Top stories", "Energy"]  # Economy's only story is already above
    assert text.count(shared.headline) == 1
    assert "Film festival opens" not in text  # Culture is not followed


def test_a_reader_who_follows_nothing_gets_the_latest_per_category(
    newsletter, django_capture_on_commit_callbacks
):
    economy = CategoryFactory(name="Economy", order=2)
    culture = CategoryFactory(name="Culture", order=1)
    news(top_story_rank=1)
    news(top_story_rank=2)
    news(headline="Port traffic rises", category=economy)
    news(headline="Museum reopens", category=culture)
    subscribe(newsletter)

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    [message] = mail.outbox
    sections = re.findall(r"^== (.+) ==$", message.body, flags=re.M)
    assert sections[0] == "Top stories"
    assert sections[1:3] == ["Culture", "Economy"]
    assert "Port traffic rises" in message.body and "Museum reopens" in message.body


def test_an_article_unpublished_after_composing_is_left_out(
    newsletter, django_capture_on_commit_callbacks
):
    keep = news(headline="Harbour dredging resumes", top_story_rank=1)
    pulled = news(headline="Story pulled for correction", top_story_rank=2)
    subscribe(newsletter)
    compose(newsletter)
    pulled.status = pulled.Status.DRAFT
    pulled.save()

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    assert keep.headline in mail.outbox[0].body
    assert pulled.headline not in mail.outbox[0].body
