"""RSS feeds, sitemaps and robots.txt, read as a feed reader or a crawler reads them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.utils import timezone

from newsroom.models import Article
from tests.newsroom.factories import ArticleFactory, CategoryFactory, TopicFactory

pytestmark = pytest.mark.django_db

SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
NEWS = "{http://www.google.com/schemas/sitemap-news/0.9}"


@pytest.fixture
def content():
    water = CategoryFactory(name="Climate & Water", slug="climate-water")
    energy = TopicFactory(name="Energy", slug="energy")
    fresh = ArticleFactory(
        headline="Solar & shade on the reservoir", category=water, topics=[energy]
    )
    other = ArticleFactory(headline="Port traffic doubles")
    old = ArticleFactory(
        headline="Last week's budget", published_at=timezone.now() - timedelta(days=5)
    )
    draft = ArticleFactory(
        headline="Unpublished draft", status=Article.Status.DRAFT, published_at=None
    )
    later = ArticleFactory(
        headline="Tomorrow's story",
        status=Article.Status.SCHEDULED,
        published_at=timezone.now() + timedelta(days=1),
    )
    return {
        "water": water,
        "energy": energy,
        "fresh": fresh,
        "other": other,
        "old": old,
        "draft": draft,
        "later": later,
    }


def parse_xml(content: bytes) -> ET.Element:
    return ET.fromstring(content)  # noqa: S314 - our own server's output


def rss_titles(response) -> list[str]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/rss+xml")
    root = parse_xml(response.content)
    assert root.tag == "rss" and root.get("version") == "2.0"
    return [item.findtext("title") for item in root.iter("item")]


def test_site_feed_lists_public_articles_newest_first(client, content):
    titles = rss_titles(client.get("/feed/"))

    assert titles[:2] == ["Port traffic doubles", "Solar & shade on the reservoir"]
    assert "Last week's budget" in titles
    assert "Unpublished draft" not in titles and "Tomorrow's story" not in titles


def test_feed_items_carry_link_date_and_description(client, content):
    root = parse_xml(client.get("/feed/").content)
    item = next(
        i for i in root.iter("item") if i.findtext("title") == "Solar & shade on the reservoir"
    )

    assert item.findtext("link").endswith(content["fresh"].get_absolute_url())
    assert item.findtext("pubDate")
    assert item.findtext("description") == content["fresh"].dek
    assert item.findtext("category") == "Climate & Water"


ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.mark.parametrize(
    ("path", "page"),
    [
        ("/feed/", "/"),
        ("/category/climate-water/feed/", "/category/climate-water/"),
        ("/topic/energy/feed/", "/topic/energy/"),
    ],
)
def test_feed_links_are_on_site_url_whatever_host_the_feed_was_asked_on(
    client, content, site_url, path, page
):
    root = parse_xml(client.get(path, HTTP_HOST="testserver").content)
    channel = root.find("channel")
    item = next(
        i for i in root.iter("item") if i.findtext("title") == "Solar & shade on the reservoir"
    )

    assert channel.findtext("link") == f"{site_url}{page}"
    assert channel.find(f"{ATOM}link").get("href") == f"{site_url}{path}"
    assert item.findtext("link") == f"{site_url}{content['fresh'].get_absolute_url()}"
    assert item.findtext("guid") == f"{site_url}{content['fresh'].get_absolute_url()}"


@pytest.mark.parametrize(
    "path",
    [
        "/feed/",
        "/category/climate-water/feed/",
        "/topic/energy/feed/",
        "/sitemap.xml",
        "/news-sitemap.xml",
        "/robots.txt",
        "/",
        "article",
    ],
)
def test_the_host_a_request_came_to_appears_nowhere_in_what_the_site_writes(
    client, content, site_url, settings, path
):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "other.example"]
    if path == "article":
        path = content["fresh"].get_absolute_url()

    response = client.get(path, HTTP_HOST="other.example")

    assert response.status_code == 200
    assert "other.example" not in response.content.decode()
    assert site_url in response.content.decode()


def test_category_feed_has_only_that_category(client, content):
    titles = rss_titles(client.get("/category/climate-water/feed/"))

    assert titles == ["Solar & shade on the reservoir"]


def test_topic_feed_has_only_that_topic(client, content):
    assert rss_titles(client.get("/topic/energy/feed/")) == ["Solar & shade on the reservoir"]


def test_feed_of_an_unknown_category_is_404(client):
    assert client.get("/category/nope/feed/").status_code == 404


def test_sitemap_lists_public_articles_sections_and_home(client, content, site_url):
    response = client.get("/sitemap.xml")

    assert response.status_code == 200
    root = parse_xml(response.content)
    locations = {url.findtext(f"{SITEMAP}loc") for url in root.iter(f"{SITEMAP}url")}
    assert f"{site_url}/" in locations
    assert f"{site_url}/browse/" in locations
    assert f"{site_url}{content['fresh'].get_absolute_url()}" in locations
    assert f"{site_url}{content['old'].get_absolute_url()}" in locations
    assert f"{site_url}/category/climate-water/" in locations
    assert f"{site_url}/topic/energy/" in locations
    assert f"{site_url}{content['draft'].get_absolute_url()}" not in locations
    assert f"{site_url}{content['later'].get_absolute_url()}" not in locations


def test_news_sitemap_has_the_last_48_hours_only(client, content, site_url):
    response = client.get("/news-sitemap.xml")

    assert response.status_code == 200
    root = parse_xml(response.content)
    entries = {
        url.findtext(f"{SITEMAP}loc"): url.find(f"{NEWS}news") for url in root.iter(f"{SITEMAP}url")
    }
    assert set(entries) == {
        f"{site_url}{content['fresh'].get_absolute_url()}",
        f"{site_url}{content['other'].get_absolute_url()}",
    }
    news = entries[f"{site_url}{content['fresh'].get_absolute_url()}"]
    assert news.findtext(f"{NEWS}publication/{NEWS}name") == "The Levant Ledger"
    assert news.findtext(f"{NEWS}publication/{NEWS}language") == "en"
    assert news.findtext(f"{NEWS}title") == "Solar & shade on the reservoir"
    assert news.findtext(f"{NEWS}publication_date") == content["fresh"].published_at.isoformat()


def test_robots_txt_points_at_both_sitemaps(client, site_url):
    response = client.get("/robots.txt")

    body = response.content.decode()
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert f"Sitemap: {site_url}/sitemap.xml" in body
    assert f"Sitemap: {site_url}/news-sitemap.xml" in body
    assert "Disallow: /admin/" in body
