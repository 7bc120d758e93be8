"""When a service the site leans on fails: one log line a minute, and a 503 where it must stop.

A Redis or broker that is down fails every request that touches it, and a line per
request (a traceback per request above all) buries the log. `report` writes the first
failure of each kind, then at most one line per `FAULT_LOG_SECONDS` with the count of
those held back. A request that must not go on without the service (a rate limit that
guards money or accounts and cannot count) raises `ServiceUnavailable`, which
`ServiceUnavailableMiddleware` answers with a 503 page and `Retry-After`, never a 500.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers

_lock = threading.Lock()
# (logger, what failed, error class) -> (when it was last logged, how many held back since)
_logged: dict[tuple[str, str, str], tuple[float, int]] = {}


def one_line(error: BaseException) -> str:
    """The error's class and text on one line: drivers' messages span several."""
    return " ".join(f"{type(error).__name__}: {error}".split())[:300]


def report(logger: logging.Logger, what: str, error: BaseException) -> None:
    """Log `what: <error>` at most once per FAULT_LOG_SECONDS for each `what` and error class."""
    kind = (logger.name, what, type(error).__name__)
    now = time.monotonic()
    with _lock:
        logged_at, held_back = _logged.get(kind, (None, 0))
        if logged_at is not None and now - logged_at < settings.FAULT_LOG_SECONDS:
            _logged[kind] = (logged_at, held_back + 1)
            return
        _logged[kind] = (now, 0)
    more = f" ({held_back} more like it since the last line)" if held_back else ""
    logger.error("%s: %s%s", what, one_line(error), more)


class ServiceUnavailable(Exception):
    """This request cannot go on safely while a service is down: answered 503, never 500."""

    retry_after_seconds = 30


class ServiceUnavailableMiddleware:
    """Answer `ServiceUnavailable` from any view with the 503 page and `Retry-After`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, ServiceUnavailable):
            return None
        response = render(
            request,
            "newsroom/unavailable.html",
            {"minutes": max(1, round(exception.retry_after_seconds / 60))},
            status=503,
        )
        # RFC 9110 §10.2.3: when to try again; clients and crawlers honour it.
        response["Retry-After"] = str(exception.retry_after_seconds)
        add_never_cache_headers(response)
        # Django would log each such answer ("Service Unavailable: ...") as an error: the
        # cause is logged by `report`, once a minute, and one line per request is the flood.
        response._has_been_logged = True
        return response
