"""Planning a send: who is due, grouped by language and followed set into batches, each
batch queued once."""

from __future__ import annotations

import logging
from array import array
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import date as Date
from datetime import datetime, time, timedelta
from functools import partial
from itertools import islice
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.cache import cache
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from subscriptions.digest import ledger
from subscriptions.digest.compose import (
    edition_compose,
    edition_draft,
    group_key,
    languages_with_news,
    publishes_on,
)
from subscriptions.digest.esp import mixes_followed_sets
from subscriptions.digest.send import SENDING_STALE_AFTER
from subscriptions.models import (
    Delivery,
    DeliveryBatch,
    Edition,
    Follow,
    Newsletter,
    Subscriber,
    Subscription,
)
from subscriptions.selectors import suppressed_among

logger = logging.getLogger(__name__)

# Subscribers are read from the database this many at a time (memory stays flat).
STREAM_CHUNK = 2000
# Batches smaller than ESP_BATCH_SIZE (a followed set with few readers) are sent this
# many to a task, their ESP calls overlapping (edition_send_batches).
PACK_BATCHES = 16


@dataclass
class DryRun:
    edition: Edition
    recipients: int
    groups: int
    suppressed: int


@dataclass
class PlanResult:
    edition: Edition
    queued: int = 0
    suppressed: int = 0
    groups: set[str] = field(default_factory=set)
    batch_ids: list[int] = field(default_factory=list)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(settings.TIME_ZONE)


def _subscribers_of(newsletter: Newsletter):
    return Subscriber.objects.filter(
        subscriptions__newsletter=newsletter,
        subscriptions__status=Subscription.Status.ACTIVE,
        confirmed_at__isnull=False,
    )


def due_dates(*, newsletter: Newsletter, now: datetime) -> dict[Date, list[str]]:
    """Local dates whose send hour has come, each with the time zones living it now."""
    zones = _subscribers_of(newsletter).order_by().values_list("time_zone", flat=True).distinct()
    dates: dict[Date, list[str]] = defaultdict(list)
    for name in zones:
        local = now.astimezone(_zone(name))
        if local.hour >= newsletter.send_hour and publishes_on(newsletter, local.date()):
            dates[local.date()].append(name)
    return dict(dates)


@contextmanager
def _planner_lock(newsletter_id: int) -> Iterator[bool]:
    """One planner per newsletter at a time; another one skips it instead of waiting.

    On PostgreSQL a session advisory lock (released if the process dies with its
    connection). Correctness never rests on it: the unique delivery constraint does.
    """
    if db_connection.vendor != "postgresql":
        yield True
        return
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [0x64696765, newsletter_id])
        got = cursor.fetchone()[0]
    try:
        yield got
    finally:
        if got:
            with db_connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [0x64696765, newsletter_id])


def _editions_owed(
    *, now: datetime, newsletter_slug: str | None, send_now: bool, freeze: bool
) -> Iterator[tuple[Edition, list[str] | None]]:
    """Each edition owed now, with the time zones owed it (None: every zone).

    With `freeze` each edition is composed and stored, one planner per newsletter at a
    time; without it each is a draft, and nothing is written or locked (the dry run).
    """
    newsletters = Newsletter.objects.filter(active=True)
    if newsletter_slug:
        newsletters = newsletters.filter(slug=newsletter_slug)
    for newsletter in newsletters:
        with _planner_lock(newsletter.pk) if freeze else nullcontext(True) as got:
            if not got:
                logger.info("digest: another planner is on %s, skipping", newsletter.slug)
                continue
            if send_now:
                days: dict[Date, list[str] | None] = {timezone.localdate(now): None}
            else:
                days = dict(due_dates(newsletter=newsletter, now=now))
            for day, zones in sorted(days.items()):
                if not _anyone_owed(
                    newsletter=newsletter, date=day, zones=zones, now=now, latest=max(days)
                ):
                    continue
                compose = edition_compose if freeze else edition_draft
                yield compose(newsletter=newsletter, date=day, now=now), zones


def digest_plan(
    *,
    now: datetime | None = None,
    newsletter_slug: str | None = None,
    send_now: bool = False,
    enqueue: bool = True,
    batch_size: int | None = None,
) -> list[PlanResult]:
    """Queue every due subscriber of every active newsletter, once per edition.

    `send_now` ignores the send hour: everyone gets the edition of today's date in
    the newsroom's time zone (what `send_digest --now` does).
    """
    now = now or timezone.now()
    results: list[PlanResult] = []
    # closing(): a newsletter's planner lock is released even if planning it fails.
    with closing(
        _editions_owed(now=now, newsletter_slug=newsletter_slug, send_now=send_now, freeze=True)
    ) as owed:
        for edition, zones in owed:
            result = PlanResult(edition=edition)
            results.append(result)
            if edition.state in (Edition.State.SKIPPED, Edition.State.PAUSED):
                continue
            edition_plan(
                edition=edition,
                zones=zones,
                now=now,
                enqueue=enqueue,
                batch_size=batch_size or settings.ESP_BATCH_SIZE,
                result=result,
            )
    if enqueue:
        batches_requeue_stalled(now=now)
    return results


def digest_dry_run(
    *, now: datetime | None = None, newsletter_slug: str | None = None, send_now: bool = False
) -> list[DryRun]:
    """What digest_plan would do now, written nowhere: editions, readers, groups."""
    now = now or timezone.now()
    runs: list[DryRun] = []
    for edition, zones in _editions_owed(
        now=now, newsletter_slug=newsletter_slug, send_now=send_now, freeze=False
    ):
        run = DryRun(edition, 0, 0, 0)
        runs.append(run)
        if edition.state in (Edition.State.SKIPPED, Edition.State.PAUSED):
            continue
        groups: set[str] = set()
        planned = _planned_readers(edition)
        for chunk, suppressed, follows in _due_readers(edition=edition, zones=zones, now=now):
            run.suppressed += len(suppressed)
            for pk, email, language in chunk:
                if email not in suppressed and not _is_planned(planned, pk):
                    run.recipients += 1
                    groups.add(group_key([["l", language], *follows.get(pk, [])]))
        run.groups = len(groups)
    return runs


def _anyone_owed(
    *, newsletter: Newsletter, date: Date, zones: list[str] | None, now: datetime, latest: Date
) -> bool:
    """Whether to compose (or keep sending) the edition of `date` now.

    An existing edition keeps going. A new one is composed only for the latest date
    due, and only if someone is owed it: composing an older date (yesterday, in zones
    west of here, when the planner first runs) would take today's stories from today.
    """
    if Edition.objects.filter(newsletter=newsletter, date=date).exists():
        return True
    if date != latest:
        return False
    draft = Edition(newsletter=newsletter, date=date)
    return due_subscribers(edition=draft, zones=zones, now=now).exists()


def due_subscribers(*, edition: Edition, zones: list[str] | None, now: datetime):
    """The subscribers owed this edition: subscribed, confirmed, not paused, without a
    row of their own in it (suppressed when planned), and reading a language it has news
    in (nobody is sent an edition without stories). Those already in one of its batches
    are left out by the planner run (_run_start)."""
    subscribers = _subscribers_of(edition.newsletter).filter(
        Q(paused_until__isnull=True) | Q(paused_until__lte=now)
    )
    languages = languages_with_news(edition)
    if languages is not None:
        subscribers = subscribers.filter(language__in=languages)
    if edition.pk is not None:
        subscribers = subscribers.exclude(
            Exists(Delivery.objects.filter(edition=edition, subscriber=OuterRef("pk")))
        )
    if zones is not None:
        # Readers are owed the date's edition only if they had confirmed by its send
        # moment in their zone; whoever confirms later starts with the next morning's.
        owed = Q(pk__in=[])
        for name in zones:
            send_moment = datetime.combine(
                edition.date, time(edition.newsletter.send_hour), tzinfo=_zone(name)
            )
            owed |= Q(time_zone=name, confirmed_at__lte=send_moment)
        subscribers = subscribers.filter(owed)
    return subscribers


def _chunks(iterable: Iterable, size: int) -> Iterator[list]:
    iterator = iter(iterable)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _due_readers(
    *, edition: Edition, zones: list[str] | None, now: datetime
) -> Iterator[tuple[list[tuple[int, str, str]], set[str], dict[int, list[list]]]]:
    """The readers owed `edition`, a chunk at a time: their (id, email, language), the
    suppressed addresses among them, and each one's follows.

    Plain tuples: building model instances would be most of the planner's time.
    """
    subscribers = (
        due_subscribers(edition=edition, zones=zones, now=now)
        .order_by("pk")
        .values_list("pk", "email", "language")
        .iterator(chunk_size=STREAM_CHUNK)
    )
    for chunk in _chunks(subscribers, STREAM_CHUNK):
        suppressed = suppressed_among([email for _, email, _ in chunk])
        follows: dict[int, list[list]] = defaultdict(list)
        for subscriber_id, category_id, topic_id in (
            Follow.objects.filter(subscriber_id__any_of=[pk for pk, _, _ in chunk])
            .order_by("subscriber_id", "position", "id")
            .values_list("subscriber_id", "category_id", "topic_id")
        ):
            follows[subscriber_id].append(["c", category_id] if category_id else ["t", topic_id])
        yield chunk, suppressed, follows


class PlanSuperseded(Exception):
    """A newer planner run took this edition; this one stops without writing."""


def _run_start(edition: Edition) -> tuple[int, bytearray]:
    """Take the edition's next planner run; return it with the readers already in batches.

    The fence that keeps every reader in at most one batch of an edition: a run reads
    the readers already planned in the same transaction that makes it the edition's
    run, and writes each pack only while it is still that run (_run_fenced). A run
    that started later saw every pack committed before it; a pack after it is refused.
    """
    with transaction.atomic():
        run = (
            Edition.objects.select_for_update(no_key=True)
            .filter(pk=edition.pk)
            .values_list("plan_run", flat=True)
            .get()
            + 1
        )
        Edition.objects.filter(pk=edition.pk).update(plan_run=run)
        planned = _planned_readers(edition)
    return run, planned


def _planned_readers(edition: Edition) -> bytearray:
    """The readers in the edition's batches, a bit per subscriber id (125 KB for a
    million ids, where a set of them would take 60 MB)."""
    planned = bytearray()
    if edition.pk is None:
        return planned
    for readers in DeliveryBatch.objects.filter(edition=edition, size__gt=0).values_list(
        "readers", flat=True
    ):
        if readers:
            top = max(readers) >> 3
            if top >= len(planned):
                planned.extend(bytes(top + 1 - len(planned)))
            for pk in readers:
                planned[pk >> 3] |= 1 << (pk & 7)
    return planned


def _is_planned(planned: bytearray, pk: int) -> bool:
    return (pk >> 3) < len(planned) and bool(planned[pk >> 3] & (1 << (pk & 7)))


def _run_fenced(*, edition_id: int, run: int) -> None:
    """Inside a pack's transaction: hold the edition's row, and stop if the run is stale."""
    current = (
        Edition.objects.select_for_update(no_key=True)
        .filter(pk=edition_id)
        .values_list("plan_run", flat=True)
        .first()
    )
    if current != run:
        raise PlanSuperseded(f"planner run {run} of edition {edition_id} superseded by {current}")


def edition_plan(
    *,
    edition: Edition,
    zones: list[str] | None,
    now: datetime,
    enqueue: bool,
    batch_size: int,
    result: PlanResult,
) -> PlanResult:
    """Write batches of the due subscribers, grouped by language and followed set: each
    group's followed set starts with ["l", language] (compose.followed_set)."""
    run, planned = _run_start(edition)
    # Readers waiting for their group to fill a batch, as 8-byte ints (array "q"): with
    # many followed sets most readers wait until the end of the stream.
    pending: dict[str, tuple[list[list], array]] = {}
    keys: dict[tuple, str] = {}  # (language, followed set) -> group_key, hashed once
    try:
        for chunk, suppressed, follows in _due_readers(edition=edition, zones=zones, now=now):
            if suppressed:
                result.suppressed += _record_suppressed(
                    edition=edition,
                    subscriber_ids=[
                        pk
                        for pk, email, _ in chunk
                        if email in suppressed and not _is_planned(planned, pk)
                    ],
                )
            for pk, email, language in chunk:
                if email in suppressed or _is_planned(planned, pk):
                    continue
                followed = [["l", language], *follows.get(pk, [])]
                shape = tuple(kind + str(item) for kind, item in followed)
                key = keys.get(shape)
                if key is None:
                    key = keys[shape] = group_key(followed)
                _, ids = pending.setdefault(key, (followed, array("q")))
                ids.append(pk)
                if len(ids) >= batch_size:
                    _flush_pack(
                        edition=edition,
                        run=run,
                        batches=[[(key, followed, list(ids))]],
                        enqueue=enqueue,
                        result=result,
                    )
                    del pending[key]
        # What is left are groups smaller than a batch: with many distinct followed sets,
        # nearly every group.
        groups = [(key, followed, ids) for key, (followed, ids) in pending.items()]
        pending.clear()
        if mixes_followed_sets():
            # The ESP takes each reader's own message in one call: the small groups of a
            # language fill batches of batch_size together, each a full batch with its
            # own task (one ESP call, one row).
            for batches in _chunks(_mixed_batches(groups, batch_size), PACK_BATCHES):
                _flush_pack(
                    edition=edition,
                    run=run,
                    batches=batches,
                    enqueue=enqueue,
                    result=result,
                    packed=False,
                )
        else:
            # Otherwise each group is a batch, sent in packs of PACK_BATCHES batches: one
            # transaction and one task (edition_send_batches) per pack, each queued as
            # soon as it is written.
            for start in range(0, len(groups), PACK_BATCHES):
                _flush_pack(
                    edition=edition,
                    run=run,
                    batches=[
                        [(key, followed, list(ids))]
                        for key, followed, ids in groups[start : start + PACK_BATCHES]
                    ],
                    enqueue=enqueue,
                    result=result,
                )
    except PlanSuperseded as exc:
        logger.warning("digest: %s; it plans the rest", exc)
    return result


# A followed set's readers: (group key, followed set, subscriber ids).
Group = tuple[str, list[list], list[int]]


def _mixed_batches(
    groups: list[tuple[str, list[list], array]], batch_size: int
) -> Iterator[list[Group]]:
    """The small groups as batches of up to batch_size readers, one language each.

    A group that does not fit in what is left of a batch is split across two: every
    batch but a language's last is full.
    """
    by_language: dict[str, list[tuple[str, list[list], array]]] = defaultdict(list)
    for group in groups:
        by_language[group[1][0][1]].append(group)
    for language_groups in by_language.values():
        batch: list[Group] = []
        room = batch_size
        for key, followed, ids in language_groups:
            start = 0
            while start < len(ids):
                part = list(ids[start : start + room])
                batch.append((key, followed, part))
                start += len(part)
                room -= len(part)
                if not room:
                    yield batch
                    batch, room = [], batch_size
        if batch:
            yield batch


def _batch_row(edition: Edition, groups: list[Group]) -> DeliveryBatch:
    """A batch of one followed set, or of several (its `groups`) sharing one language."""
    ids = [pk for _, _, readers in groups for pk in readers]
    if len({key for key, _, _ in groups}) == 1:
        key, followed, _ = groups[0]
        return DeliveryBatch(
            edition=edition, group_key=key, followed=followed, readers=ids, size=len(ids)
        )
    return DeliveryBatch(
        edition=edition,
        group_key="",
        followed=groups[0][1][:1],  # [["l", language]]: what the ledger reads its language from
        groups=[list(group) for group in groups],
        readers=ids,
        size=len(ids),
    )


def _flush_pack(
    *,
    edition: Edition,
    run: int,
    batches: list[list[Group]],
    enqueue: bool,
    result: PlanResult,
    packed: bool = True,
) -> None:
    """Write `batches` (each its groups) in one transaction, and queue them: as one pack
    (edition_send_batches), or each as its own task when not `packed`.

    A full batch of one group is a pack of one, queued as its own batch's task. One
    transaction per pack, not per batch: with many small batches, commits cost the most.
    """
    with transaction.atomic():
        _commit_without_waiting_for_disk()
        _run_fenced(edition_id=edition.pk, run=run)
        rows = DeliveryBatch.objects.bulk_create(
            [_batch_row(edition, groups) for groups in batches]
        )
        Edition.objects.filter(
            pk=edition.pk, state__in=[Edition.State.COMPOSED, Edition.State.SENT]
        ).update(state=Edition.State.SENDING)
        written = [row.pk for row in rows]
        if enqueue:
            if packed:
                transaction.on_commit(partial(enqueue_batches, written))
            else:
                for batch_id in written:
                    transaction.on_commit(partial(enqueue_batch, batch_id))
    for row, groups in zip(rows, batches, strict=True):
        result.queued += row.size
        result.groups.update(key for key, _, _ in groups)
        result.batch_ids.append(row.pk)


def _record_suppressed(*, edition: Edition, subscriber_ids: list[int]) -> int:
    before = Delivery.objects.filter(edition=edition, subscriber_id__in=subscriber_ids).count()
    ledger.readers_set_apart(
        edition_id=edition.pk,
        fates={
            pk: ledger.Fate(Delivery.State.SUPPRESSED, None, error="On the suppression list.")
            for pk in subscriber_ids
        },
    )
    return (
        Delivery.objects.filter(edition=edition, subscriber_id__in=subscriber_ids).count() - before
    )


def _commit_without_waiting_for_disk() -> None:
    """Let this transaction's COMMIT return before its WAL reaches the disk.

    The planner commits often; waiting for the disk each time would be much of its
    time (bench/README.md, "The planner's profile").
    PostgreSQL's asynchronous commit ("Asynchronous Commit" in its manual) may lose the
    last fraction of a second of such commits in a server crash, never consistency.
    Lost here means readers not queued yet, whom the next planner run queues, and a
    task finding no batch; any batch a task has claimed is durable, since the claim's
    own synchronous COMMIT flushes all WAL before it.
    """
    if db_connection.vendor == "postgresql":
        with db_connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


# Staff's actions queue a batch through the outbox by this name (digest/staff.py).
SEND_BATCH_TASK = "subscriptions.digest_send_batch"


# The planner queues directly, not through the outbox: it runs in a worker (beat's task),
# never in a request, and a batch whose task a broker hiccup lost is given one again by
# batches_requeue_stalled; an outbox row per pack would double the planner's writes.
def enqueue_batch(batch_id: int) -> None:
    from subscriptions.digest.tasks import digest_send_batch_task

    digest_send_batch_task.delay(batch_id)


def enqueue_batches(batch_ids: list[int]) -> None:
    """One task for a pack of small batches (a pack of one is a batch's own task)."""
    if len(batch_ids) == 1:
        enqueue_batch(batch_ids[0])
        return
    from subscriptions.digest.tasks import digest_send_batches_task

    digest_send_batches_task.delay(batch_ids)


# A batch nobody has touched for this long lost its task (the broker was down when it
# was enqueued, or lost its queue); longer than the last retry's back-off (~16 min).
STALLED_AFTER = timedelta(minutes=30)


def batches_requeue_stalled(*, now: datetime) -> list[int]:
    """Give a task again to batches whose task was lost; return their ids.

    Safe to overdo: a second task for a batch finds it sent (nothing to do) or being
    sent by another task (left alone). A batch left "sending" by a dead worker whose
    task is gone is then found stale and reported in doubt.
    """
    stalled = list(
        DeliveryBatch.objects.filter(
            Q(state=DeliveryBatch.State.QUEUED)
            & (
                Q(started_at__lt=now - STALLED_AFTER)
                | Q(started_at__isnull=True, created_at__lt=now - STALLED_AFTER)
            )
            | Q(state=DeliveryBatch.State.SENDING, started_at__lt=now - SENDING_STALE_AFTER)
        )
        .exclude(edition__state=Edition.State.PAUSED)
        .values_list("pk", flat=True)[:1000]
    )
    requeued = []
    for batch_id in stalled:
        # Once per STALLED_AFTER per batch, however often the planner runs.
        if cache.add(f"digest:requeued:{batch_id}", 1, timeout=int(STALLED_AFTER.total_seconds())):
            enqueue_batch(batch_id)
            requeued.append(batch_id)
    if requeued:
        logger.warning("digest: %s stalled batch(es) given a task again", len(requeued))
    return requeued
