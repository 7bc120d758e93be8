"""The home page's sections: each category's newest articles, after the top stories."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from newsroom import selectors
from newsroom.models import Article
from tests.newsroom.factories import ArticleFactory, CategoryFactory

pytestmark = pytest.mark.django_db


def headlines(sections) -> list[tuple[str, list[str]]]:
    return [(category.name, [a.headline for a in articles]) for category, articles in sections]


def test_each_category_shows_its_four_newest_public_articles_newest_first():
    economy = CategoryFactory(name="Economy", order=2)
    politics = CategoryFactory(name="Politics", order=1)
    now = timezone.now()
    for n in range(6):
        ArticleFactory(
            headline=f"Economy {n}", category=economy, published_at=now - timedelta(hours=n + 1)
        )
    ArticleFactory(headline="Politics old", category=politics, published_at=now - timedelta(days=3))
    ArticleFactory(
        headline="Politics new", category=politics, published_at=now - timedelta(hours=2)
    )
    ArticleFactory(
        headline="Not yet",
        category=politics,
        status=Article.Status.SCHEDULED,
        published_at=now + timedelta(hours=1),
    )
    ArticleFactory(
        headline="Draft", category=politics, status=Article.Status.DRAFT, published_at=None
    )
    CategoryFactory(name="Empty", order=0)

    sections = selectors.latest_per_category(language="en", exclude_ids=[])

    assert headlines(sections) == [
        ("Politics", ["Politics new", "Politics old"]),
        ("Economy", ["Economy 0", "Economy 1", "Economy 2", "Economy 3"]),
    ]


def test_top_stories_are_left_out_and_the_next_newest_takes_their_place():
    economy = CategoryFactory(name="Economy")
    now = timezone.now()
    top = ArticleFactory(headline="Top", category=economy, published_at=now - timedelta(minutes=5))
    for n in range(5):
        ArticleFactory(
            headline=f"Economy {n}", category=economy, published_at=now - timedelta(hours=n + 1)
        )

    sections = selectors.latest_per_category(language="en", exclude_ids=[top.id])

    assert headlines(sections) == [
        ("Economy", ["Economy 0", "Economy 1", "Economy 2", "Economy 3"])
    ]


def test_articles_published_at_the_same_moment_come_newest_id_first():
    economy = CategoryFactory(name="Economy")
    moment = timezone.now() - timedelta(hours=1)
    first = ArticleFactory(headline="Filed first", category=economy, published_at=moment)
    second = ArticleFactory(headline="Filed second", category=economy, published_at=moment)
    assert second.id > first.id

    sections = selectors.latest_per_category(language="en", exclude_ids=[], per_category=1)

    assert headlines(sections) == [("Economy", ["Filed second"])]
