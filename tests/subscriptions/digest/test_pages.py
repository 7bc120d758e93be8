"""Each edition's public web version and each newsletter's archive."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from subscriptions.digest.compose import edition_compose
from subscriptions.models import Edition
from tests.newsroom.factories import CategoryFactory
from tests.subscriptions.digest.helpers import news

pytestmark = pytest.mark.django_db


@pytest.fixture
def edition(newsletter):
    economy = CategoryFactory(name="Economy")
    news(headline="Ceasefire talks resume in Cairo", top_story_rank=1)
    news(headline="Port traffic rises for a third month", category=economy)
    return edition_compose(newsletter=newsletter, date=timezone.localdate())


def test_the_web_version_shows_top_stories_and_every_section(client, edition):
    response = client.get(edition.get_absolute_url())

    assert response.status_code == 200
    page = response.content.decode()
    assert "Ceasefire talks resume in Cairo" in page
    assert "Economy" in page and "Port traffic rises for a third month" in page
    assert "Good morning" not in page  # nobody's personal copy
    assert reverse("subscriptions:edition_archive", kwargs={"slug": "mideast-daily"}) in page


def test_the_web_version_is_cacheable_and_sets_no_cookie(client, edition):
    response = client.get(edition.get_absolute_url())

    assert "public" in response["Cache-Control"]
    assert "Cookie" in response["Vary"]
    assert response.cookies == {}
    assert "csrfmiddlewaretoken" not in response.content.decode()


def test_an_editions_arabic_page_is_right_to_left_with_the_arabic_stories(client, newsletter):
    news(headline="Ceasefire talks resume in Cairo", top_story_rank=1)
    news(headline="استئناف محادثات وقف إطلاق النار في القاهرة", language="ar")
    edition = edition_compose(newsletter=newsletter, date=timezone.localdate())
    with translation.override("ar"):
        url = edition.get_absolute_url()

    page = client.get(url).content.decode()

    assert url.startswith("/ar/")
    assert '<html lang="ar" dir="rtl">' in page
    assert "استئناف محادثات وقف إطلاق النار في القاهرة" in page
    assert "Ceasefire talks resume in Cairo" not in page


def test_the_archive_lists_sent_editions_newest_first_and_not_skipped_days(client, edition):
    newsletter = edition.newsletter
    older = Edition.objects.create(
        newsletter=newsletter,
        date=edition.date - timedelta(days=1),
        cutoff_end=timezone.now(),
        contents={},
    )
    skipped = Edition.objects.create(
        newsletter=newsletter,
        date=edition.date - timedelta(days=2),
        cutoff_end=timezone.now(),
        state=Edition.State.SKIPPED,
        contents={},
    )

    page = client.get(
        reverse("subscriptions:edition_archive", kwargs={"slug": newsletter.slug})
    ).content.decode()

    assert page.index(edition.get_absolute_url()) < page.index(older.get_absolute_url())
    assert skipped.get_absolute_url() not in page
    assert client.get(skipped.get_absolute_url()).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/newsletters/mideast-daily/2026-02-30/",
        "/newsletters/no-such/2026-01-05/",
        "/newsletters/mideast-daily/1999-01-01/",
    ],
)
def test_unknown_editions_are_not_found(client, newsletter, path):
    assert client.get(path).status_code == 404
