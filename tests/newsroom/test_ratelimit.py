"""The one rate limiter: fixed windows counted in the cache."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from newsroom import ratelimit


def allow(key: str) -> bool:
    return ratelimit.allow(key, rate="2/m", when_cache_fails=ratelimit.FAIL_CLOSED)


def test_rates_read_as_hits_per_period():
    assert ratelimit.parse_rate("10/10m") == (10, 600)
    assert ratelimit.parse_rate("5/m") == (5, 60)
    assert ratelimit.parse_rate("100/d") == (100, 86_400)


def test_a_key_is_refused_past_its_limit_and_let_through_when_the_window_turns():
    start = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as clock:
        assert [allow("k") for _ in range(3)] == [True, True, False]
        assert allow("another") is True
        clock.move_to(start + timedelta(minutes=1))
        assert allow("k") is True


def test_on_redis_a_key_is_refused_past_its_limit(redis_cache_proxy):
    key = f"k-{time.time_ns()}"

    assert [allow(key) for _ in range(3)] == [True, True, False]
    assert allow(f"{key}-another") is True


def test_on_redis_a_closed_limit_refuses_while_redis_is_down(redis_cache_proxy):
    redis_cache_proxy.mode = "refuse"

    with pytest.raises(ratelimit.Unavailable):
        allow(f"k-{time.time_ns()}")
    assert ratelimit.allow("open", rate="2/m", when_cache_fails=ratelimit.FAIL_OPEN) is True
