"""Pages in English, Arabic and Hebrew: their language, direction, words, and their versions."""

from __future__ import annotations

import re
from datetime import datetime
from xml.etree import ElementTree

import pytest
from django.utils import timezone

from newsroom import services
from newsroom.models import Article
from tests.newsroom.factories import ArticleFactory, AuthorFactory, CategoryFactory, TopicFactory

pytestmark = pytest.mark.django_db

SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
XHTML = "{http://www.w3.org/1999/xhtml}"
NEWS = "{http://www.google.com/schemas/sitemap-news/0.9}"


@pytest.fixture
def newsroom(site_url):
    """A category and topic with their translations, and one story in English and Arabic."""
    water = CategoryFactory(
        name="Climate & Water",
        slug="climate-water",
        description="Heat, drought and rivers.",
        translations={
            "ar": {"name": "المناخ والمياه", "description": "الحر والجفاف والأنهار."},
            "he": {"name": "אקלים ומים", "description": "חום, בצורת ונהרות."},
        },
    )
    river = TopicFactory(
        name="Jordan River",
        slug="jordan-river",
        translations={"ar": {"name": "نهر الأردن"}, "he": {"name": "נהר הירדן"}},
    )
    nadia = AuthorFactory(
        name="Nadia Saleh",
        slug="nadia-saleh",
        bio="Covers water from Amman.",
        translations={"ar": {"name": "نادية صالح", "bio": "تغطي شؤون المياه من عمّان."}},
    )
    english = ArticleFactory(
        headline="Valley farmers trade canals for drip lines",
        slug="valley-farmers",
        category=water,
        topics=[river],
        authors=[nadia],
        published_at=timezone.make_aware(datetime(2026, 11, 3, 9, 0)),
    )
    arabic = ArticleFactory(
        headline="مزارعو الوادي يستبدلون القنوات بالري بالتنقيط",
        slug="مزارعو-الوادي",
        dek="خفضت جمعية تعاونية استهلاكها للمياه بمقدار الثلث.",
        language="ar",
        story=english.story,
        category=water,
        topics=[river],
        authors=[nadia],
        published_at=timezone.make_aware(datetime(2026, 11, 3, 10, 0)),
    )
    return {"water": water, "river": river, "nadia": nadia, "en": english, "ar": arabic}


def _xml(content: bytes) -> ElementTree.Element:
    return ElementTree.fromstring(content)  # noqa: S314 - our own server's output


def _html(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def _root(page: str) -> tuple[str, str]:
    found = re.search(r'<html lang="([^"]+)" dir="([^"]+)">', page)
    assert found, "no <html lang dir>"
    return found.group(1), found.group(2)


def _alternates(page: str) -> dict[str, str]:
    return dict(re.findall(r'<link rel="alternate" hreflang="([^"]+)" href="([^"]+)">', page))


def _switcher(page: str) -> dict[str, str]:
    nav = re.search(r'<nav class="language-switcher".*?</nav>', page, re.S).group(0)
    return {code: url for url, code in re.findall(r'<a href="([^"]+)"[^>]* lang="([^"]+)"', nav)}


PAGES = ["", "category/climate-water/", "topic/jordan-river/", "browse/", "search/?q=x"]
WORDS = {"en": "Browse", "ar": "تصفّح", "he": "עיון"}
SECTION = {"en": "Climate &amp; Water", "ar": "المناخ والمياه", "he": "אקלים ומים"}


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize(
    ("code", "prefix", "direction"),
    [("en", "/", "ltr"), ("ar", "/ar/", "rtl"), ("he", "/he/", "rtl")],
)
def test_each_page_in_each_language_has_its_lang_dir_words_and_alternates(
    client, newsroom, path, code, prefix, direction
):
    page = _html(client.get(prefix + path))

    assert _root(page) == (code, direction)
    assert f">{WORDS[code]}</a>" in page  # the navigation, translated
    assert f">{SECTION[code]}</a>" in page  # the category's name in this language
    bare = path.split("?")[0]
    assert _alternates(page) == {
        "en": f"https://news.example/{bare}",
        "ar": f"https://news.example/ar/{bare}",
        "he": f"https://news.example/he/{bare}",
        "x-default": f"https://news.example/{bare}",
    }


def test_a_story_lists_its_versions_and_switches_to_them(client, newsroom):
    english, arabic = newsroom["en"], newsroom["ar"]
    assert arabic.get_absolute_url().startswith("/ar/articles/")

    page = _html(client.get(english.get_absolute_url()))

    assert _alternates(page) == {
        "en": "https://news.example/articles/valley-farmers/",
        "ar": f"https://news.example{arabic.get_absolute_url()}",
        "x-default": "https://news.example/articles/valley-farmers/",
    }
    # Arabic leads to the Arabic version; Hebrew, which has none, to the Hebrew front.
    assert _switcher(page) == {
        "en": "/articles/valley-farmers/",
        "ar": arabic.get_absolute_url(),
        "he": "/he/",
    }


def test_an_article_under_another_languages_prefix_redirects_to_its_own(client, newsroom):
    response = client.get("/ar/articles/valley-farmers/")

    assert response.status_code == 301
    assert response["Location"] == "/articles/valley-farmers/"


def test_the_arabic_article_page_is_arabic_right_to_left_with_arabic_dates(client, newsroom):
    page = _html(client.get(newsroom["ar"].get_absolute_url()))

    assert _root(page) == ("ar", "rtl")
    assert "بقلم <a" in page and "<bdi>نادية صالح</bdi>" in page
    assert "نوفمبر" in page  # the month in Arabic
    assert ">نهر الأردن</a>" in page
    assert "تغطي شؤون المياه من عمّان." in page


def test_the_hebrew_front_shows_hebrew_month_names(client, newsroom):
    ArticleFactory(
        headline="שיטפון בעמק",
        language="he",
        category=newsroom["water"],
        published_at=timezone.make_aware(datetime(2026, 11, 3, 9, 0)),
    )

    page = _html(client.get("/he/"))

    assert "שיטפון בעמק" in page
    assert "בנובמבר" in page


def test_each_front_shows_its_own_languages_articles(client, newsroom):
    english = _html(client.get("/"))
    arabic = _html(client.get("/ar/"))

    assert newsroom["en"].headline in english and newsroom["ar"].headline not in english
    assert newsroom["ar"].headline in arabic and newsroom["en"].headline not in arabic


def test_an_arabic_card_on_an_english_page_is_right_to_left_and_its_frame_stays_english(
    client, newsroom
):
    # The author's page lists the articles of every language she writes in.
    page = _html(client.get(newsroom["nadia"].get_absolute_url()))
    card = next(
        c
        for c in re.findall(r'<article class="card"[^>]*>.*?</article>', page, re.S)
        if newsroom["ar"].headline in c
    )

    assert card.startswith('<article class="card">')  # no lang on the card as a whole
    assert re.search(r'<h2 class="card-headline" lang="ar" dir="rtl">', card)
    assert re.search(r'<p class="dek" lang="ar" dir="rtl">', card)
    kicker = re.search(r'<p class="kicker">(.*?)</p>', card, re.S).group(1)
    assert "Climate &amp; Water" in kicker and "Arabic" in kicker
    assert 'lang="' not in kicker
    assert '<p class="byline">' in card  # the byline carries no lang of its own


def test_mixed_direction_text_is_isolated(client, newsroom):
    page = _html(client.get("/ar/search/", {"q": "Jordan"}))

    assert "<bdi>Jordan</bdi>" in page
    assert 'dir="auto"' in page  # the search box follows what is typed


def test_feeds_are_per_language(client, newsroom):
    english = client.get("/feed/").content.decode()
    arabic = client.get("/ar/feed/").content.decode()

    assert "<language>en</language>" in english and newsroom["ar"].headline not in english
    assert "<language>ar</language>" in arabic and newsroom["en"].headline not in arabic
    assert (
        "<title>المناخ والمياه · "
        in client.get("/ar/category/climate-water/feed/").content.decode()
    )


def test_sitemap_lists_each_version_with_its_alternates(client, newsroom):
    tree = _xml(client.get("/sitemap.xml").content)
    entries = {
        url.findtext(f"{SITEMAP}loc"): {
            link.get("hreflang"): link.get("href") for link in url.findall(f"{XHTML}link")
        }
        for url in tree.findall(f"{SITEMAP}url")
    }
    english = "https://news.example/articles/valley-farmers/"
    arabic = f"https://news.example{newsroom['ar'].get_absolute_url()}"

    assert (
        entries[english] == entries[arabic] == {"en": english, "ar": arabic, "x-default": english}
    )
    assert entries["https://news.example/ar/category/climate-water/"] == {
        "en": "https://news.example/category/climate-water/",
        "ar": "https://news.example/ar/category/climate-water/",
        "he": "https://news.example/he/category/climate-water/",
        "x-default": "https://news.example/category/climate-water/",
    }


def test_news_sitemap_gives_each_version_its_language(client, newsroom):
    for article in (newsroom["en"], newsroom["ar"]):
        article.published_at = timezone.now()
        services.article_save(article=article)
    tree = _xml(client.get("/news-sitemap.xml").content)

    languages = {
        url.findtext(f"{SITEMAP}loc"): url.findtext(f"{NEWS}news/{NEWS}publication/{NEWS}language")
        for url in tree.findall(f"{SITEMAP}url")
    }

    assert languages == {
        "https://news.example/articles/valley-farmers/": "en",
        f"https://news.example{newsroom['ar'].get_absolute_url()}": "ar",
    }


def test_a_story_has_one_version_per_language(newsroom):
    duplicate = Article(
        headline="نسخة ثانية",
        slug="نسخة-ثانية",
        body="<p>.</p>",
        language="ar",
        story=newsroom["en"].story,
        category=newsroom["water"],
    )

    with pytest.raises(Exception, match="already has a version in that language"):
        services.article_save(article=duplicate)
    assert Article.objects.filter(story=newsroom["en"].story).count() == 2


def test_each_languages_page_is_its_own_cache_entry(client, newsroom, django_assert_num_queries):
    client.get("/")
    client.get("/ar/")

    with django_assert_num_queries(0):  # both served from the page cache
        english = client.get("/")
        arabic = client.get("/ar/")

    assert _root(english.content.decode()) == ("en", "ltr")
    assert english["Content-Language"] == "en"
    assert newsroom["en"].headline in english.content.decode()
    assert _root(arabic.content.decode()) == ("ar", "rtl")
    assert arabic["Content-Language"] == "ar"
    assert newsroom["ar"].headline in arabic.content.decode()


def test_a_category_is_one_row_followed_alike_in_every_language(client, newsroom):
    follow = re.compile(r'<input type="hidden" name="slug" value="([^"]+)">')

    slugs = {
        prefix: follow.findall(_html(client.get(f"{prefix}category/climate-water/")))
        for prefix in ("/", "/ar/", "/he/")
    }

    assert slugs == {prefix: ["climate-water"] for prefix in ("/", "/ar/", "/he/")}


def test_another_apps_page_switches_to_the_same_page_in_each_language(client, newsroom):
    page = _html(client.get("/ar/donate/"))

    assert _root(page) == ("ar", "rtl")
    assert _switcher(page) == {"en": "/donate/", "ar": "/ar/donate/", "he": "/he/donate/"}
