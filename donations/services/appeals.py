"""Appeals: saving and deleting them, counting what readers do with them, the caches of both."""

from __future__ import annotations

from datetime import timedelta

from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from donations.models import Appeal, Placement

COUNTERS = ("impressions", "clicks", "checkouts_started")
COUNTER_SECONDS = 7 * 86_400


def _counter_key(appeal_id: int, counter: str) -> str:
    return f"donations:count:{counter}:{appeal_id}"


def appeal_count(*, appeal_id: int, counter: str) -> None:
    """Count one impression, click or checkout in the cache; the beat task adds it up."""
    if counter not in COUNTERS:
        raise ValueError(f"unknown counter {counter!r}")
    key = _counter_key(appeal_id, counter)
    # A week is many flushes (one a minute); the bound keeps stray keys from living forever.
    cache.add(key, 0, timeout=COUNTER_SECONDS)
    try:
        cache.incr(key)
    except ValueError:  # evicted between add() and incr()
        cache.set(key, 1, timeout=COUNTER_SECONDS)


def appeal_counters_flush() -> int:
    """Move the cached counters into the appeals' rows; return how many hits moved."""
    # One flush at a time: two overlapping ones would both subtract what they read.
    if not cache.add("donations:flush-lock", 1, timeout=55):
        return 0
    try:
        return _flush_counters()
    finally:
        cache.delete("donations:flush-lock")


def _flush_counters() -> int:
    recent = timezone.now() - timedelta(days=30)
    ids = Appeal.objects.filter(Q(ends_at__isnull=True) | Q(ends_at__gte=recent)).values_list(
        "pk", flat=True
    )
    keys = {_counter_key(pk, counter): (pk, counter) for pk in ids for counter in COUNTERS}
    moved = 0
    for key, value in cache.get_many(list(keys)).items():
        value = int(value or 0)
        if value <= 0:
            continue
        pk, counter = keys[key]
        # Take away only what we read: hits counted meanwhile stay for the next flush.
        cache.decr(key, value)
        try:
            Appeal.objects.filter(pk=pk).update(**{counter: F(counter) + value})
        except Exception:
            cache.incr(key, value)  # give the hits back rather than lose them
            raise
        moved += value
    return moved


def appeal_cache_clear() -> None:
    """Forget the cached lists of running appeals, and the cached pages showing them."""
    from newsroom.caching import content_changed

    cache.delete_many(
        [
            "donations:appeal-ids",
            *[f"donations:active:{placement}" for placement in Placement.values],
        ]
    )
    # Pages embed the chosen appeal; without this a changed appeal would show only
    # when the page cache expires (PAGE_CACHE_SECONDS).
    content_changed()


def _appeals_changed() -> None:
    # Now, so this request's redirect shows the change; and again after commit, so a list
    # or page another request cached from the old rows in between is dropped too.
    appeal_cache_clear()
    transaction.on_commit(appeal_cache_clear)


@transaction.atomic
def appeal_save(*, appeal: Appeal) -> Appeal:
    """Save an appeal (new or changed) and refresh the cached lists and pages showing appeals."""
    appeal.save()
    _appeals_changed()
    return appeal


@transaction.atomic
def appeal_delete(*, appeal: Appeal) -> None:
    """Delete an appeal; it leaves every cached list and page at once."""
    appeal.delete()
    _appeals_changed()
