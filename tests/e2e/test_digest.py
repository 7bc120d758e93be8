"""A reader finds yesterday's Mideast Daily on the web, in a real browser."""

from __future__ import annotations

import pytest
from django.utils import timezone

from subscriptions.digest.compose import edition_compose
from tests.newsroom.factories import ArticleFactory, CategoryFactory
from tests.subscriptions.factories import NewsletterFactory


@pytest.mark.browser
def test_a_reader_opens_an_edition_from_the_archive(browser_page, transactional_db):
    newsletter = NewsletterFactory(top_stories_count=1)
    economy = CategoryFactory(name="Economy")
    ArticleFactory(headline="Ceasefire talks resume in Cairo", top_story_rank=1)
    ArticleFactory(headline="Port traffic rises for a third month", category=economy)
    edition = edition_compose(newsletter=newsletter, date=timezone.localdate())

    browser_page.goto(f"/newsletters/{newsletter.slug}/archive/")
    browser_page.get_by_role(
        "link", name=f"{edition.date:%A}, {edition.date.day} {edition.date:%B %Y}"
    ).click()

    assert browser_page.url.endswith(edition.get_absolute_url())
    assert browser_page.get_by_role("heading", name="Top stories").is_visible()
    assert browser_page.get_by_role("link", name="Ceasefire talks resume in Cairo").is_visible()
    assert browser_page.get_by_role("heading", name="Economy").is_visible()
    assert browser_page.context.cookies() == []
