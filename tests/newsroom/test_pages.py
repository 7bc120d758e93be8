"""Each public page as a reader (and an editor) sees it."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.utils import timezone

from newsroom.models import Article
from tests.newsroom.factories import (
    ArticleFactory,
    AuthorFactory,
    CategoryFactory,
    TopicFactory,
    jpeg_upload,
)

pytestmark = pytest.mark.django_db


def text_of(response) -> str:
    return response.content.decode()


def html_attrs(response) -> dict:
    match = re.search(r"<html ([^>]*)>", text_of(response))
    return dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))


def test_home_shows_top_stories_by_rank_then_latest_per_category(client):
    politics = CategoryFactory(name="Politics", slug="politics", order=1)
    economy = CategoryFactory(name="Economy", slug="economy", order=2)
    ArticleFactory(headline="Second top story", top_story_rank=2, category=economy)
    ArticleFactory(headline="Lead story", top_story_rank=1, category=politics)
    ArticleFactory(headline="Budget vote delayed", category=politics)
    ArticleFactory(headline="Port traffic doubles", category=economy)
    ArticleFactory(
        headline="Quiet draft", category=economy, status=Article.Status.DRAFT, published_at=None
    )

    response = client.get("/")

    page = text_of(response)
    main = page[page.index("<main") :]
    assert response.status_code == 200
    order = [
        main.index(h)
        for h in (
            "Lead story",
            "Second top story",
            ">Politics</a></h2>",
            "Budget vote delayed",
            ">Economy</a></h2>",
            "Port traffic doubles",
        )
    ]
    assert order == sorted(order)
    assert "Quiet draft" not in page


def test_article_page_shows_headline_dek_photo_body_quotes_authors_category_and_topics(client):
    water = TopicFactory(name="Water", slug="water")
    author = AuthorFactory(name="Nadia Saleh", slug="nadia-saleh")
    article = ArticleFactory(
        headline="Wells rise again",
        dek="Stone barriers slow the floods.",
        body="<p>First.</p><p>Second.</p><p>Third.</p><p>Fourth.</p>",
        pull_quotes=["The water stays behind the stones."],
        authors=[author],
        topics=[water],
        lead_photo=jpeg_upload("wells.jpg"),
        lead_photo_alt="A stone barrier",
        lead_photo_caption="A barrier across a flood channel.",
        lead_photo_credit="Photo: N. Saleh",
    )

    response = client.get(article.get_absolute_url())

    page = text_of(response)
    assert response.status_code == 200
    assert '<h1 class="headline">Wells rise again</h1>' in page
    assert "Stone barriers slow the floods." in page
    assert f'src="{article.lead_photo.url}" alt="A stone barrier" width="640" height="427"' in page
    assert "A barrier across a flood channel." in page and "Photo: N. Saleh" in page
    assert 'href="/author/nadia-saleh/"' in page
    assert f'href="{article.category.get_absolute_url()}"' in page
    assert 'href="/topic/water/"' in page
    # The pull quote sits between paragraphs, never before the first or after the last.
    quote = page.index("The water stays behind the stones.")
    assert page.index("<p>First.</p>") < quote < page.index("<p>Fourth.</p>")


def test_article_page_carries_news_article_json_ld_escaped_safely(client, site_url):
    article = ArticleFactory(headline="Talks end </script><script>alert(1)</script>", dek="A & B")

    page = text_of(client.get(article.get_absolute_url()))

    assert "</script><script>alert(1)" not in page
    raw = re.search(r'<script type="application/ld\+json">(.*?)</script>', page, re.S).group(1)
    data = json.loads(raw)
    assert data["@type"] == "NewsArticle"
    assert data["headline"] == "Talks end </script><script>alert(1)</script>"
    assert data["mainEntityOfPage"] == f"{site_url}{article.get_absolute_url()}"
    assert data["author"][0]["name"] == article.authors.get().name
    assert data["datePublished"].startswith(str(article.published_at.year))


def test_every_page_has_open_graph_and_twitter_meta(client, site_url):
    article = ArticleFactory(headline="Harbour reopens", lead_photo=jpeg_upload("harbour.jpg"))

    for url in (
        "/",
        article.get_absolute_url(),
        article.category.get_absolute_url(),
        "/browse/",
        "/search/?q=harbour",
    ):
        page = text_of(client.get(url))
        assert '<meta property="og:title"' in page, url
        assert '<meta property="og:url"' in page, url
        assert '<meta name="twitter:card"' in page, url
    page = text_of(client.get(article.get_absolute_url()))
    assert '<meta property="og:type" content="article">' in page
    assert f'<meta property="og:image" content="{site_url}{article.lead_photo.url}">' in page


def test_arabic_article_page_is_right_to_left_and_english_site_pages_are_not(client):
    article = ArticleFactory(
        headline="سدود صغيرة في الوادي", slug="سدود-صغيرة", language="ar", body="<p>نص المقال.</p>"
    )

    response = client.get(article.get_absolute_url())

    assert response.status_code == 200
    assert html_attrs(response) == {"lang": "ar", "dir": "rtl"}
    assert html_attrs(client.get("/")) == {"lang": "en", "dir": "ltr"}


def test_site_pages_follow_the_site_language_direction(client, settings):
    settings.LANGUAGE_CODE = "he"
    ArticleFactory()

    assert html_attrs(client.get("/")) == {"lang": "he", "dir": "rtl"}


def test_category_page_lists_its_articles_with_follow_button_and_feed(client):
    category = CategoryFactory(name="Climate & Water", slug="climate-water")
    ArticleFactory(headline="Reservoir half full", category=category)
    ArticleFactory(headline="Somewhere else")

    response = client.get("/category/climate-water/")

    page = text_of(response)
    assert response.status_code == 200
    assert "<h1>Climate &amp; Water</h1>" in page
    assert "Reservoir half full" in page
    assert "Somewhere else" not in page
    assert 'data-follow-kind="category" data-follow-slug="climate-water"' in page
    assert 'href="/category/climate-water/feed/"' in page


def test_category_pages_are_paginated(client):
    category = CategoryFactory(slug="politics")
    now = timezone.now()
    for n in range(25):
        ArticleFactory(
            headline=f"Story number {n:02d}",
            category=category,
            published_at=now - timedelta(hours=n + 1),
        )

    first = text_of(client.get("/category/politics/"))
    second = text_of(client.get("/category/politics/?page=2"))

    assert "Story number 00" in first and "Story number 19" in first
    assert "Story number 20" not in first
    assert "Story number 20" in second and "Story number 24" in second
    assert 'rel="next" href="?page=2"' in first


def test_topic_page_lists_articles_on_the_topic_with_follow_button(client):
    topic = TopicFactory(name="Energy", slug="energy")
    ArticleFactory(headline="Solar on the reservoir", topics=[topic])
    ArticleFactory(headline="Unrelated story")

    page = text_of(client.get("/topic/energy/"))

    assert "Solar on the reservoir" in page
    assert "Unrelated story" not in page
    assert 'data-follow-kind="topic" data-follow-slug="energy"' in page


def test_author_page_shows_bio_and_their_articles(client):
    author = AuthorFactory(name="Omar Farid", slug="omar-farid", bio="Writes about trains.")
    ArticleFactory(headline="Night train to the coast", authors=[author])
    ArticleFactory(headline="Someone else's story")

    page = text_of(client.get("/author/omar-farid/"))

    assert "Omar Farid" in page and "Writes about trains." in page
    assert "Night train to the coast" in page
    assert "Someone else&#x27;s story" not in page


def test_browse_lists_every_category_and_topic_with_counts_and_follow_buttons(client):
    politics = CategoryFactory(name="Politics", slug="politics", order=1)
    CategoryFactory(name="Arts", slug="arts", order=2)
    TopicFactory(name="Elections", slug="elections")
    ArticleFactory(category=politics)
    ArticleFactory(category=politics)
    ArticleFactory(category=politics, status=Article.Status.DRAFT, published_at=None)

    page = text_of(client.get("/browse/"))

    assert "Browse categories and topics" in page
    assert 'href="/category/politics/"' in page and "2 articles" in page
    assert 'href="/topic/elections/"' in page and "0 articles" in page
    assert 'data-follow-slug="politics"' in page and 'data-follow-slug="elections"' in page
    assert page.index('href="/category/politics/"') < page.index(
        'href="/category/arts/"'
    )  # editors' order


def test_search_finds_published_articles_only(client):
    ArticleFactory(
        headline="Desalination plant opens", body="<p>Engineers tested the membranes.</p>"
    )
    ArticleFactory(
        headline="Unfinished desalination draft", status=Article.Status.DRAFT, published_at=None
    )
    ArticleFactory(headline="Election results")

    response = client.get("/search/", {"q": "desalination"})

    page = text_of(response)
    assert response.status_code == 200
    assert "Desalination plant opens" in page
    assert "Unfinished desalination draft" not in page
    assert "Election results" not in page
    assert "1 result for" in page


def test_search_matches_words_in_the_body(client):
    ArticleFactory(headline="Plant opens", body="<p>Engineers tested the membranes.</p>")

    assert "Plant opens" in text_of(client.get("/search/", {"q": "membranes"}))


def test_search_without_matches_says_so(client):
    ArticleFactory()

    page = text_of(client.get("/search/", {"q": "zeppelin"}))

    assert "No results for “<bdi>zeppelin</bdi>”" in page


def test_empty_search_shows_the_form(client):
    response = client.get("/search/")

    assert response.status_code == 200
    assert 'name="q"' in text_of(response)


@pytest.mark.parametrize(
    "status, delta",
    [
        (Article.Status.DRAFT, None),
        (Article.Status.SCHEDULED, timedelta(days=1)),
        (Article.Status.PUBLISHED, timedelta(hours=2)),
    ],
)
def test_drafts_and_future_articles_are_404_for_readers(client, status, delta):
    article = ArticleFactory(status=status, published_at=timezone.now() + delta if delta else None)

    assert client.get(article.get_absolute_url()).status_code == 404


def test_staff_preview_a_draft_with_a_banner(staff_client):
    article = ArticleFactory(
        headline="Still being written", status=Article.Status.DRAFT, published_at=None
    )

    response = staff_client.get(article.get_absolute_url())

    page = text_of(response)
    assert response.status_code == 200
    assert "Still being written" in page
    assert 'class="preview-banner"' in page and "This draft is not published" in page
    assert '<meta name="robots" content="noindex">' in page
    assert "private" in response["Cache-Control"]


def test_staff_preview_a_scheduled_article_with_its_time(staff_client):
    article = ArticleFactory(
        status=Article.Status.SCHEDULED, published_at=timezone.now() + timedelta(days=2)
    )

    page = text_of(staff_client.get(article.get_absolute_url()))

    assert "Readers will see this article from" in page


def test_staff_see_no_banner_on_a_published_article(staff_client):
    article = ArticleFactory()

    assert 'class="preview-banner"' not in text_of(staff_client.get(article.get_absolute_url()))


def test_unknown_pages_are_404(client):
    for url in ("/articles/nope/", "/category/nope/", "/topic/nope/", "/author/nope/"):
        assert client.get(url).status_code == 404, url


class _Landmarks(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_pages_are_accessible_landmarks_labels_and_image_alt(client):
    article = ArticleFactory(lead_photo=jpeg_upload("a.jpg"), lead_photo_alt="A harbour at dawn")

    for url in ("/", article.get_absolute_url(), "/search/?q=a", "/browse/"):
        parser = _Landmarks()
        parser.feed(text_of(client.get(url)))
        tags = [t for t, _ in parser.tags]
        assert "main" in tags and "nav" in tags and "header" in tags, url
        assert tags.count("h1") == 1, url
        assert all("alt" in attrs for tag, attrs in parser.tags if tag == "img"), url
        labelled = {attrs.get("for") for tag, attrs in parser.tags if tag == "label"}
        inputs = [
            attrs
            for tag, attrs in parser.tags
            if tag == "input" and attrs.get("type") not in ("hidden", "submit")
        ]
        assert all(i.get("id") in labelled or i.get("aria-label") for i in inputs), url


def test_pages_answer_head_and_refuse_post(client):
    article = ArticleFactory()

    assert client.head(article.get_absolute_url()).status_code == 200
    assert client.post(article.get_absolute_url()).status_code == 405


def test_search_on_postgresql_stems_words_and_ranks_headlines_first(client, settings):
    if not settings.USING_POSTGRES:
        pytest.skip("full-text search runs on PostgreSQL; SQLite uses the plain match above")
    ArticleFactory(headline="Budget talks", body="<p>The reservoirs were mentioned once.</p>")
    ArticleFactory(headline="Reservoir levels recover", body="<p>Rain came late.</p>")

    page = text_of(client.get("/search/", {"q": "reservoirs"}))

    assert "2 results for" in page
    assert page.index("Reservoir levels recover") < page.index("Budget talks")
