"""Fixed-window rate limits in the cache (the cache framework, not the database).

Windows are short (minutes), so a reader sharing an address with a flood is let
through again when the window turns, not locked out for long.

When the cache cannot count (Redis down or hung), each caller says what happens:
`FAIL_OPEN` lets the request through (reading, following, signing up: nothing of value
is at stake, and refusing would take the site down with Redis); `FAIL_CLOSED` stops it
with `Unavailable`, a 503 with `Retry-After` (checkout, sign-in links: money and accounts).
"""

from __future__ import annotations

import logging
import time
from enum import Enum

from django.core.cache import DEFAULT_CACHE_ALIAS, caches

from newsroom import faults
from newsroom.redis_cache import CacheUnavailable, FailSoftRedisCache, strict

logger = logging.getLogger(__name__)

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_rate(rate: str) -> tuple[int, int]:
    """'10/10m' -> (10 hits, 600 seconds); '5/m' -> (5, 60)."""
    count, _, period = rate.partition("/")
    period = period.strip() or "m"
    unit = period[-1]
    amount = int(period[:-1] or 1)
    return int(count), amount * UNITS[unit]


class WhenCacheFails(Enum):
    FAIL_OPEN = "open"
    FAIL_CLOSED = "closed"


FAIL_OPEN = WhenCacheFails.FAIL_OPEN
FAIL_CLOSED = WhenCacheFails.FAIL_CLOSED


class Unavailable(faults.ServiceUnavailable):
    """A FAIL_CLOSED limit could not count: the request is refused with a 503."""


def _count(bucket: str, window: int) -> int:
    backend = caches[DEFAULT_CACHE_ALIAS]
    if isinstance(backend, FailSoftRedisCache):
        return backend.count_in_window(bucket, timeout=window)
    # Local memory (a laptop, tests): add() is atomic, the first hit creates the counter.
    counter = strict()
    counter.add(bucket, 0, timeout=window)
    try:
        return counter.incr(bucket)
    except ValueError:  # the counter expired between add() and incr()
        counter.set(bucket, 1, timeout=window)
        return 1


def allow(key: str, *, rate: str, when_cache_fails: WhenCacheFails) -> bool:
    """Count one hit for `key`; False once more than the rate's limit fell in this window.

    When the cache cannot count, FAIL_OPEN answers True and FAIL_CLOSED raises Unavailable.
    """
    limit, window = parse_rate(rate)
    bucket = f"ratelimit:{key}:{int(time.time() // window)}"
    try:
        count = _count(bucket, window)
    except CacheUnavailable as error:
        if when_cache_fails is FAIL_OPEN:
            return True
        faults.report(logger, "rate limit: refused while the cache is unavailable", error)
        raise Unavailable from error
    return count <= limit
