"""Readiness for a load balancer that asks every second: database, cache, broker.

Each part is checked in a thread of its own and given HEALTHZ_CHECK_TIMEOUT_SECONDS; a
part that has not answered by then is "down", so the request never waits longer than
that, whatever hangs. A part whose last check is still running is not checked again
(its answer is awaited instead), so a hung service holds at most one thread per part.
The answer is kept in the process's memory (not in Redis, which may be what is down)
for HEALTHZ_CACHE_SECONDS: a load balancer asking every second costs one round of
checks per second per process. Why a part is down (the driver's text, which names hosts
and ports) goes to the log, one line per kind a minute, never into the answer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from django.conf import settings
from django.db import connection

from newsroom import faults
from newsroom.redis_cache import strict

logger = logging.getLogger(__name__)


def _database() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        # This thread's own connection: a new one each time says whether a request could
        # connect now, and none is left open between checks.
        connection.close()


def _cache() -> None:
    cache = strict()
    cache.set("healthz", "1", 10)
    if cache.get("healthz") != "1":
        raise RuntimeError("the cache did not return what was stored")


def _broker() -> None:
    from newsroom.celery import app

    seconds = settings.HEALTHZ_CHECK_TIMEOUT_SECONDS
    options = {"max_retries": 0, "socket_connect_timeout": seconds, "socket_timeout": seconds}
    with app.connection_for_write(transport_options=options) as conn:
        conn.ensure_connection(max_retries=0, timeout=seconds)
        # Opening a channel makes the broker answer a command: a hung Redis accepts
        # connections and says nothing.
        conn.default_channel.client.ping()


CHECKS: dict[str, Callable[[], None]] = {
    "database": _database,
    "cache": _cache,
    "broker": _broker,
}

_executor = ThreadPoolExecutor(max_workers=len(CHECKS), thread_name_prefix="healthz")
_lock = threading.Lock()
_running: dict[str, Future] = {}
_answer: tuple[float, dict[str, str]] | None = None


def ready() -> dict[str, str]:
    """Each part's state, "ok" or "down" ("in-process" for a broker there is not)."""
    global _answer
    with _lock:
        if _answer is not None and time.monotonic() - _answer[0] < settings.HEALTHZ_CACHE_SECONDS:
            return _answer[1]
        state = _check_all()
        _answer = (time.monotonic(), state)
        return state


def _check_all() -> dict[str, str]:
    seconds = settings.HEALTHZ_CHECK_TIMEOUT_SECONDS
    deadline = time.monotonic() + seconds
    checking: dict[str, Future] = {}
    for part, check in CHECKS.items():
        if part == "broker" and not settings.CELERY_BROKER_URL:
            continue
        running = _running.get(part)
        if running is None or running.done():
            running = _running[part] = _executor.submit(check)
        checking[part] = running

    state = {"broker": "in-process"}
    for part, running in checking.items():
        try:
            running.result(timeout=max(0.0, deadline - time.monotonic()))
        except Exception as error:  # any failure, or no answer in time, means "down"
            late = not running.done()
            cause = TimeoutError(f"no answer within {seconds} s") if late else error
            faults.report(logger, f"healthz: {part} is down", cause)
            state[part] = "down"
        else:
            state[part] = "ok"
    return {part: state[part] for part in CHECKS}
