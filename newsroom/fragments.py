"""Parts of public pages kept in this process for the content version they were rendered at.

A page-cache miss renders the page anew, but most of it (an article's header and footer,
each article card, a listing, the navigation) depends only on the content and the
page's language. Content changes only through the services that move the content
version (`newsroom.caching.content_changed`), and every part here is stored under the
version it was read at, so a part is never shown under a later version: an edit shows
on the next rendering, exactly as a cached page does. Nothing that varies by reader is
kept here: the appeal a reader is shown is chosen per request (only its rendering, the
same for every reader shown it, is kept), and the follow button is rendered each time.

A part is also dropped PAGE_FRAGMENT_SECONDS after it was rendered, so a change that
bypasses the services (an SQL update, the shell) shows within that, as it does on a
cached page within PAGE_CACHE_SECONDS. The store is bounded (MAX_ENTRIES parts and
MAX_CHARACTERS of them per process, the least recently used dropped first) and holds
one version at a time: the first request of a new version empties it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

from django.conf import settings
from django.db.models import Model
from django.http import HttpRequest
from django.utils import translation

from newsroom.caching import content_version

T = TypeVar("T")

MAX_ENTRIES = 5000
# 10 to 20 MB of text (Arabic and Hebrew take two bytes a character): 5,000 article
# cards at about 1.3 KB, or fewer parts when larger ones (listings, headers) are kept.
MAX_CHARACTERS = 10_000_000


class _Store:
    def __init__(self, *, max_entries: int, max_characters: int) -> None:
        self.max_entries = max_entries
        self.max_characters = max_characters
        self.version: str | None = None
        self.characters = 0
        # key -> (value, size, time.time() it expires at)
        self.entries: OrderedDict[Hashable, tuple[object, int, float]] = OrderedDict()
        # gthread workers render pages in threads: the dict and its size change together.
        self.lock = threading.Lock()

    def get(self, version: str, key: Hashable) -> tuple[bool, object]:
        with self.lock:
            if version != self.version:
                return False, None
            found = self.entries.get(key)
            if found is None:
                return False, None
            if found[2] <= time.time():
                del self.entries[key]
                self.characters -= found[1]
                return False, None
            self.entries.move_to_end(key)
            return True, found[0]

    def put(self, version: str, key: Hashable, value: object, size: int, seconds: int) -> None:
        if size > self.max_characters or seconds <= 0:
            return
        with self.lock:
            if version != self.version:
                # Versions are random, not ordered: the one seen last is taken as current.
                # A slow request of the previous version then costs re-renderings, never
                # a wrong part, because every read checks the version a part is stored at.
                self.version = version
                self.entries.clear()
                self.characters = 0
            old = self.entries.pop(key, None)
            if old is not None:
                self.characters -= old[1]
            self.entries[key] = (value, size, time.time() + seconds)
            self.characters += size
            while len(self.entries) > self.max_entries or self.characters > self.max_characters:
                _, (_, dropped, _) = self.entries.popitem(last=False)
                self.characters -= dropped

    def clear(self) -> None:
        with self.lock:
            self.version = None
            self.entries.clear()
            self.characters = 0


_store = _Store(max_entries=MAX_ENTRIES, max_characters=MAX_CHARACTERS)


def _size(value: object) -> int:
    """Characters `value` holds, near enough to bound the store (a model's: its fields')."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, Model):
        return len(repr(vars(value)))
    return len(repr(value))


def cached(request: HttpRequest | None, key: tuple, compute: Callable[[], T]) -> T:
    """`compute()`, kept for this page's content version and language under `key`.

    Outside the page cache (signed-in staff, who may preview drafts; pages of other
    apps) there is no version, and `compute()` runs every time.
    """
    version = content_version(request) if request is not None else None
    if version is None:
        return compute()
    full_key = (translation.get_language(), *key)
    found, value = _store.get(version, full_key)
    if found:
        return value  # type: ignore[return-value]
    value = compute()
    _store.put(version, full_key, value, _size(value), settings.PAGE_FRAGMENT_SECONDS)
    return value


def is_cached(request: HttpRequest | None, key: tuple) -> bool:
    """True when `key` is kept for this page's version and language."""
    version = content_version(request) if request is not None else None
    if version is None:
        return False
    return _store.get(version, (translation.get_language(), *key))[0]


def clear() -> None:
    """Forget every part (tests that change what a part depends on without a new version)."""
    _store.clear()
