"""Fixed-window rate limits on the cache (STYLE.md 8: the cache framework for rate limits)."""

from __future__ import annotations

import time

from django.core.cache import cache


def allow(key: str, *, limit: int, window: int) -> bool:
    """Count one hit for `key`; False once more than `limit` hits fell in this window."""
    bucket = f"ratelimit:{key}:{int(time.time() // window)}"
    # add() is atomic on Redis and locmem: the first hit of a window creates the counter.
    cache.add(bucket, 0, timeout=window)
    try:
        count = cache.incr(bucket)
    except ValueError:  # the counter expired between add() and incr()
        cache.set(bucket, 1, timeout=window)
        count = 1
    return count <= limit
