"""The server-side page cache for anonymous readers, and the content version that keys it.

A page is stored under its path, query and the reader's variant (the callable that
settings.PAGE_CACHE_READER_KEY names, e.g. the reader's appeal state), together with the
content version it was rendered at. A hit fetches the current version and the page in one round trip
(`get_many`) and serves the page only when the two versions match. Publishing or
editing anything bumps the version, so every page is fresh at once; and the version
also moves by itself when the next scheduled article's time comes, or another app's
scheduled change (PAGE_CACHE_SCHEDULES: an appeal's start or end), so a scheduled
article appears on cached pages with nothing to run.

Each worker process also keeps the pages it served in its own memory (`_LocalPages`,
at most PAGE_CACHE_LOCAL_ENTRIES pages and PAGE_CACHE_LOCAL_BYTES, least recently used
dropped first) and asks Redis for the content version at most once every
PAGE_CACHE_LOCAL_SECONDS: a hit, or a conditional GET answered 304, then touches neither
Redis nor the database. That is the bound on freshness at the origin: a change made in
another process is served by this one at most PAGE_CACHE_LOCAL_SECONDS later (a change
made in this process, at once). Redis 7.4's client-side caching would push the change
instead; the periodic check works on every Redis. Other reads that every page makes
(the running appeals, for one) are kept beside the version with `kept`, and forgotten
each time it is read again, so a page-cache miss within the bound asks Redis nothing.

A stored page outlives its freshness by PAGE_CACHE_STALE_SECONDS: when the database
cannot be reached (to rebuild a lost content version, or to render the page), the last
copy of that URL is served instead of an error, marked `X-Cache: stale` with its `Age`
(RFC 9111 §5.1) and `max-age=0`, so nothing downstream keeps it.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache
from django.core.signals import setting_changed
from django.db import DatabaseError
from django.db.models import Min
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.middleware.http import ConditionalGetMiddleware
from django.utils import timezone
from django.utils.cache import get_conditional_response, patch_vary_headers
from django.utils.http import http_date, parse_http_date_safe
from django.utils.module_loading import import_string

T = TypeVar("T")

STATE_KEY = "newsroom:content-state"
# Headers a stored page keeps; everything else (cookies above all) is never stored.
STORED_HEADERS = ("Content-Type", "Content-Language", "ETag", "Last-Modified", "X-Robots-Tag")
# What a page held in memory costs besides its body (the entry's dict, headers, key).
LOCAL_ENTRY_OVERHEAD_BYTES = 1024


class _LocalPages:
    """This process's copy of pages and of the content version, checked once a bound.

    The content version is taken as current for PAGE_CACHE_LOCAL_SECONDS after it was
    read from the cache (never past a scheduled article's time); pages are kept least
    recently used first out, within PAGE_CACHE_LOCAL_ENTRIES and PAGE_CACHE_LOCAL_BYTES,
    so a crawl of endless URLs costs a worker a fixed amount of memory.
    """

    def __init__(self) -> None:
        self._pages: OrderedDict[str, dict] = OrderedDict()
        self._bytes = 0
        self._state: dict | None = None
        self._checked_at = 0.0
        # Values `kept` since the version was last read, and which reading that was.
        self._kept: dict[Hashable, object] = {}
        self._reading = 0
        # gunicorn's threaded workers share one process's copy.
        self._lock = threading.Lock()

    def state(self, now: float) -> dict | None:
        """The content version read within the bound, None when it must be read again."""
        state = self._state
        if state is None or now - self._checked_at >= settings.PAGE_CACHE_LOCAL_SECONDS:
            return None
        if state["next_due"] is not None and state["next_due"] <= now:
            return None
        return state

    def checked(self, state: dict, now: float) -> None:
        with self._lock:
            if self._state is None or self._state["version"] != state["version"]:
                # Pages of an older version are never served again: free them now.
                self._pages.clear()
                self._bytes = 0
            # Kept values live no longer than the reading of the version they came with.
            self._kept = {}
            self._reading += 1
            self._state, self._checked_at = state, now

    def kept(self, key: Hashable, compute: Callable[[], T]) -> T:
        kept = self._kept
        if key in kept:
            return kept[key]  # type: ignore[return-value]
        reading = self._reading
        value = compute()
        with self._lock:
            # Not when the version was read again meanwhile: the value may predate it.
            if reading == self._reading:
                self._kept[key] = value
        return value

    def get(self, key: str) -> dict | None:
        with self._lock:
            entry = self._pages.get(key)
            if entry is not None:
                self._pages.move_to_end(key)
            return entry

    def put(self, key: str, entry: dict) -> None:
        size = len(entry["content"]) + LOCAL_ENTRY_OVERHEAD_BYTES
        if size > settings.PAGE_CACHE_LOCAL_BYTES:
            return
        with self._lock:
            old = self._pages.pop(key, None)
            if old is not None:
                self._bytes -= old["local_size"]
            self._pages[key] = {**entry, "local_size": size}
            self._bytes += size
            while (
                len(self._pages) > settings.PAGE_CACHE_LOCAL_ENTRIES
                or self._bytes > settings.PAGE_CACHE_LOCAL_BYTES
            ):
                _, dropped = self._pages.popitem(last=False)
                self._bytes -= dropped["local_size"]

    def size(self) -> tuple[int, int]:
        """How many pages are held, and their bytes as counted against the bound."""
        return len(self._pages), self._bytes

    def clear(self) -> None:
        with self._lock:
            self._pages.clear()
            self._bytes = 0
            self._state, self._checked_at = None, 0.0
            self._kept = {}
            self._reading += 1


_local = _LocalPages()


def local_pages_forget() -> None:
    """Drop this process's copy of pages and of the content version (tests, settings)."""
    _local.clear()


def _settings_changed(*, setting: str, **kwargs) -> None:
    if setting.startswith("PAGE_CACHE") or setting == "CACHES":
        local_pages_forget()


setting_changed.connect(_settings_changed)


def _new_state() -> dict:
    from newsroom.models import Article

    now = timezone.now()
    article_due = (
        Article.objects.exclude(status=Article.Status.DRAFT)
        .filter(published_at__gt=now)
        .aggregate(next_due=Min("published_at"))["next_due"]
    )
    # Other apps' scheduled changes, named by a setting: newsroom imports no app.
    scheduled = [import_string(path)(now) for path in settings.PAGE_CACHE_SCHEDULES]
    next_due = min((due for due in (article_due, *scheduled) if due is not None), default=None)
    return {
        "version": uuid.uuid4().hex[:16],
        "changed_at": now.timestamp(),
        "next_due": next_due.timestamp() if next_due else None,
    }


def content_state() -> dict:
    """The current content version, when it last changed, and when it next changes by itself."""
    return _current(cache.get(STATE_KEY))


def _current(state: dict | None) -> dict:
    """`state` as read from the cache, or a new one when it is lost or has come due."""
    now = timezone.now().timestamp()
    if state is None or (state["next_due"] is not None and state["next_due"] <= now):
        # Lost from the cache, or a scheduled article's time has come: a new version.
        state = _new_state()
        cache.set(STATE_KEY, state, timeout=None)
    return state


def current_state() -> dict:
    """The content state as this process sees it: read anew at most once a bound.

    That is, within PAGE_CACHE_LOCAL_SECONDS, and never past a scheduled change.
    """
    now = time.time()
    state = _local.state(now)
    if state is None:
        state = content_state()
        _local.checked(state, now)
    return state


def kept(key: Hashable, compute: Callable[[], T]) -> T:
    """`compute()`, kept in this process until the content version is next read.

    For reads every page makes that change only with the content version, or may lag by
    the same bound as a cached page (PAGE_CACHE_LOCAL_SECONDS): what is kept is
    forgotten whenever the version is read again, which is at least that often and
    at once when this process changes it. A value that changes at a time of its own
    (an appeal's start or end) must be checked against the clock by its reader.
    """
    current_state()
    return _local.kept(key, compute)


def content_changed() -> None:
    """Make every cached page stale: the next request renders it anew.

    Other processes see the change when they next check the version, within
    PAGE_CACHE_LOCAL_SECONDS; this one at once.
    """
    state = _new_state()
    cache.set(STATE_KEY, state, timeout=None)
    _local.checked(state, time.time())


def is_signed_in(request: HttpRequest) -> bool:
    """True for a logged-in user. Readers without a session cookie never touch the session."""
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return False
    return request.user.is_authenticated


def _reader_key(request: HttpRequest) -> str:
    """The reader's variant of every page, from the callable PAGE_CACHE_READER_KEY names."""
    dotted_path = settings.PAGE_CACHE_READER_KEY
    # Looked up on each call, as CHECKOUT_CAPTCHA_CHECK is: after the first import it is a
    # dictionary lookup, and a changed setting or a patched function is taken at once.
    return import_string(dotted_path)(request) if dotted_path else ""


def _page_key(request: HttpRequest) -> str:
    path = hashlib.sha256(request.get_full_path().encode()).hexdigest()[:32]
    return f"newsroom:page:{_reader_key(request)}:{path}"


def _usable(stored: dict | None, state: dict, now: float) -> bool:
    # Not when rendered before the last change, or kept only for an outage.
    return (
        stored is not None
        and stored.get("version") == state["version"]
        and stored.get("fresh_until", 0) > now
    )


def _lookup(request: HttpRequest) -> tuple[dict, str, dict | None]:
    """The content state, the page's key, and its stored copy if it is of this version."""
    key = getattr(request, "_newsroom_page_key", None) or _page_key(request)
    if settings.PAGE_CACHE_SECONDS <= 0:
        return current_state(), key, None  # the page cache is off: nothing to read
    now = time.time()
    state = _local.state(now)
    if state is not None:
        stored = _local.get(key)
        if _usable(stored, state, now):
            return state, key, stored
        stored = cache.get(key)
    else:
        found = cache.get_many([STATE_KEY, key])
        state = _current(found.get(STATE_KEY))
        _local.checked(state, now)
        stored = found.get(key)
    if not _usable(stored, state, now):
        return state, key, None
    _local.put(key, stored)
    return state, key, stored


def _stale(stored: dict) -> HttpResponse:
    """The last stored copy of a page, served while the database cannot be reached."""
    response = HttpResponse(stored["content"])
    for header, value in stored["headers"].items():
        response[header] = value
    response["X-Cache"] = "stale"
    response["Age"] = str(max(0, int(timezone.now().timestamp() - stored.get("stored_at", 0))))
    response["Cache-Control"] = "public, max-age=0, must-revalidate"
    patch_vary_headers(response, ("Cookie",))
    return response


def content_version(request: HttpRequest) -> str | None:
    """The content version a public page is being rendered at, None outside the page cache."""
    return getattr(request, "_newsroom_content_version", None)


def _seconds_until_next_due(state: dict) -> int | None:
    if state["next_due"] is None:
        return None
    return max(1, int(state["next_due"] - timezone.now().timestamp()) + 1)


def _cache_control(state: dict) -> str:
    # max-age for browsers, s-maxage for a CDN (RFC 9111 §5.2.2.10); the server-side
    # copy is dropped at once on a change, a CDN's after at most PAGE_CACHE_SECONDS,
    # or sooner when a scheduled article is due before then.
    lifetime = settings.PAGE_CACHE_SECONDS
    browser = 60
    due = _seconds_until_next_due(state)
    if due is not None:
        lifetime, browser = min(lifetime, due), min(browser, due)
    return f"public, max-age={browser}, s-maxage={lifetime}"


def _public_headers(response: HttpResponse, *, state: dict) -> None:
    response["Cache-Control"] = _cache_control(state)
    patch_vary_headers(response, ("Cookie",))
    if not response.has_header("Last-Modified"):
        response["Last-Modified"] = http_date(state["changed_at"])
    if not response.has_header("ETag"):
        digest = hashlib.sha256(response.content).hexdigest()[:32]
        response["ETag"] = f'"{digest}"'


def _per_reader(request: HttpRequest, response: HttpResponse) -> bool:
    """True when rendering touched something of this reader's: such a page must not be shared."""
    session = getattr(request, "session", None)
    return bool(
        response.cookies
        # A {% csrf_token %} in the page: the middleware is about to set the cookie.
        or request.META.get("CSRF_COOKIE_NEEDS_UPDATE")
        or (session is not None and (session.accessed or session.modified))
    )


def _render(view: Callable[..., HttpResponse], request: HttpRequest, *args, **kwargs):
    response = view(request, *args, **kwargs)
    if hasattr(response, "render") and not response.is_rendered:
        response.render()  # a TemplateResponse (the sitemap view's)
    return response


def _store(request: HttpRequest, response: HttpResponse, *, state: dict, key: str) -> None:
    if settings.PAGE_CACHE_SECONDS <= 0:
        return
    # Fresh until the next scheduled article appears at the latest.
    due = _seconds_until_next_due(state)
    fresh = min(settings.PAGE_CACHE_SECONDS, due) if due else settings.PAGE_CACHE_SECONDS
    # Kept longer for an outage, except pages with a query string (searches, pages of a
    # list): anyone can make endless such URLs, and a day of them would fill the cache.
    keep = fresh if request.META.get("QUERY_STRING") else fresh + settings.PAGE_CACHE_STALE_SECONDS
    now = timezone.now().timestamp()
    entry = {
        "version": state["version"],
        "stored_at": now,
        "fresh_until": now + fresh,
        "content": response.content,
        "headers": {h: response[h] for h in STORED_HEADERS if response.has_header(h)},
        "last_modified": parse_http_date_safe(response["Last-Modified"]),
    }
    cache.set(key, entry, keep)
    _local.put(key, entry)


def _stored_copy(request: HttpRequest) -> dict | None:
    try:
        key = _page_key(request)
        # This process's copy when the cache has none (Redis is down as well).
        return cache.get(key) or _local.get(key)
    except Exception:
        return None  # the cache is failing too: the database's error is the one to show


def public_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Serve a public page from the server-side cache for readers who are not signed in.

    Anonymous responses are `public` with ETag and Last-Modified and answer a matching
    conditional GET with 304 (RFC 9110 §13.1); signed-in staff always get a fresh,
    `private` page (they may be previewing drafts).
    """

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method not in ("GET", "HEAD") or is_signed_in(request):
            response = view(request, *args, **kwargs)
            response["Cache-Control"] = "private, no-cache"
            patch_vary_headers(response, ("Cookie",))
            return response

        try:
            state, key, stored = _lookup(request)
            request._newsroom_content_version = state["version"]
            if stored is None:
                response = _render(view, request, *args, **kwargs)
                if (
                    response.status_code != 200
                    or response.streaming
                    or _per_reader(request, response)
                ):
                    return response
                _public_headers(response, state=state)
                _store(request, response, state=state, key=key)
        except DatabaseError:
            # A lost content version or a cache miss needs the database; it cannot answer.
            last = _stored_copy(request)
            if last is None:
                raise
            return _stale(last)
        if stored is not None:
            return _from_stored(request, stored, state=state)
        return get_conditional_response(
            request,
            etag=response["ETag"],
            last_modified=parse_http_date_safe(response["Last-Modified"]),
            response=response,
        )

    return wrapper


# The request headers that can turn a stored page into a 304 or a 412 (RFC 9110 §13.1).
CONDITIONAL_HEADERS = (
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_MATCH",
    "HTTP_IF_UNMODIFIED_SINCE",
)


def _from_stored(request: HttpRequest, stored: dict, *, state: dict) -> HttpResponse:
    """A stored page, or the 304 or 412 its validators call for, decided before building it."""
    headers = stored["headers"]
    meta = request.META
    if (
        meta.get("HTTP_IF_NONE_MATCH") == headers["ETag"]
        and "HTTP_IF_MATCH" not in meta
        and "HTTP_IF_UNMODIFIED_SINCE" not in meta
    ):
        # The usual revalidation, the client's copy's own ETag sent back: Django's
        # evaluation below answers it 304 whatever If-Modified-Since says (If-None-Match
        # takes precedence, RFC 9110 §13.2.2), without parsing anything.
        return _not_modified(HttpResponseNotModified(), headers, state=state)
    if any(name in meta for name in CONDITIONAL_HEADERS):
        # Django's own evaluation, as ConditionalGetMiddleware makes it (weak comparison,
        # lists, "*", If-Modified-Since only without If-None-Match); None: send the page.
        answer = get_conditional_response(
            request,
            etag=headers["ETag"],
            # Parsed once when stored, not on every request.
            last_modified=stored.get("last_modified")
            or parse_http_date_safe(headers["Last-Modified"]),
        )
        if answer is not None:
            if answer.status_code == 304:
                return _not_modified(answer, headers, state=state)
            return answer  # a failed If-Match or If-Unmodified-Since: 412
    response = HttpResponse(stored["content"])
    for header, value in headers.items():
        response[header] = value
    _public_headers(response, state=state)
    return response


def _not_modified(response: HttpResponse, headers: dict, *, state: dict) -> HttpResponse:
    # What the 200 would carry of RFC 9110 §15.4.5's list, and Last-Modified as Django
    # keeps it; a stored page has no Content-Location or Expires, and the server adds Date.
    response["Cache-Control"] = _cache_control(state)
    response["ETag"] = headers["ETag"]
    response["Last-Modified"] = headers["Last-Modified"]
    response["Vary"] = "Cookie"
    return response


class NotModifiedFirstMiddleware(ConditionalGetMiddleware):
    """Django's ConditionalGetMiddleware, passing a 304 that a view already answered.

    For a 304 Django's would split its Cache-Control and parse its Last-Modified only to
    hand it back unchanged (it evaluates 2xx responses alone, and a 304 has no body to
    take an ETag from): 15 µs of a 304's 0.25 ms in this process (30 November 2026).
    """

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if response.status_code == 304:
            return response
        return super().process_response(request, response)


class StoredPageMiddleware:
    """Answer a page this process holds in memory before the URL is resolved.

    Last in settings.MIDDLEWARE but for django-axes's (which acts on logins alone): every
    other middleware has already run on the request and runs on the response, so a page
    answered here carries the same headers as one `public_page` answers. What is skipped
    is resolving the URL through the language prefixes, the middleware's `process_view`
    and the view's wrapper: a quarter of a cached hit's CPU in-process (bench/README.md,
    "Pages"). Only `public_page` stores a page under a page key, so a URL of any other view
    finds nothing here; and a page is served without asking anyone only while the content
    version is within its bound (PAGE_CACHE_LOCAL_SECONDS). Everything else (signed-in
    staff, a POST, a page not held, a version to read again) goes on to the view.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            request.method in ("GET", "HEAD")
            and settings.PAGE_CACHE_SECONDS > 0
            and not is_signed_in(request)
        ):
            now = time.time()
            state = _local.state(now)
            if state is not None:
                key = request._newsroom_page_key = _page_key(request)
                stored = _local.get(key)
                if _usable(stored, state, now):
                    request._newsroom_content_version = state["version"]
                    return _from_stored(request, stored, state=state)
        return self.get_response(request)
