"""Search in each language on PostgreSQL: the article's language picks the configuration."""

from __future__ import annotations

import pytest
from django.db import connection

from newsroom import selectors
from newsroom.models import Article
from tests.conftest import skip_or_fail
from tests.newsroom.factories import ArticleFactory

pytestmark = pytest.mark.django_db

DAMS = "سدود صغيرة في الوادي تعيد المياه إلى الآبار"
HOSPITAL = "المستشفى الجديد يستقبل أول المرضى"
FLOOD = "שיטפון בעמק: החקלאים מחכים לפיצויים"


@pytest.fixture(autouse=True)
def _postgresql(settings) -> None:
    if not settings.USING_POSTGRES:
        skip_or_fail("search per language is PostgreSQL full-text search")


def _headlines(client, path: str, query: str) -> str:
    return client.get(path, {"q": query}).content.decode()


@pytest.mark.parametrize(
    "query",
    [
        "الآبار",  # as written
        "الابار",  # alef without madda
        "الأبار",  # alef with hamza above
        "المِيَاهُ",  # with tashkeel
        "سُدُود",
    ],
)
def test_arabic_search_matches_with_or_without_diacritics_and_alef_forms(client, query):
    ArticleFactory(headline=DAMS, language="ar", dek="", body="<p>بنى المزارعون الحواجز.</p>")

    assert DAMS in _headlines(client, "/ar/search/", query)


@pytest.mark.parametrize("query", ["المستشفي", "المستشفى", "مستشفى"])
def test_arabic_search_reads_yeh_and_alef_maqsura_alike(client, query):
    ArticleFactory(headline=HOSPITAL, language="ar", dek="", body="<p>افتتح صباح الأحد.</p>")

    assert HOSPITAL in _headlines(client, "/ar/search/", query)


@pytest.mark.parametrize("query", ["שיטפון", "שִׁיטָּפוֹן", "בעמק"])
def test_hebrew_search_matches_with_or_without_points(client, query):
    ArticleFactory(headline=FLOOD, language="he", dek="", body="<p>המים ירדו אחרי יומיים.</p>")

    assert FLOOD in _headlines(client, "/he/search/", query)


def test_each_language_searches_its_own_articles(client):
    ArticleFactory(headline="Water returns to the wells", language="en")
    ArticleFactory(headline=DAMS, language="ar", dek="", body="<p>water</p>")

    english = _headlines(client, "/search/", "water")
    arabic = _headlines(client, "/ar/search/", "water")

    assert "Water returns to the wells" in english and DAMS not in english
    assert DAMS in arabic and "Water returns to the wells" not in arabic


def test_english_search_still_stems_words(client):
    ArticleFactory(headline="Reservoir levels recover", language="en")

    assert "Reservoir levels recover" in _headlines(client, "/search/", "reservoirs")


@pytest.mark.parametrize(
    ("language", "word"), [("en", "zeppelin"), ("ar", "المنطاد"), ("he", "צפלין")]
)
def test_each_language_search_uses_its_own_index(language, word):
    filler = ArticleFactory(language=language)
    Article.objects.bulk_create(
        Article(
            headline=f"{filler.headline} {n}",
            slug=f"filler-{n}",
            body=filler.body,
            language=language,
            category=filler.category,
            status=filler.status,
            published_at=filler.published_at,
        )
        for n in range(500)
    )
    ArticleFactory(headline=word, language=language)
    query = selectors.search_articles(query=word, language=language)
    sql, params = query.query.sql_with_params()

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE newsroom_article")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert f"article_search_{language}" in plan, plan
