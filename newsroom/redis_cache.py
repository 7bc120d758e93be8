"""The Redis cache as an accelerator: while Redis fails, reads miss and writes do nothing.

Every public page reads the cache (the page cache, appeal slots, the consent wording),
and each has the database to fall back on; a Redis that refuses, hangs or resets must
make pages slower, not fail them. So `FailSoftRedisCache` answers a failed read with
the default and drops a failed write, logs the failure through `newsroom.faults` (one
line a minute), and then leaves Redis alone for `pause_after_error` seconds: a hung
Redis costs one socket timeout per process per pause, not one per cache call.

A caller that must know whether the cache answered (a rate limit guarding money or
accounts) asks `strict()`, the same cache raising `CacheUnavailable` instead.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.utils.functional import cached_property
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from newsroom import faults

logger = logging.getLogger(__name__)

# Until when each Redis (by its URLs) is left alone after an error; shared by the
# process's threads, each of which has its own backend instance.
_paused_until: dict[tuple[str, ...], float] = {}


class CacheUnavailable(Exception):
    """The cache did not answer (refused, timed out, reset) or is paused after doing so."""


class _KeptClientRedisCacheClient(RedisCacheClient):
    """Django's Redis cache client, keeping one `redis.Redis` per connection pool.

    Django builds a new `redis.Redis` on every cache call, and its constructor fills a
    table of about 170 reply callbacks each time; the object holds no connection of its
    own (the pool does), so one per pool serves every call.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)
        # Keyed by the pool's id: the pools live as long as this object, in self._pools.
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class FailSoftRedisCache(RedisCache):
    """Django's RedisCache whose reads return the default and writes do nothing on failure.

    OPTIONS takes `pause_after_error` (seconds, default 1) besides redis-py's connection
    options; `retry` defaults to a single try, since redis-py's own retries (with backoff,
    in some releases) multiply every timeout and hold the request meanwhile.
    """

    def __init__(self, server: str | list[str], params: dict[str, Any]) -> None:
        options = dict(params.get("OPTIONS", {}))
        self.pause_after_error = float(options.pop("pause_after_error", 1.0))
        options.setdefault("retry", Retry(NoBackoff(), 0))
        super().__init__(server, {**params, "OPTIONS": options})
        self._class = _KeptClientRedisCacheClient
        self._redis = tuple(self._servers)

    def _call(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        """RedisCache's `operation`; CacheUnavailable when Redis fails or is paused."""
        return self._guarded(getattr(super(), operation), *args, **kwargs)

    def count_in_window(self, key: str, *, timeout: int) -> int:
        """Add one to the counter `key`, made at 0 for `timeout` seconds when missing.

        One round trip (SET NX EX and INCR in one MULTI), where add() and incr() take
        three; CacheUnavailable when Redis fails or is paused.
        """

        def count() -> int:
            redis_key = self.make_and_validate_key(key)
            with self._cache.get_client(redis_key, write=True).pipeline() as pipe:
                pipe.set(redis_key, 0, nx=True, ex=timeout)
                pipe.incr(redis_key)
                return pipe.execute()[1]

        return self._guarded(count)

    def _guarded(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        if time.monotonic() < _paused_until.get(self._redis, 0.0):
            raise CacheUnavailable("Redis is left alone for a moment after an error")
        try:
            return function(*args, **kwargs)
        except RedisError as error:
            _paused_until[self._redis] = time.monotonic() + self.pause_after_error
            faults.report(logger, "cache: Redis failed", error)
            raise CacheUnavailable(faults.one_line(error)) from error

    def _soft(self, fallback: Any, operation: str, *args: Any) -> Any:
        try:
            return self._call(operation, *args)
        except CacheUnavailable:
            return fallback

    @cached_property
    def strict(self) -> _Strict:
        return _Strict(self)

    def get(self, key, default=None, version=None):
        return self._soft(default, "get", key, default, version)

    def get_many(self, keys, version=None):
        return self._soft({}, "get_many", keys, version)

    def has_key(self, key, version=None):
        return self._soft(False, "has_key", key, version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        self._soft(None, "set", key, value, timeout, version)

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        # False: "not added", so a lock taken with add() is simply not taken.
        return self._soft(False, "add", key, value, timeout, version)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        # Django's contract: the keys that were not stored.
        return self._soft(list(data), "set_many", data, timeout, version)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._soft(False, "touch", key, timeout, version)

    def delete(self, key, version=None):
        return self._soft(False, "delete", key, version)

    def delete_many(self, keys, version=None):
        self._soft(None, "delete_many", keys, version)

    def clear(self):
        return self._soft(False, "clear")

    def incr(self, key, delta=1, version=None):
        # As for a missing key (decr() comes here too): every counter's caller handles it.
        try:
            return self._call("incr", key, delta, version)
        except CacheUnavailable:
            raise ValueError(f"Key {key!r} not found: the cache is unavailable.") from None


class _Strict:
    """A FailSoftRedisCache's operations raising CacheUnavailable instead of shrugging."""

    def __init__(self, backend: FailSoftRedisCache) -> None:
        self._backend = backend

    def __getattr__(self, operation: str) -> Any:
        return functools.partial(self._backend._call, operation)


def strict(alias: str = DEFAULT_CACHE_ALIAS) -> BaseCache | _Strict:
    """The cache `alias`, raising CacheUnavailable when it cannot answer.

    Other backends (local memory on a laptop and in tests) have no such failure.
    """
    backend = caches[alias]
    return backend.strict if isinstance(backend, FailSoftRedisCache) else backend
