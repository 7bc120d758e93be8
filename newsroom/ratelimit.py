"""Fixed-window rate limits in the cache (the cache framework, not the database).

Windows are short (minutes), so a reader sharing an address with a flood is let
through again when the window turns, not locked out for long.
"""

from __future__ import annotations

import time

from django.core.cache import cache

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_rate(rate: str) -> tuple[int, int]:
    """'10/10m' -> (10 hits, 600 seconds); '5/m' -> (5, 60)."""
    count, _, period = rate.partition("/")
    period = period.strip() or "m"
    unit = period[-1]
    amount = int(period[:-1] or 1)
    return int(count), amount * UNITS[unit]


def allow(key: str, *, rate: str) -> bool:
    """Count one hit for `key`; False once more than the rate's limit fell in this window."""
    limit, window = parse_rate(rate)
    bucket = f"ratelimit:{key}:{int(time.time() // window)}"
    # add() is atomic on Redis and locmem: the first hit of a window creates the counter.
    cache.add(bucket, 0, timeout=window)
    try:
        count = cache.incr(bucket)
    except ValueError:  # the counter expired between add() and incr()
        cache.set(bucket, 1, timeout=window)
        count = 1
    return count <= limit
