"""Parts every page shares, kept between renderings: they must still be exact."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from donations import reader_state
from donations.models import Placement
from donations.reader_state import ReaderState
from newsroom import fragments, services
from newsroom.models import Article, Category
from subscriptions import services as subscription_services
from subscriptions.models import ConsentRecord
from tests.donations.factories import AppealFactory
from tests.newsroom.factories import ArticleFactory, AuthorFactory, CategoryFactory, TopicFactory
from tests.subscriptions.factories import NewsletterFactory
from tests.subscriptions.helpers import signup

pytestmark = pytest.mark.django_db


def shown_consent_version(response) -> str:
    return (
        re.search(rb'name="consent_version" value="([0-9a-f]{64})"', response.content)
        .group(1)
        .decode()
    )


def test_the_consent_wording_a_page_shows_is_recorded_even_after_it_changes(client, monkeypatch):
    daily = NewsletterFactory()
    article = ArticleFactory()
    client.get("/")  # the wording is stored the first time it is shown
    shown = shown_consent_version(client.get(article.get_absolute_url()))
    original = subscription_services.consent_document
    monkeypatch.setattr(
        subscription_services.consent, "consent_document", lambda: original() + " Amended."
    )

    signup(client, "reader@mail.example", daily, consent_version=shown)

    assert ConsentRecord.objects.get().consent_text.sha256 == shown


def test_a_changed_consent_wording_shows_at_once(client, monkeypatch, settings):
    NewsletterFactory()
    settings.PAGE_CACHE_SECONDS = 0
    before = shown_consent_version(client.get("/"))
    original = subscription_services.consent_document
    monkeypatch.setattr(
        subscription_services.consent, "consent_document", lambda: original() + " Amended."
    )
    # The wording is rendered from templates: it changes with a deploy, whose new
    # processes start with no parts of pages kept.
    fragments.clear()

    after = shown_consent_version(client.get("/"))

    assert after != before
    assert after == subscription_services.consent_text_current().sha256


def test_a_new_category_is_in_the_navigation_at_once(client):
    ArticleFactory()
    assert b">Culture</a>" not in client.get("/").content

    services.section_save(obj=Category(name="Culture", slug="culture", order=9))

    assert b">Culture</a>" in client.get("/").content
    assert b">Culture</a>" in client.get("/browse/").content


# --- parts kept per content version (newsroom.fragments) ----------------------------


@pytest.fixture
def rendered_each_time(settings):
    """The page cache off: every request renders, from the parts kept where they are."""
    settings.PAGE_CACHE_SECONDS = 0


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def test_an_edited_headline_shows_on_every_page_at_once(client, rendered_each_time):
    article = ArticleFactory(headline="Wells run dry", category=CategoryFactory(slug="water"))
    urls = ("/", article.get_absolute_url(), "/category/water/")
    assert all("Wells run dry" in page(client, url) for url in urls)

    article.headline = "Rain fills the wells"
    services.article_save(article=article)

    for url in urls:
        html = page(client, url)
        assert "Rain fills the wells" in html and "Wells run dry" not in html, url


def test_an_edited_category_name_shows_in_the_navigation_cards_and_article(
    client, rendered_each_time
):
    water = CategoryFactory(name="Water", slug="water")
    article = ArticleFactory(category=water)
    urls = ("/", article.get_absolute_url(), "/category/water/", "/browse/")
    assert all(">Water</a>" in page(client, url) for url in urls)

    water.name = "Water and power"
    services.section_save(obj=water)

    for url in urls:
        html = page(client, url)
        assert ">Water and power</a>" in html and ">Water</a>" not in html, url


def test_an_edited_author_name_shows_in_bylines_at_once(client, rendered_each_time):
    author = AuthorFactory(name="Lina Haddad")
    article = ArticleFactory(authors=[author], category=CategoryFactory(slug="water"))
    urls = ("/", article.get_absolute_url(), "/category/water/")
    assert all("<bdi>Lina Haddad</bdi>" in page(client, url) for url in urls)

    author.name = "Lina Haddad-Khoury"
    services.section_save(obj=author)

    for url in urls:
        html = page(client, url)
        assert "<bdi>Lina Haddad-Khoury</bdi>" in html and "<bdi>Lina Haddad</bdi>" not in html


def test_an_edited_translation_shows_on_that_languages_pages_at_once(client, rendered_each_time):
    water = CategoryFactory(name="Water", slug="water", translations={"ar": {"name": "المياه"}})
    ArticleFactory(category=water, language="ar", headline="الآبار تجف")
    assert "المياه" in page(client, "/ar/")

    water.translations = {"ar": {"name": "المياه والطاقة"}}
    services.section_save(obj=water)

    for url in ("/ar/", "/ar/category/water/"):
        assert ">المياه والطاقة</a>" in page(client, url), url


def test_parts_are_kept_per_language(client, rendered_each_time):
    water = CategoryFactory(name="Water", slug="water", translations={"ar": {"name": "المياه"}})
    ArticleFactory(category=water)
    ArticleFactory(category=water, language="ar")

    english = page(client, "/category/water/")
    arabic = page(client, "/ar/category/water/")

    assert ">Water</a>" in english and "المياه" not in english
    assert ">المياه</a>" in arabic and ">Water</a>" not in arabic
    assert page(client, "/category/water/") == english


def test_the_navigation_marks_each_pages_own_section(client, rendered_each_time):
    ArticleFactory(category=CategoryFactory(name="Water", slug="water"))
    ArticleFactory(category=CategoryFactory(name="Power", slug="power"))

    on_water = page(client, "/category/water/")
    on_power = page(client, "/category/power/")

    assert '<a href="/category/water/" aria-current="page">' in on_water
    assert '<a href="/category/power/" aria-current="page">' not in on_water
    assert '<a href="/category/power/" aria-current="page">' in on_power
    assert '<a href="/category/water/" aria-current="page">' not in on_power
    assert 'aria-current="page"' not in page(client, "/")


def test_a_follow_button_brings_the_reader_back_to_the_page_they_followed_from(
    client, rendered_each_time
):
    ArticleFactory(category=CategoryFactory(name="Water", slug="water"))

    first = page(client, "/category/water/")
    second = page(client, "/category/water/?page=2")

    assert '<input type="hidden" name="next" value="/category/water/">' in first
    assert '<input type="hidden" name="next" value="/category/water/?page=2">' in second


def test_a_reader_who_dismissed_an_appeal_does_not_get_it_from_a_kept_part(
    client, rendered_each_time
):
    article = ArticleFactory()
    appeal = AppealFactory(placement=Placement.AFTER_ARTICLE, headline="Keep the lights on")
    assert "Keep the lights on" in page(client, article.get_absolute_url())

    dismissed = ReaderState(dismissed={appeal.pk: timezone.localdate() + timedelta(days=3)})
    client.cookies[reader_state.COOKIE_NAME] = dismissed.dumps()
    html = page(client, article.get_absolute_url())

    assert "Keep the lights on" not in html
    assert article.headline in html


def test_a_page_rendered_again_at_the_same_version_reads_less(client, rendered_each_time):
    article = ArticleFactory(topics=[TopicFactory()])
    for url in ("/", article.get_absolute_url()):
        with CaptureQueriesContext(connection) as first:
            page(client, url)
        with CaptureQueriesContext(connection) as again:
            page(client, url)

        assert len(again) < len(first), url


def test_a_change_that_bypasses_the_services_shows_within_the_parts_lifetime(
    client, rendered_each_time, settings
):
    settings.PAGE_FRAGMENT_SECONDS = 60
    article = ArticleFactory(headline="Wells run dry")
    with time_machine.travel(timezone.now(), tick=False) as clock:
        assert "Wells run dry" in page(client, "/")
        Article.objects.filter(pk=article.pk).update(headline="Rain fills the wells")
        clock.shift(timedelta(seconds=61))

        assert "Rain fills the wells" in page(client, "/")


def test_the_store_of_parts_is_bounded():
    store = fragments._Store(max_entries=3, max_characters=100)
    for n in range(5):
        store.put("v1", n, "x" * 10, 10, 60)

    assert [store.get("v1", n)[0] for n in range(5)] == [False, False, True, True, True]
    store.get("v1", 2)  # used last: kept when room is needed
    store.put("v1", "big", "y" * 85, 85, 60)
    assert store.get("v1", 2)[0] and store.get("v1", "big")[0]
    assert not store.get("v1", 3)[0] and not store.get("v1", 4)[0]
    assert store.characters <= 100 and len(store.entries) <= 3
    store.put("v1", "huge", "z" * 101, 101, 60)
    assert not store.get("v1", "huge")[0]


def test_the_store_holds_one_content_version():
    store = fragments._Store(max_entries=10, max_characters=1000)
    store.put("v1", "card", "old", 3, 60)

    store.put("v2", "other", "new", 3, 60)

    assert store.get("v1", "card") == (False, None)
    assert store.get("v2", "card") == (False, None)
    assert store.characters == 3
