"""Anonymous pages: cacheable, conditional, cookie-free, fresh the moment content changes."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import OperationalError, connection
from django.http import HttpResponse
from django.test.signals import template_rendered
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from newsroom import caching, services
from newsroom.models import Article
from tests.newsroom.factories import ArticleFactory, AuthorFactory, CategoryFactory, TopicFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def article():
    return ArticleFactory(headline="Reservoir levels recover")


def public_urls(article) -> list[str]:
    return [
        "/",
        article.get_absolute_url(),
        article.category.get_absolute_url(),
        article.authors.get().get_absolute_url(),
        "/browse/",
        "/search/?q=reservoir",
        "/feed/",
    ]


def test_anonymous_pages_are_public_with_validators_and_vary_on_cookie(client, article, settings):
    settings.PAGE_CACHE_SECONDS = 300

    for url in public_urls(article):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["Cache-Control"] == "public, max-age=60, s-maxage=300", url
        assert "Cookie" in response["Vary"], url
        assert response["ETag"].startswith('"'), url
        assert response.has_header("Last-Modified"), url


def test_anonymous_pages_set_no_cookie_and_carry_no_csrf_token(client, article):
    for url in public_urls(article):
        response = client.get(url)
        assert not response.cookies, (url, response.cookies)
        assert "Set-Cookie" not in response.headers, url
        assert b"csrfmiddlewaretoken" not in response.content, url


def test_a_matching_etag_gets_304_without_a_body(client, article):
    first = client.get(article.get_absolute_url())

    again = client.get(article.get_absolute_url(), headers={"if-none-match": first["ETag"]})

    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == first["ETag"]


def test_a_matching_last_modified_gets_304(client, article):
    first = client.get("/")

    again = client.get("/", headers={"if-modified-since": first["Last-Modified"]})

    assert again.status_code == 304


def test_a_stale_etag_gets_the_page(client, article):
    response = client.get(article.get_absolute_url(), headers={"if-none-match": '"old"'})

    assert response.status_code == 200
    assert b"Reservoir levels recover" in response.content


def cached_article(client, article):
    """The article's page once it is stored, and the 200 that stored it."""
    client.get(article.get_absolute_url())
    return client.get(article.get_absolute_url())


def test_a_304_from_a_stored_page_carries_the_200s_validators_and_security_headers(client, article):
    page = cached_article(client, article)

    again = client.get(article.get_absolute_url(), headers={"if-none-match": page["ETag"]})

    assert again.status_code == 304 and again.content == b""
    # RFC 9110 §15.4.5: what the 200 would have sent of Cache-Control, ETag and Vary.
    for header in ("Cache-Control", "ETag", "Last-Modified", "Vary"):
        assert again[header] == page[header], header
    assert "Content-Location" not in page.headers and "Expires" not in page.headers
    for header in (
        "Content-Security-Policy",
        "X-Frame-Options",
        "X-Content-Type-Options",
        "Referrer-Policy",
        "Cross-Origin-Opener-Policy",
    ):
        assert again[header] == page[header], header
    assert not again.cookies and "Set-Cookie" not in again.headers


def test_a_304_from_a_stored_page_builds_no_page(client, article, monkeypatch):
    page = cached_article(client, article)

    def no_page(*args, **kwargs):
        raise AssertionError("the 200 was built for a 304")

    monkeypatch.setattr(caching, "HttpResponse", no_page)
    again = client.get(article.get_absolute_url(), headers={"if-none-match": page["ETag"]})

    assert again.status_code == 304


@pytest.mark.parametrize(
    "if_none_match",
    ["W/{etag}", '"other", {etag}', "*", '"other",{etag} , "another"'],
    ids=["weak", "list", "star", "list-spaced"],
)
def test_a_weak_or_listed_etag_gets_304_as_djangos_comparison_says(client, article, if_none_match):
    page = cached_article(client, article)

    again = client.get(
        article.get_absolute_url(),
        headers={"if-none-match": if_none_match.format(etag=page["ETag"])},
    )

    assert again.status_code == 304
    assert again["ETag"] == page["ETag"] and again["Cache-Control"] == page["Cache-Control"]


def test_a_stale_etag_gets_the_page_whatever_if_modified_since_says(client, article):
    page = cached_article(client, article)

    response = client.get(
        article.get_absolute_url(),
        headers={"if-none-match": '"old"', "if-modified-since": page["Last-Modified"]},
    )

    # If-None-Match is evaluated alone when present (RFC 9110 §13.2.2).
    assert response.status_code == 200
    assert response.content == page.content
    assert not response.cookies


def test_a_failed_if_match_on_a_stored_page_gets_412(client, article):
    page = cached_article(client, article)

    both = {"if-none-match": page["ETag"], "if-match": '"other"'}
    response = client.get(article.get_absolute_url(), headers=both)

    assert response.status_code == 412


def test_pages_are_served_from_the_server_side_cache(client, article, django_assert_num_queries):
    client.get(article.get_absolute_url())

    with django_assert_num_queries(0):
        response = client.get(article.get_absolute_url())
    assert b"Reservoir levels recover" in response.content


def test_editing_an_article_makes_cached_pages_fresh_at_once(client, article):
    url_pages = ["/", article.get_absolute_url(), article.category.get_absolute_url()]
    before = {url: client.get(url)["ETag"] for url in url_pages}

    article.headline = "Reservoir levels recover faster than forecast"
    services.article_save(article=article)

    for url in url_pages:
        response = client.get(url)
        assert b"faster than forecast" in response.content, url
        assert response["ETag"] != before[url], url
        assert client.get(url, headers={"if-none-match": before[url]}).status_code == 200


def test_publishing_a_draft_shows_it_at_once(client):
    draft = ArticleFactory(
        headline="Fresh from the desk", status=Article.Status.DRAFT, published_at=None
    )
    assert b"Fresh from the desk" not in client.get("/").content
    assert client.get(draft.get_absolute_url()).status_code == 404

    services.article_publish(article=draft)

    assert b"Fresh from the desk" in client.get("/").content
    assert client.get(draft.get_absolute_url()).status_code == 200


def test_unpublishing_removes_the_article_from_cached_pages(client, article):
    client.get("/")
    client.get(article.get_absolute_url())

    services.article_unpublish(article=article)

    assert b"Reservoir levels recover" not in client.get("/").content
    assert client.get(article.get_absolute_url()).status_code == 404


def test_a_scheduled_article_appears_by_itself_when_its_time_comes_even_on_cached_pages(
    client, settings
):
    settings.PAGE_CACHE_SECONDS = 3600
    start = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as clock:
        ArticleFactory(headline="Already out", published_at=start - timedelta(hours=1))
        scheduled = ArticleFactory.build(
            headline="Morning scheduled story", category=CategoryFactory()
        )
        services.article_publish(article=scheduled, at=start + timedelta(minutes=30))
        scheduled.authors.set([AuthorFactory()])
        assert scheduled.status == Article.Status.SCHEDULED

        home = client.get("/")
        assert b"Already out" in home.content
        assert b"Morning scheduled story" not in home.content
        assert client.get(scheduled.get_absolute_url()).status_code == 404
        assert client.get("/", headers={"if-none-match": home["ETag"]}).status_code == 304

        # Browsers and a CDN are told to keep the page no longer than until it is due.
        assert home["Cache-Control"] == "public, max-age=60, s-maxage=1801"

        clock.shift(timedelta(minutes=29))
        assert b"Morning scheduled story" not in client.get("/").content

        clock.shift(timedelta(minutes=2))
        home_now = client.get("/", headers={"if-none-match": home["ETag"]})
        assert home_now.status_code == 200
        assert b"Morning scheduled story" in home_now.content
        assert client.get(scheduled.get_absolute_url()).status_code == 200
        assert b"Morning scheduled story" in client.get("/feed/").content


def test_signed_in_staff_bypass_the_cache_and_get_private_pages(client, staff_client, article):
    client.get(article.get_absolute_url())  # warms the anonymous cache
    Article.objects.filter(pk=article.pk).update(headline="Changed behind the cache")

    response = staff_client.get(article.get_absolute_url())

    assert b"Changed behind the cache" in response.content
    assert response["Cache-Control"].startswith("private")


def test_the_cache_key_follows_the_readers_appeal_state(client, article, monkeypatch):
    from donations import selectors as donation_selectors

    client.get(article.get_absolute_url())
    monkeypatch.setattr(donation_selectors, "reader_state_key", lambda request: "gave-recently")
    rendered = []

    def on_render(sender, template, **kwargs):
        rendered.append(template.name)

    template_rendered.connect(on_render)
    try:
        client.get(article.get_absolute_url())
    finally:
        template_rendered.disconnect(on_render)

    assert "newsroom/article.html" in rendered  # a reader in another state gets their own


def forget_cached_pages() -> None:
    """Empty the shared cache and this process's copy: every page is rendered anew."""
    from django.core.cache import cache

    cache.clear()
    caching.local_pages_forget()


def _article_page_queries(client, article) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(article.get_absolute_url())
    assert response.status_code == 200
    return len(queries)


def test_an_article_page_runs_a_constant_number_of_queries(client, django_assert_max_num_queries):
    small = ArticleFactory(slug="small", body="<p>One.</p>")
    topics = [TopicFactory() for _ in range(4)]
    big = ArticleFactory(
        slug="big",
        body="".join(f"<p>Paragraph {n}.</p>" for n in range(30)),
        pull_quotes=["One quote.", "Another quote."],
        authors=[AuthorFactory() for _ in range(4)],
        topics=topics,
    )

    # The bound counts every app's part of the page (appeal slots, signup form), not ours alone.
    with django_assert_max_num_queries(20):
        client.get(small.get_absolute_url())
    forget_cached_pages()
    small_count = _article_page_queries(client, small)
    forget_cached_pages()
    assert _article_page_queries(client, big) == small_count


def _listing_queries(client, url: str) -> int:
    forget_cached_pages()
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_listing_pages_run_a_constant_number_of_queries(client, django_assert_max_num_queries):
    economy = CategoryFactory(slug="economy")
    politics = CategoryFactory(slug="politics")
    ArticleFactory(category=economy)
    ArticleFactory(category=politics, top_story_rank=1)
    client.get("/")  # the first page ever rendered may create rows other apps need once
    few = {url: _listing_queries(client, url) for url in ("/", "/category/economy/", "/browse/")}

    for n in range(15):
        ArticleFactory(
            category=economy if n % 2 else politics,
            top_story_rank=n if n < 4 else None,
            authors=[AuthorFactory(), AuthorFactory()],
            topics=[TopicFactory()],
        )

    for url, count in few.items():
        with django_assert_max_num_queries(20):
            assert _listing_queries(client, url) == count, url


def test_a_page_that_renders_a_csrf_token_is_never_shared(rf, db):
    from django.http import HttpResponse
    from django.middleware.csrf import get_token

    from newsroom.caching import public_page

    calls = []

    @public_page
    def view(request):
        calls.append(1)
        return HttpResponse(f"token {get_token(request)}")

    view(rf.get("/x/"))
    view(rf.get("/x/"))

    assert len(calls) == 2


def test_a_page_stored_before_a_change_is_not_served_after_it(client, article):
    from newsroom.caching import content_changed

    first = client.get(article.get_absolute_url())
    # Changed behind the page cache, then the content version moves (as every service does).
    Article.objects.filter(pk=article.pk).update(headline="Reservoirs full again")
    assert b"Reservoirs full again" not in client.get(article.get_absolute_url()).content

    content_changed()

    fresh = client.get(article.get_absolute_url())
    assert b"Reservoirs full again" in fresh.content
    assert fresh["ETag"] != first["ETag"]
    # The new rendering replaced the stale copy: served from the cache from now on.
    Article.objects.filter(pk=article.pk).update(headline="Changed again, unannounced")
    assert b"Reservoirs full again" in client.get(article.get_absolute_url()).content


def test_a_lost_content_version_makes_stored_pages_stale_within_the_bound(
    client, article, settings
):
    from django.core.cache import cache

    from newsroom.caching import STATE_KEY

    with time_machine.travel(timezone.now(), tick=False) as clock:
        client.get(article.get_absolute_url())
        Article.objects.filter(pk=article.pk).update(headline="Reservoirs full again")
        cache.delete(STATE_KEY)  # evicted under memory pressure, say
        clock.shift(settings.PAGE_CACHE_LOCAL_SECONDS)

        assert b"Reservoirs full again" in client.get(article.get_absolute_url()).content


def test_with_the_page_cache_off_every_request_renders_the_page(client, article, settings):
    settings.PAGE_CACHE_SECONDS = 0
    # Nor parts of pages kept: the update below bypasses the services that move the version.
    settings.PAGE_FRAGMENT_SECONDS = 0
    client.get(article.get_absolute_url())
    Article.objects.filter(pk=article.pk).update(headline="Reservoirs full again")

    response = client.get(article.get_absolute_url())

    assert b"Reservoirs full again" in response.content
    assert response["ETag"].startswith('"')


@contextmanager
def database_unreachable():
    """Every query fails as it does when the database server cannot be reached."""

    def refuse(execute, sql, params, many, context):
        raise OperationalError("connection failed: Connection refused")

    with connection.execute_wrapper(refuse):
        yield


def test_with_the_content_version_lost_and_the_database_unreachable_the_last_copy_is_served(
    client, article, settings
):
    from django.core.cache import cache

    from newsroom.caching import STATE_KEY

    with time_machine.travel(timezone.now(), tick=False) as clock:
        first = client.get(article.get_absolute_url())
        cache.delete(STATE_KEY)  # evicted, or Redis restarted
        clock.shift(settings.PAGE_CACHE_LOCAL_SECONDS)  # this process asks for it again

        with database_unreachable():
            response = client.get(article.get_absolute_url())

    assert response.status_code == 200
    assert response.content == first.content
    assert response["X-Cache"] == "stale"
    assert response["Cache-Control"] == "public, max-age=0, must-revalidate"


def test_a_page_past_its_freshness_is_served_stale_only_while_the_database_is_unreachable(
    client, article, settings
):
    settings.PAGE_CACHE_SECONDS = 60
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        first = client.get("/")
        clock.shift(timedelta(minutes=10))
        Article.objects.filter(pk=article.pk).update(headline="Reservoirs full again")

        with database_unreachable():
            stale = client.get("/")
        fresh = client.get("/")

    assert stale.status_code == 200 and stale.content == first.content
    assert stale["X-Cache"] == "stale" and stale["Age"] == "600"
    assert b"Reservoirs full again" in fresh.content
    assert not fresh.has_header("X-Cache")


def test_a_page_never_cached_gets_the_503_page_while_the_database_is_unreachable(client, article):
    with database_unreachable():
        response = client.get(article.category.get_absolute_url())

    assert response.status_code == 503
    assert "Back in a moment" in response.content.decode()
    assert response["Retry-After"] == "30"
    assert "Connection refused" not in response.content.decode()


def test_an_outage_is_logged_once_a_minute_not_once_a_request(client, article, caplog, settings):
    from newsroom import faults

    settings.FAULT_LOG_SECONDS = 60
    faults._logged.clear()
    with database_unreachable():
        for _ in range(5):
            assert client.get(article.category.get_absolute_url()).status_code == 503

    lines = [record for record in caplog.records if record.levelname in ("ERROR", "WARNING")]
    assert [record.getMessage() for record in lines] == [
        "database unavailable: OperationalError: connection failed: Connection refused"
    ]


# Each web process keeps pages in its memory and checks the content version at most once
# every PAGE_CACHE_LOCAL_SECONDS: the bound within which a change made elsewhere shows.


@contextmanager
def in_another_worker(monkeypatch):
    """Run the block as another web process would: with its own copy of pages in memory."""
    ours = caching._local
    monkeypatch.setattr(caching, "_local", caching._LocalPages())
    yield
    monkeypatch.setattr(caching, "_local", ours)


@pytest.fixture
def frozen_clock():
    with time_machine.travel(timezone.now(), tick=False) as clock:
        yield clock


class CacheCalls:
    """Counts the calls this process makes to the shared cache (Redis in production)."""

    def __init__(self, monkeypatch) -> None:
        from django.core.cache import cache

        self.calls: list[str] = []
        self._inside = False
        for name in ("get", "get_many", "set", "set_many"):
            monkeypatch.setattr(cache, name, self._counted(name, getattr(cache, name)))

    def _counted(self, name, method):
        def call(*args, **kwargs):
            if self._inside:  # the local-memory backend's get_many calls its get
                return method(*args, **kwargs)
            self.calls.append(name)
            self._inside = True
            try:
                return method(*args, **kwargs)
            finally:
                self._inside = False

        return call


@pytest.mark.parametrize("page_cache_seconds", [300, 0], ids=["page-cache-on", "page-cache-off"])
def test_a_publish_in_another_worker_shows_here_within_the_bound_and_not_before(
    client, monkeypatch, settings, frozen_clock, page_cache_seconds
):
    settings.PAGE_CACHE_SECONDS = page_cache_seconds
    settings.PAGE_CACHE_LOCAL_SECONDS = 1
    ArticleFactory(headline="Already out")
    draft = ArticleFactory(
        headline="Fresh from the desk", status=Article.Status.DRAFT, published_at=None
    )
    assert b"Fresh from the desk" not in client.get("/").content

    with in_another_worker(monkeypatch):
        services.article_publish(article=draft)

    frozen_clock.shift(0.9)
    assert b"Fresh from the desk" not in client.get("/").content
    frozen_clock.shift(0.1)
    assert b"Fresh from the desk" in client.get("/").content


def test_a_page_changed_in_another_worker_is_not_served_here_after_the_bound(
    client, article, monkeypatch, settings, frozen_clock
):
    settings.PAGE_CACHE_LOCAL_SECONDS = 1
    url = article.get_absolute_url()
    first = client.get(url)

    with in_another_worker(monkeypatch):
        article.headline = "Reservoirs full again"
        services.article_save(article=article)

    frozen_clock.shift(0.5)
    assert client.get(url, headers={"if-none-match": first["ETag"]}).status_code == 304
    frozen_clock.shift(0.5)
    revalidated = client.get(url, headers={"if-none-match": first["ETag"]})
    assert revalidated.status_code == 200
    assert b"Reservoirs full again" in revalidated.content


def test_a_change_made_in_this_worker_shows_here_at_once(client, article, frozen_clock):
    client.get(article.get_absolute_url())

    article.headline = "Reservoirs full again"
    services.article_save(article=article)

    assert b"Reservoirs full again" in client.get(article.get_absolute_url()).content


def test_a_hit_within_the_bound_asks_neither_the_cache_nor_the_database(
    client, article, monkeypatch, django_assert_num_queries, frozen_clock
):
    first = client.get(article.get_absolute_url())
    frozen_clock.shift(0.5)
    cache_calls = CacheCalls(monkeypatch)

    with django_assert_num_queries(0):
        page = client.get(article.get_absolute_url())
        not_modified = client.get(
            article.get_absolute_url(), headers={"if-none-match": first["ETag"]}
        )
        since = client.get(
            article.get_absolute_url(), headers={"if-modified-since": first["Last-Modified"]}
        )

    assert cache_calls.calls == []
    assert page.content == first.content
    assert page["ETag"] == first["ETag"]
    assert page["Cache-Control"] == first["Cache-Control"]
    assert "Cookie" in page["Vary"] and not page.cookies
    assert not page.has_header("Age") and not page.has_header("X-Cache")
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified["ETag"] == first["ETag"]
    assert since.status_code == 304


def test_after_the_bound_a_hit_asks_the_cache_once_for_the_version(
    client, article, monkeypatch, settings, frozen_clock
):
    settings.PAGE_CACHE_LOCAL_SECONDS = 1
    client.get(article.get_absolute_url())
    frozen_clock.shift(1)
    cache_calls = CacheCalls(monkeypatch)

    client.get(article.get_absolute_url())
    client.get(article.get_absolute_url())

    assert cache_calls.calls == ["get_many"]


def test_a_page_another_worker_stored_is_taken_from_the_shared_cache(
    client, article, monkeypatch, django_assert_num_queries
):
    with in_another_worker(monkeypatch):
        first = client.get(article.get_absolute_url())

    with django_assert_num_queries(0):
        response = client.get(article.get_absolute_url())

    assert response.content == first.content
    assert response["ETag"] == first["ETag"]


def reader_from_header(request) -> str:
    return request.headers.get("X-Reader", "")


def test_each_readers_variant_is_kept_apart_in_memory(rf, db, settings):
    settings.PAGE_CACHE_READER_KEY = "tests.newsroom.test_caching.reader_from_header"
    rendered = []

    @caching.public_page
    def view(request):
        rendered.append(reader_from_header(request))
        return HttpResponse(f"page for {reader_from_header(request) or 'everyone'}")

    for _ in range(2):
        assert view(rf.get("/x/")).content == b"page for everyone"
        assert view(rf.get("/x/", headers={"x-reader": "gave"})).content == b"page for gave"
        assert view(rf.get("/x/", headers={"x-reader": "dismissed"})).content == (
            b"page for dismissed"
        )

    assert rendered == ["", "gave", "dismissed"]


def test_a_crawl_of_endless_urls_keeps_a_bounded_number_of_pages_in_memory(rf, db, settings):
    settings.PAGE_CACHE_LOCAL_ENTRIES = 50
    settings.PAGE_CACHE_LOCAL_BYTES = 40 * 1024

    @caching.public_page
    def view(request):
        return HttpResponse(b"x" * 300)

    for n in range(20_000):
        view(rf.get(f"/search/?q={n}"))
        if n % 100 == 0:
            pages, size = caching._local.size()
            assert pages <= 50 and size <= 40 * 1024, n
    per_page = 300 + caching.LOCAL_ENTRY_OVERHEAD_BYTES
    held = 40 * 1024 // per_page  # the bytes bind before the count
    assert caching._local.size() == (held, held * per_page)


def test_the_pages_used_most_recently_stay_in_memory(rf, db, settings):
    settings.PAGE_CACHE_LOCAL_ENTRIES = 3
    rendered = []

    @caching.public_page
    def view(request):
        rendered.append(request.path)
        return HttpResponse(request.path)

    for path in ("/a/", "/b/", "/c/", "/a/", "/d/"):  # /d/ pushes out /b/, the oldest unused
        view(rf.get(path))
    from django.core.cache import cache

    cache.clear()  # only this process's copy is left
    rendered.clear()
    for path in ("/a/", "/c/", "/d/", "/b/"):
        view(rf.get(path))

    assert rendered == ["/b/"]


def test_with_redis_and_the_database_both_down_this_workers_copy_is_served_stale(
    client, article, redis_cache_proxy, settings, frozen_clock
):
    first = client.get(article.get_absolute_url())
    redis_cache_proxy.mode = "refuse"
    frozen_clock.shift(settings.PAGE_CACHE_LOCAL_SECONDS)  # the version must be asked for

    with database_unreachable():
        response = client.get(article.get_absolute_url())

    assert response.status_code == 200
    assert response.content == first.content
    assert response["X-Cache"] == "stale"


def test_with_the_page_cache_off_a_page_within_the_bound_asks_the_cache_nothing(
    client, article, monkeypatch, settings, frozen_clock
):
    settings.PAGE_CACHE_SECONDS = 0
    first = client.get(article.get_absolute_url())
    frozen_clock.shift(0.5)
    cache_calls = CacheCalls(monkeypatch)

    again = client.get(article.get_absolute_url())

    assert cache_calls.calls == []
    assert again.content == first.content


@pytest.fixture
def url_resolutions(monkeypatch) -> list[str]:
    """The paths Django resolves to a view from here on."""
    from django.urls.resolvers import URLResolver

    resolved: list[str] = []
    resolve = URLResolver.resolve

    def counted(self, path):
        if path.startswith("/"):  # the root's; the nested resolvers get what is left
            resolved.append(path)
        return resolve(self, path)

    monkeypatch.setattr(URLResolver, "resolve", counted)
    return resolved


def test_a_page_held_in_memory_is_answered_before_the_url_is_resolved(
    client, article, url_resolutions, frozen_clock
):
    through_the_view = cached_article(client, article)
    url_resolutions.clear()

    again = client.get(article.get_absolute_url())
    not_modified = client.get(
        article.get_absolute_url(), headers={"if-none-match": through_the_view["ETag"]}
    )

    assert url_resolutions == []
    assert again.status_code == 200 and again.content == through_the_view.content
    # Every other middleware's headers still, as the view's answer had them.
    assert dict(again.headers) == dict(through_the_view.headers)
    for header in ("Content-Security-Policy", "X-Frame-Options", "Content-Language"):
        assert again.has_header(header), header
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified["ETag"] == through_the_view["ETag"]


def test_an_arabic_page_held_in_memory_keeps_its_language(client, article, url_resolutions):
    arabic = ArticleFactory(headline="مستويات الخزانات", language="ar")
    first = client.get(arabic.get_absolute_url())
    url_resolutions.clear()

    again = client.get(arabic.get_absolute_url())

    assert url_resolutions == []
    assert again.content == first.content
    assert again["Content-Language"] == first["Content-Language"] == "ar"


def test_what_the_held_pages_do_not_answer_goes_on_to_the_view(
    client, staff_client, article, url_resolutions, settings, frozen_clock
):
    settings.PAGE_CACHE_LOCAL_SECONDS = 1
    url = article.get_absolute_url()
    cached_article(client, article)
    Article.objects.filter(pk=article.pk).update(headline="Changed behind the cache")
    url_resolutions.clear()

    staff_page = staff_client.get(url)
    posted = client.post(url)
    frozen_clock.shift(1)  # the version must be read again
    after_the_bound = client.get(url)

    assert url_resolutions == [url, url, url]
    assert b"Changed behind the cache" in staff_page.content
    assert staff_page["Cache-Control"].startswith("private")
    assert posted.status_code == 405
    assert after_the_bound.status_code == 200


def test_a_url_of_another_view_is_never_answered_from_the_held_pages(
    client, article, url_resolutions
):
    page = cached_article(client, article)
    url_resolutions.clear()

    response = client.get("/donate/")

    assert url_resolutions == ["/donate/"]
    assert response.status_code == 200
    assert response.content != page.content and b'name="amount"' in response.content
