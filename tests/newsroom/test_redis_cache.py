"""Redis speeds pages up and nothing more: refused, hung or reset, every public page answers.

These run against the real Redis through tests/faultproxy.py (see `redis_cache_proxy`).
"""

from __future__ import annotations

import logging
import time

import pytest
from django.core.cache import cache

from newsroom import faults
from tests.donations.factories import AppealFactory
from tests.newsroom.factories import ArticleFactory, CategoryFactory, TopicFactory
from tests.subscriptions.factories import NewsletterFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def newsroom():
    politics = CategoryFactory(name="Politics", slug="politics")
    water = TopicFactory(name="Water", slug="water")
    article = ArticleFactory(
        headline="Budget vote delayed", slug="budget-vote", category=politics, topics=[water]
    )
    NewsletterFactory(name="Mideast Daily")
    AppealFactory(headline="Keep the Ledger free to read")
    ArticleFactory(headline="تأجيل التصويت على الميزانية", language="ar", category=politics)
    return article


def public_pages(article) -> dict[str, str]:
    """Each public page and a text it shows when rendered from the database."""
    return {
        "/": "Budget vote delayed",
        article.get_absolute_url(): "Budget vote delayed",
        "/category/politics/": "Budget vote delayed",
        "/topic/water/": "Budget vote delayed",
        "/search/?q=budget": "Budget vote delayed",
        "/browse/": "Politics",
        "/feed/": "Budget vote delayed",
        "/donate/": "Give",
        "/donate/manage/": "email",
        "/newsletters/": "Mideast Daily",
        "/ar/": "تأجيل التصويت على الميزانية",
    }


@pytest.mark.parametrize("fault", ["refuse", "hang", "drop"])
def test_every_public_page_renders_from_the_database_while_redis_fails(
    client, redis_cache_proxy, newsroom, fault
):
    client.get("/")  # the page cache and the content version are now in Redis
    redis_cache_proxy.mode = fault

    for path, text in public_pages(newsroom).items():
        response = client.get(path)
        assert response.status_code == 200, path
        assert text in response.content.decode(), path


def test_a_hung_redis_holds_a_page_about_one_timeout(client, redis_cache_proxy, newsroom, settings):
    redis_cache_proxy.mode = "hang"

    started = time.monotonic()
    response = client.get(newsroom.get_absolute_url())
    seconds = time.monotonic() - started

    assert response.status_code == 200
    # Timeout 0.25 s: a page makes a dozen cache calls, and only the first waits.
    assert seconds < 5, f"{seconds:.1f} s"


def test_pages_use_redis_again_once_it_answers(client, redis_cache_proxy, newsroom, settings):
    redis_cache_proxy.mode = "refuse"
    assert client.get("/").status_code == 200
    redis_cache_proxy.mode = "pass"
    time.sleep(settings.REDIS_CACHE_PAUSE_SECONDS)

    client.get("/")

    assert cache.get("newsroom:content-state") is not None


def test_the_appeal_banner_shows_while_redis_is_down(client, redis_cache_proxy, newsroom):
    redis_cache_proxy.mode = "refuse"

    page = client.get("/").content.decode()

    assert "Keep the Ledger free to read" in page


def test_reads_miss_and_writes_do_nothing_while_redis_is_down(redis_cache_proxy):
    cache.set("kept", "yes")
    redis_cache_proxy.mode = "refuse"

    assert cache.get("kept", "default") == "default"
    assert cache.get_many(["kept"]) == {}
    assert cache.add("lock", 1) is False
    assert cache.set_many({"a": 1}) == ["a"]
    cache.set("kept", "no")
    cache.delete("kept")
    with pytest.raises(ValueError):
        cache.incr("kept")


def test_one_log_line_a_minute_per_kind_of_failure_and_no_traceback(
    client, redis_cache_proxy, newsroom, settings, caplog, monkeypatch
):
    settings.FAULT_LOG_SECONDS = 60
    monkeypatch.setattr(faults, "_logged", {})  # lines other tests logged this minute
    # Redis tried on every call, as though each were a request of its own.
    default = settings.CACHES["default"]
    settings.CACHES = {
        "default": {**default, "OPTIONS": {**default["OPTIONS"], "pause_after_error": 0}}
    }
    redis_cache_proxy.mode = "refuse"

    with caplog.at_level(logging.INFO):
        for _ in range(5):
            assert client.get("/").status_code == 200

    failures = [r for r in caplog.records if r.name == "newsroom.redis_cache"]
    assert len(failures) == 1
    assert failures[0].getMessage().startswith("cache: Redis failed: ConnectionError: ")
    assert failures[0].exc_info is None and "\n" not in failures[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r not in failures]


def test_the_next_line_counts_the_failures_held_back(settings, caplog, monkeypatch):
    settings.FAULT_LOG_SECONDS = 60
    monkeypatch.setattr(faults, "_logged", {})
    logger = logging.getLogger("tests.faults")

    with caplog.at_level(logging.ERROR, logger="tests.faults"):
        for _ in range(4):
            faults.report(logger, "cache: Redis failed", ConnectionError("refused"))
        faults.report(logger, "cache: Redis failed", TimeoutError("no answer"))
        monkeypatch.setattr(time, "monotonic", lambda: 10**9)
        faults.report(logger, "cache: Redis failed", ConnectionError("refused"))

    assert [r.getMessage() for r in caplog.records] == [
        "cache: Redis failed: ConnectionError: refused",
        "cache: Redis failed: TimeoutError: no answer",
        "cache: Redis failed: ConnectionError: refused (3 more like it since the last line)",
    ]
