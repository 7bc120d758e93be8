"""The daily digest: compose an edition, plan who is due, send each batch exactly once.

The flow, and where each guarantee comes from:

* `edition_compose` freezes an edition's article ids once per newsletter and date
  (UniqueConstraint "edition_once_per_day").
* `digest_plan` (the beat task, every five minutes) finds the subscribers whose local
  clock has reached the newsletter's send hour, streams them, groups them by the set of
  categories and topics they follow, and writes one `Delivery` per (edition, subscriber)
  under the UniqueConstraint "delivery_once_per_edition" into ESP-sized `DeliveryBatch`es.
  A row already written by an earlier or a concurrent planner is never claimed twice.
* `edition_send_batch` (one Celery task per batch) locks the batch, runs the suppression
  check, marks the batch "sending" and COMMITS before calling the ESP, then records the
  ESP's message ids. A task redelivered after its worker died during the ESP call finds
  the batch still "sending" and marks it "in doubt" for staff instead of sending again.
* Rendering happens once per (edition, followed set, appeal); what differs per reader
  (greeting, preference and unsubscribe links) travels as merge fields.

An edition belongs to a local date and is frozen when the first time zone reaches the
send hour on that date; readers further west get the same contents hours later, and
what was published meanwhile opens the next day's edition (nothing is lost or repeated).
"""

from __future__ import annotations

import hashlib
import json
import logging
import smtplib
import uuid
from array import array
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date as Date
from datetime import datetime, time, timedelta
from email.utils import make_msgid
from functools import partial
from itertools import islice
from time import monotonic
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import css_inline
from anymail.backends.base import AnymailBaseBackend
from anymail.exceptions import (
    AnymailError,
    AnymailInvalidAddress,
    AnymailRecipientsRefused,
    AnymailUnsupportedFeature,
)
from django.conf import settings
from django.core.cache import cache
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.html import escape, strip_tags

from newsroom.models import Article, Category, Topic
from subscriptions import tokens
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

RTL_LANGUAGES = {"ar", "he", "fa", "ur"}
# Subscribers are read from the database this many at a time (memory stays flat).
STREAM_CHUNK = 2000
# Batches smaller than ESP_BATCH_SIZE (a followed set with few readers) are sent this
# many to a task, their ESP calls overlapping (edition_send_batches).
PACK_BATCHES = 16
# A batch found "sending" for longer than this belongs to a dead worker: the task's
# hard time limit (digest_tasks.SEND_TIME_LIMIT) has long killed any live one.
SENDING_STALE_AFTER = timedelta(minutes=15)
# Per-recipient values; every other byte of an email is shared by its whole group.
MERGE_FIELDS = ("greeting", "greeting_html", "preferences_url", "unsubscribe_url")
# anymail's per-recipient statuses that mean "the ESP will not deliver this one".
REFUSED_STATUSES = {"rejected", "invalid", "failed"}


class BatchSendError(Exception):
    """The ESP (or SMTP server) failed for a batch; the batch is queued again for a retry."""


# --- composing ----------------------------------------------------------------


def compose_contents(
    *, newsletter: Newsletter, cutoff_start: datetime | None, cutoff_end: datetime
) -> dict:
    """The article ids an edition freezes: top stories, then per category and per topic.

    Only articles published in (cutoff_start, cutoff_end] are new. Top stories are
    ranked by `top_story_rank` (1 first), then recency; sections never repeat them.
    """
    new = Article.objects.published(now=cutoff_end)
    if cutoff_start is not None:
        new = new.filter(published_at__gt=cutoff_start)
    top = list(
        new.order_by(F("top_story_rank").asc(nulls_last=True), "-published_at", "-id").values_list(
            "id", flat=True
        )[: newsletter.top_stories_count]
    )
    rest = list(
        new.exclude(pk__in=top).order_by("-published_at", "-id").values_list("id", "category_id")
    )
    cap = newsletter.section_cap
    categories: dict[str, list[int]] = {}
    for article_id, category_id in rest:
        section = categories.setdefault(str(category_id), [])
        if len(section) < cap:
            section.append(article_id)
    recency = {article_id: index for index, (article_id, _) in enumerate(rest)}
    topic_rows = sorted(
        Article.topics.through.objects.filter(article_id__in=list(recency)).values_list(
            "article_id", "topic_id"
        ),
        key=lambda row: recency[row[0]],
    )
    topics: dict[str, list[int]] = {}
    for article_id, topic_id in topic_rows:
        section = topics.setdefault(str(topic_id), [])
        if len(section) < cap:
            section.append(article_id)
    return {"top": top, "categories": categories, "topics": topics}


def _lookback(newsletter: Newsletter) -> timedelta:
    return (
        timedelta(days=7) if newsletter.cadence == Newsletter.Cadence.WEEKLY else timedelta(days=1)
    )


def publishes_on(newsletter: Newsletter, day: Date) -> bool:
    """Whether the newsletter's cadence has an edition on this (local) date."""
    if newsletter.cadence == Newsletter.Cadence.WEEKDAYS:
        return day.weekday() < 5
    if newsletter.cadence == Newsletter.Cadence.WEEKLY:
        return day.weekday() == 0  # Mondays: the week's reporting, read at the desk.
    return True


def edition_compose(*, newsletter: Newsletter, date: Date, now: datetime | None = None) -> Edition:
    """Return the newsletter's edition for `date`, composing and freezing it the first time.

    Articles are new when published after the previous edition's cutoff. With nothing
    new the edition is stored as skipped, with the reason staff see in the admin.
    """
    existing = Edition.objects.filter(newsletter=newsletter, date=date).first()
    if existing is not None:
        return existing
    now = now or timezone.now()
    previous = (
        Edition.objects.filter(newsletter=newsletter, date__lt=date).order_by("-date").first()
    )
    cutoff_start = previous.cutoff_end if previous else now - _lookback(newsletter)
    contents = compose_contents(newsletter=newsletter, cutoff_start=cutoff_start, cutoff_end=now)
    defaults: dict = {"cutoff_start": cutoff_start, "cutoff_end": now, "contents": contents}
    if not contents["top"]:
        defaults["state"] = Edition.State.SKIPPED
        defaults["skip_reason"] = (
            f"Nothing was published between {timezone.localtime(cutoff_start):%Y-%m-%d %H:%M} "
            f"and {timezone.localtime(now):%Y-%m-%d %H:%M} ({settings.TIME_ZONE}), "
            "so this edition was not sent."
        )
    # A concurrent planner composing the same day loses the race on the unique
    # constraint; get_or_create then returns the winner's edition.
    edition, _ = Edition.objects.get_or_create(newsletter=newsletter, date=date, defaults=defaults)
    return edition


# --- reading an edition -----------------------------------------------------------


@dataclass(frozen=True)
class Section:
    title: str
    url: str
    articles: list[Article]


@dataclass(frozen=True)
class EditionView:
    edition: Edition
    top: list[Article]
    sections: list[Section]


def followed_set(follows: Iterable[Follow]) -> list[list]:
    """A reader's follows as [["c", id] | ["t", id], ...] in the order they chose them."""
    return [["c", f.category_id] if f.category_id else ["t", f.topic_id] for f in follows]


def group_key(followed: list[list]) -> str:
    return hashlib.sha256(json.dumps(followed, separators=(",", ":")).encode()).hexdigest()


def edition_view(
    *, edition: Edition, followed: list[list] | None, shared: bool = False
) -> EditionView:
    """Top stories and the sections a reader with `followed` gets (None: every section).

    A reader who follows nothing gets the latest per category. An article shown once is
    not shown again further down (a story can be in a category and a topic both), and
    an article unpublished since composing is left out (within a minute when `shared`:
    the emails of a send read the edition's articles once, see _edition_parts).
    """
    contents = edition.contents or {}
    by_category = contents.get("categories", {})
    by_topic = contents.get("topics", {})
    articles, categories, topics = _edition_parts(edition, shared=shared)

    if followed:
        wanted = [(kind, str(pk)) for kind, pk in followed]
    else:
        wanted = [("c", key) for key in by_category]
        if followed is None:
            wanted += [("t", key) for key in by_topic]
    if not followed:
        # The categories' own order (Category.order), then topics by name.
        wanted.sort(
            key=lambda item: (
                (0, categories[int(item[1])].order, categories[int(item[1])].name)
                if item[0] == "c" and int(item[1]) in categories
                else (1, 0, topics[int(item[1])].name if int(item[1]) in topics else "")
            )
        )

    shown: set[int] = set()
    top = [articles[pk] for pk in contents.get("top", []) if pk in articles]
    shown.update(a.pk for a in top)
    sections: list[Section] = []
    for kind, key in wanted:
        owner = categories.get(int(key)) if kind == "c" else topics.get(int(key))
        source = by_category if kind == "c" else by_topic
        if owner is None or key not in source:
            continue
        picked = [articles[pk] for pk in source[key] if pk in articles and pk not in shown]
        if not picked:
            continue
        shown.update(a.pk for a in picked)
        sections.append(
            Section(title=owner.name, url=_absolute(owner.get_absolute_url()), articles=picked)
        )
    return EditionView(edition=edition, top=top, sections=sections)


# An edition's articles, categories and topics by id, read once and shared by every
# followed set a worker renders: with 5,000 distinct sets, reading them per set took
# three quarters of each set's rendering (bench/README.md, "The digest"). Kept a
# minute, so an article unpublished during a send drops out of later renders.
_PARTS: OrderedDict[tuple, tuple[float, tuple[dict, dict, dict]]] = OrderedDict()
_PARTS_MAX = 8
PARTS_TTL_SECONDS = 60.0


def _edition_parts(edition: Edition, *, shared: bool) -> tuple[dict, dict, dict]:
    """(articles, categories, topics) by id for everything the edition's contents name."""
    key = (
        edition.pk,
        edition.composed_at.isoformat() if edition.composed_at else "",
        settings.SITE_URL,
    )
    now = monotonic()
    shared = shared and edition.pk is not None
    if shared:
        cached = _PARTS.get(key)
        if cached is not None and now - cached[0] < PARTS_TTL_SECONDS:
            _PARTS.move_to_end(key)
            return cached[1]
    contents = edition.contents or {}
    ids = set(contents.get("top", []))
    for section_ids in [
        *contents.get("categories", {}).values(),
        *contents.get("topics", {}).values(),
    ]:
        ids.update(section_ids)
    articles = Article.objects.published().select_related("category").in_bulk(list(ids))
    for article in articles.values():
        # Emails need absolute links; the templates read these two.
        article.absolute_url = _absolute(article.get_absolute_url())
        article.image_url = _absolute(article.lead_photo.url) if article.lead_photo else ""
    categories = Category.objects.in_bulk([int(k) for k in contents.get("categories", {})])
    topics = Topic.objects.in_bulk([int(k) for k in contents.get("topics", {})])
    parts = (articles, categories, topics)
    if shared:
        _PARTS[key] = (now, parts)
        while len(_PARTS) > _PARTS_MAX:
            _PARTS.popitem(last=False)
    return parts


# --- rendering ------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def merge_field(name: str) -> str:
    """How the ESP spells merge field `name` (settings.ESP_MERGE_FIELD_FORMAT)."""
    return settings.ESP_MERGE_FIELD_FORMAT.replace("FIELD", name)


def _absolute(url: str) -> str:
    return url if url.startswith(("http://", "https://")) else settings.SITE_URL + url


def web_version_url(edition: Edition) -> str:
    return _absolute(edition.get_absolute_url())


def edition_subject(view: EditionView) -> str:
    edition = view.edition
    lead = view.top[0].headline if view.top else ""
    day = f"{edition.date.day} {edition.date:%B %Y}"
    return (
        f"{edition.newsletter.name}, {day}: {lead}" if lead else f"{edition.newsletter.name}, {day}"
    )


# Rendered emails by (edition, its compose time, followed set, appeal, settings that
# change the bytes). A worker keeps the last few hundred: one per distinct content.
_RENDERS: OrderedDict[tuple, RenderedEmail] = OrderedDict()
_RENDERS_MAX = 256
_INLINER = css_inline.CSSInliner(load_remote_stylesheets=False)


def render_edition_email(*, edition: Edition, followed: list[list], appeal=None) -> RenderedEmail:
    """Render the email a group gets, with merge fields where each reader differs."""
    key = (
        edition.pk,
        edition.composed_at.isoformat() if edition.composed_at else "",
        json.dumps(followed),
        getattr(appeal, "pk", None) if appeal is not None else None,
        str(getattr(appeal, "updated_at", "")),  # an appeal edited mid-send renders anew
        settings.ESP_MERGE_FIELD_FORMAT,
        settings.SITE_URL,
    )
    if edition.pk is None or (appeal is not None and getattr(appeal, "pk", None) is None):
        # A draft (send_digest --dry-run / --to) or an appeal we cannot name: not shared.
        return _render(edition=edition, followed=followed, appeal=appeal)
    cached = _RENDERS.get(key)
    if cached is not None:
        _RENDERS.move_to_end(key)
        return cached
    rendered = _render(edition=edition, followed=followed, appeal=appeal)
    _RENDERS[key] = rendered
    while len(_RENDERS) > _RENDERS_MAX:
        _RENDERS.popitem(last=False)
    return rendered


def _render(*, edition: Edition, followed: list[list], appeal) -> RenderedEmail:
    newsletter = edition.newsletter
    view = edition_view(edition=edition, followed=followed, shared=True)
    appeal_html = ""
    if appeal is not None:
        appeal_html = render_to_string(
            "donations/emails/newsletter_appeal.html", {"appeal": appeal}
        )
    context = {
        "newsletter": newsletter,
        "edition": edition,
        "view": view,
        "top": view.top,
        "sections": view.sections,
        "follows_nothing": not followed,
        "merge": {name: merge_field(name) for name in MERGE_FIELDS},
        "appeal_html": appeal_html,
        "appeal_text": " ".join(strip_tags(appeal_html).split()),
        "web_url": web_version_url(edition),
        "SITE_URL": settings.SITE_URL,
        "NEWSROOM_NAME": settings.NEWSROOM_NAME,
        "ORG_ADDRESS": settings.ORG_ADDRESS,
        "lang": newsletter.language,
        "dir": "rtl" if newsletter.language in RTL_LANGUAGES else "ltr",
        "subject": edition_subject(view),
    }
    with translation.override(newsletter.language):
        html = render_to_string("subscriptions/digest/email.html", context)
        text = render_to_string("subscriptions/digest/email.txt", context)
    # Mail clients (Gmail, Outlook) drop <style>; every rule must sit on its element.
    html = _INLINER.inline(html)
    return RenderedEmail(subject=context["subject"], text=text, html=html)


def recipient_values(
    *, subscriber: Subscriber, newsletter: Newsletter, headers: dict[str, str] | None = None
) -> dict[str, str]:
    """The merge values of one reader: everything in the email that is theirs alone.

    Given the reader's List-Unsubscribe headers, the link is taken from them (RFC 2369
    §3.2: a list of <URI>s, ours first) instead of signing a second token.
    """
    greeting = f"Good morning, {subscriber.name}" if subscriber.name else "Good morning"
    unsubscribe = ""
    if headers:
        first = headers.get("List-Unsubscribe", "").split(",", 1)[0].strip()
        if first.startswith("<http") and first.endswith(">"):
            unsubscribe = first[1:-1]
    return {
        "greeting": greeting,
        "greeting_html": escape(greeting),
        "preferences_url": tokens.preferences_url(subscriber=subscriber),
        "unsubscribe_url": unsubscribe
        or tokens.unsubscribe_url(subscriber=subscriber, newsletter=newsletter),
    }


def reader_headers(*, subscriber: Subscriber, newsletter: Newsletter) -> dict[str, str]:
    return tokens.list_unsubscribe_headers(subscriber=subscriber, newsletter=newsletter)


def substitute(content: str, values: dict[str, str]) -> str:
    """Fill merge fields ourselves, for backends that send one message per recipient."""
    for name, value in values.items():
        content = content.replace(merge_field(name), value)
    return content


def personal_copy(*, rendered: RenderedEmail, values: dict[str, str]) -> RenderedEmail:
    return RenderedEmail(
        subject=substitute(rendered.subject, values),
        text=substitute(rendered.text, {k: v for k, v in values.items() if k != "greeting_html"}),
        html=substitute(rendered.html, values),
    )


def _appeals_running() -> bool:
    """Whether any newsletter appeal runs now; if none, no reader is asked for one."""
    try:
        from donations.models import Placement
        from donations.selectors import active_appeals

        return bool(active_appeals(Placement.NEWSLETTER))
    except Exception:
        logger.exception("digest: no appeals, the donations app failed to list them")
        return False


def _appeal_for(email: str):
    """The donations app's appeal for this reader, or None.

    The appeal is the one optional part of the email: if the donations app cannot
    answer, the news still goes out (without an appeal) and the error is logged.
    Called outside any transaction, so a failed query poisons nothing.
    """
    from donations.selectors import appeal_for_newsletter

    try:
        return appeal_for_newsletter(email=email)
    except Exception:
        logger.exception("digest: no appeal, the donations app failed to choose one")
        return None


# --- planning -------------------------------------------------------------------


def edition_draft(*, newsletter: Newsletter, date: Date, now: datetime) -> Edition:
    """The stored edition for `date`, or an unsaved one composed as it would be now.

    Previews (send_digest --dry-run / --to) use it so that looking never freezes an
    edition before its send hour.
    """
    existing = Edition.objects.filter(newsletter=newsletter, date=date).first()
    if existing is not None:
        return existing
    previous = (
        Edition.objects.filter(newsletter=newsletter, date__lt=date).order_by("-date").first()
    )
    cutoff_start = previous.cutoff_end if previous else now - _lookback(newsletter)
    contents = compose_contents(newsletter=newsletter, cutoff_start=cutoff_start, cutoff_end=now)
    return Edition(
        newsletter=newsletter,
        date=date,
        cutoff_start=cutoff_start,
        cutoff_end=now,
        contents=contents,
        state=Edition.State.COMPOSED if contents["top"] else Edition.State.SKIPPED,
        skip_reason=""
        if contents["top"]
        else "Nothing new has been published since the last edition.",
    )


@dataclass
class DryRun:
    edition: Edition
    recipients: int
    groups: int
    suppressed: int


def digest_dry_run(
    *, now: datetime | None = None, newsletter_slug: str | None = None, send_now: bool = False
) -> list[DryRun]:
    """What digest_plan would do now, written nowhere: editions, readers, groups."""
    now = now or timezone.now()
    newsletters = Newsletter.objects.filter(active=True)
    if newsletter_slug:
        newsletters = newsletters.filter(slug=newsletter_slug)
    runs: list[DryRun] = []
    for newsletter in newsletters:
        if send_now:
            plan: dict[Date, list[str] | None] = {timezone.localdate(now): None}
        else:
            plan = dict(due_dates(newsletter=newsletter, now=now))
        for day, zones in sorted(plan.items()):
            if not _anyone_owed(
                newsletter=newsletter, date=day, zones=zones, now=now, latest=max(plan)
            ):
                continue
            edition = edition_draft(newsletter=newsletter, date=day, now=now)
            if edition.state in (Edition.State.SKIPPED, Edition.State.PAUSED):
                runs.append(DryRun(edition, 0, 0, 0))
                continue
            subscribers = (
                due_subscribers(edition=edition, zones=zones, now=now)
                .order_by("pk")
                .only("pk", "email")
                .prefetch_related(
                    Prefetch("follows", queryset=Follow.objects.order_by("position", "id"))
                )
            )
            recipients = suppressed = 0
            groups: set[str] = set()
            for chunk in _chunks(subscribers.iterator(chunk_size=STREAM_CHUNK), STREAM_CHUNK):
                blocked = suppressed_among([s.email for s in chunk])
                suppressed += len(blocked)
                for subscriber in chunk:
                    if subscriber.email not in blocked:
                        recipients += 1
                        groups.add(group_key(followed_set(subscriber.follows.all())))
            runs.append(DryRun(edition, recipients, len(groups), suppressed))
    return runs


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
    newsletters = Newsletter.objects.filter(active=True)
    if newsletter_slug:
        newsletters = newsletters.filter(slug=newsletter_slug)
    results: list[PlanResult] = []
    for newsletter in newsletters:
        with _planner_lock(newsletter.pk) as got:
            if not got:
                logger.info("digest: another planner is on %s, skipping", newsletter.slug)
                continue
            if send_now:
                plan: dict[Date | None, list[str] | None] = {timezone.localdate(now): None}
            else:
                plan = dict(due_dates(newsletter=newsletter, now=now))
            for day, zones in sorted(plan.items()):
                if not _anyone_owed(
                    newsletter=newsletter, date=day, zones=zones, now=now, latest=max(plan)
                ):
                    continue
                edition = edition_compose(newsletter=newsletter, date=day, now=now)
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
    """The subscribers owed this edition: subscribed, confirmed, not paused, not yet queued."""
    subscribers = _subscribers_of(edition.newsletter).filter(
        Q(paused_until__isnull=True) | Q(paused_until__lte=now)
    )
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


def edition_plan(
    *,
    edition: Edition,
    zones: list[str] | None,
    now: datetime,
    enqueue: bool,
    batch_size: int,
    result: PlanResult,
) -> PlanResult:
    """Write deliveries for the due subscribers, grouped by followed set, in batches.

    Plain tuples, not model instances: at 100,000 readers building instances took
    most of the planner's time (bench/README.md).
    """
    subscribers = (
        due_subscribers(edition=edition, zones=zones, now=now)
        .order_by("pk")
        .values_list("pk", "email")
        .iterator(chunk_size=STREAM_CHUNK)
    )
    # Readers waiting for their group to fill a batch, as 8-byte ints (array "q"): with
    # 5,000 followed sets no group fills one, and at 1,000,000 readers lists of Python
    # ints held 36 bytes a reader until the end.
    pending: dict[str, tuple[list[list], array]] = {}
    keys: dict[tuple, str] = {}  # followed set -> group_key, hashed once per set
    for chunk in _chunks(subscribers, STREAM_CHUNK):
        suppressed = suppressed_among([email for _, email in chunk])
        if suppressed:
            result.suppressed += _record_suppressed(
                edition=edition, subscriber_ids=[pk for pk, email in chunk if email in suppressed]
            )
        follows: dict[int, list[list]] = defaultdict(list)
        for subscriber_id, category_id, topic_id in (
            Follow.objects.filter(subscriber_id__in=[pk for pk, _ in chunk])
            .order_by("subscriber_id", "position", "id")
            .values_list("subscriber_id", "category_id", "topic_id")
        ):
            follows[subscriber_id].append(["c", category_id] if category_id else ["t", topic_id])
        for pk, email in chunk:
            if email in suppressed:
                continue
            followed = follows.get(pk, [])
            shape = tuple(kind + str(item) for kind, item in followed)
            key = keys.get(shape)
            if key is None:
                key = keys[shape] = group_key(followed)
            _, ids = pending.setdefault(key, (followed, array("q")))
            ids.append(pk)
            if len(ids) >= batch_size:
                _flush_pack(
                    edition=edition,
                    groups=[(key, followed, list(ids))],
                    enqueue=enqueue,
                    result=result,
                )
                del pending[key]
    # What is left are groups smaller than a batch: with many distinct followed sets,
    # nearly every group. They are written and sent in packs of PACK_BATCHES batches:
    # one transaction and one task (edition_send_batches) per pack, each queued as soon
    # as it is written.
    groups = list(pending.items())
    pending.clear()
    for start in range(0, len(groups), PACK_BATCHES):
        _flush_pack(
            edition=edition,
            groups=[
                (key, followed, list(ids))
                for key, (followed, ids) in groups[start : start + PACK_BATCHES]
            ],
            enqueue=enqueue,
            result=result,
        )
    return result


def _flush_pack(
    *,
    edition: Edition,
    groups: list[tuple[str, list[list], list[int]]],
    enqueue: bool,
    result: PlanResult,
) -> None:
    """Write one batch per group, all in one transaction, and queue them as one pack.

    A full batch of one group is a pack of one, queued as its own batch's task.

    With a transaction per group, planning 100,000 readers in 5,000 followed sets took
    49 s in bench/digest.py; with one per pack, 17 s (bench/README.md).
    """
    with transaction.atomic():
        _commit_without_waiting_for_disk()
        batches = DeliveryBatch.objects.bulk_create(
            [
                DeliveryBatch(edition=edition, group_key=key, followed=followed)
                for key, followed, _ in groups
            ]
        )
        claimed = _insert_pack_deliveries(
            edition_id=edition.pk,
            rows=[(batch.pk, ids) for batch, (_, _, ids) in zip(batches, groups, strict=True)],
        )
        empty = [batch.pk for batch in batches if not claimed.get(batch.pk)]
        if empty:
            DeliveryBatch.objects.filter(pk__in=empty).delete()
        written = [batch.pk for batch in batches if claimed.get(batch.pk)]
        if not written:
            return
        Edition.objects.filter(
            pk=edition.pk, state__in=[Edition.State.COMPOSED, Edition.State.SENT]
        ).update(state=Edition.State.SENDING)
        if enqueue:
            transaction.on_commit(partial(enqueue_batches, written))
    for batch, (key, _, _) in zip(batches, groups, strict=True):
        if claimed.get(batch.pk):
            result.queued += claimed[batch.pk]
            result.groups.add(key)
            result.batch_ids.append(batch.pk)


def _insert_pack_deliveries(
    *, edition_id: int, rows: list[tuple[int, list[int]]]
) -> dict[int, int]:
    """Queue each batch's subscribers in it; return how many rows each batch got.

    ON CONFLICT DO NOTHING, as _insert_deliveries: a reader another planner queued
    keeps that row.
    """
    if len(rows) == 1:
        batch_id, ids = rows[0]
        return {
            batch_id: _insert_deliveries(
                edition_id=edition_id, batch_id=batch_id, subscriber_ids=ids
            )
        }
    batch_ids = [batch_id for batch_id, ids in rows for _ in ids]
    subscriber_ids = [pk for _, ids in rows for pk in ids]
    if db_connection.vendor == "postgresql":
        with db_connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {Delivery._meta.db_table} "  # noqa: S608  (table name is ours; values are parameters)
                "(edition_id, subscriber_id, batch_id, state, esp_message_id, error) "
                "SELECT %s, u.subscriber_id, u.batch_id, %s, '', '' "
                "FROM unnest(%s::bigint[], %s::bigint[]) AS u(subscriber_id, batch_id) "
                "ON CONFLICT DO NOTHING RETURNING batch_id",
                [edition_id, Delivery.State.QUEUED.value, subscriber_ids, batch_ids],
            )
            claimed: dict[int, int] = defaultdict(int)
            for (batch_id,) in cursor.fetchall():
                claimed[batch_id] += 1
            return claimed
    Delivery.objects.bulk_create(
        [
            Delivery(edition_id=edition_id, subscriber_id=pk, batch_id=batch_id)
            for batch_id, pk in zip(batch_ids, subscriber_ids, strict=True)
        ],
        ignore_conflicts=True,
    )
    return dict(
        Delivery.objects.filter(batch_id__in=[batch_id for batch_id, _ in rows])
        .order_by()
        .values_list("batch_id")
        .annotate(n=Count("id"))
        .values_list("batch_id", "n")
    )


def _record_suppressed(*, edition: Edition, subscriber_ids: list[int]) -> int:
    before = Delivery.objects.filter(edition=edition, subscriber_id__in=subscriber_ids).count()
    Delivery.objects.bulk_create(
        [
            Delivery(
                edition=edition,
                subscriber_id=pk,
                state=Delivery.State.SUPPRESSED,
                error="On the suppression list.",
            )
            for pk in subscriber_ids
        ],
        ignore_conflicts=True,
    )
    return (
        Delivery.objects.filter(edition=edition, subscriber_id__in=subscriber_ids).count() - before
    )


def _commit_without_waiting_for_disk() -> None:
    """Let this transaction's COMMIT return before its WAL reaches the disk.

    The planner's profile at 100,000 readers: a quarter of its time was COMMIT waiting
    for the disk (bench/README.md). PostgreSQL's asynchronous commit ("Asynchronous
    Commit" in its manual) may lose the last fraction of a second of such commits in a
    server crash, never consistency. Lost here means readers not queued yet, whom the
    next planner run queues, and a task finding no batch; any batch a task has claimed
    is durable, since the claim's own synchronous COMMIT flushes all WAL before it.
    """
    if db_connection.vendor == "postgresql":
        with db_connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _insert_deliveries(*, edition_id: int, batch_id: int, subscriber_ids: list[int]) -> int:
    """Queue these subscribers in the batch; return how many rows are ours.

    ON CONFLICT DO NOTHING under "delivery_once_per_edition": a subscriber another
    planner already queued for this edition keeps that row (and its batch).
    """
    if db_connection.vendor == "postgresql":
        # One INSERT ... SELECT unnest(array): the row count is exactly what we claimed.
        with db_connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {Delivery._meta.db_table} "
                "(edition_id, subscriber_id, batch_id, state, esp_message_id, error) "
                "SELECT %s, unnest(%s::bigint[]), %s, %s, '', '' ON CONFLICT DO NOTHING",
                [edition_id, subscriber_ids, batch_id, Delivery.State.QUEUED.value],
            )
            return cursor.rowcount
    Delivery.objects.bulk_create(
        [
            Delivery(edition_id=edition_id, subscriber_id=pk, batch_id=batch_id)
            for pk in subscriber_ids
        ],
        ignore_conflicts=True,
    )
    return Delivery.objects.filter(batch_id=batch_id).count()


def enqueue_batch(batch_id: int) -> None:
    from subscriptions.digest_tasks import digest_send_batch_task

    digest_send_batch_task.delay(batch_id)


def enqueue_batches(batch_ids: list[int]) -> None:
    """One task for a pack of small batches (a pack of one is a batch's own task)."""
    if len(batch_ids) == 1:
        enqueue_batch(batch_ids[0])
        return
    from subscriptions.digest_tasks import digest_send_batches_task

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


# --- sending --------------------------------------------------------------------


@dataclass
class BatchOutcome:
    state: str
    sent: int = 0
    suppressed: int = 0
    failed: int = 0


@dataclass
class _Recipient:
    delivery_id: int
    subscriber: Subscriber


@dataclass
class _Result:
    ok: bool
    message_id: str = ""
    error: str = ""


def edition_send_batch(*, batch_id: int, task_id: str) -> BatchOutcome:
    """Send one batch exactly once; raise BatchSendError (batch queued again) on ESP errors."""
    started = _start(batch_id=batch_id, task_id=task_id)
    if isinstance(started, BatchOutcome):
        return started
    batch, prepared, suppressed = started
    results, error = send_messages(edition=batch.edition, prepared=prepared)
    return _settle(batch=batch, results=results, error=error, suppressed=suppressed)


@dataclass
class PackOutcome:
    """What became of each batch of a pack; `retry` holds the ones to try again, with why."""

    outcomes: dict[int, BatchOutcome] = field(default_factory=dict)
    retry: dict[int, str] = field(default_factory=dict)


def edition_send_batches(*, batch_ids: list[int], task_id: str) -> PackOutcome:
    """Send a pack of small batches, their ESP calls overlapping; each batch exactly once.

    The planner packs the batches of rare followed sets (one set, one email, one ESP
    call): 5,000 sets over 100,000 readers are 5,000 calls of 20 readers, and one at a
    time each worker process sat idle on every round trip (bench/README.md). Each batch
    keeps its own claim, committed before its call, and its own record of the answer,
    so a pack is exactly as safe as its batches sent one by one: an ESP error stays in
    its batch (queued again for the retry, the others recorded as sent), a redelivered
    pack finds its sent batches sent, and a worker dying leaves in doubt only the
    batches whose calls were in flight (at most settings.ESP_CONCURRENT_CALLS).

    The database work stays in this thread; the others build each reader's merge data
    and wait for the ESP.
    """
    pack = PackOutcome()
    editions: set[int] = set()
    in_flight: dict[Future, tuple[DeliveryBatch, int]] = {}

    def settle(futures: Iterable[Future]) -> None:
        for future in futures:
            batch, suppressed = in_flight.pop(future)
            try:
                results, error = future.result()
            except Exception:
                # Not an ESP answer we know (a bug, a backend's own error): whether the
                # call went out is unknown, so the batch stays "sending" and the planner
                # reports it in doubt once stale, as for a worker that died.
                logger.exception("digest: batch %s failed during its ESP call", batch.pk)
                pack.outcomes[batch.pk] = BatchOutcome(state=DeliveryBatch.State.SENDING)
                continue
            try:
                pack.outcomes[batch.pk] = _settle(
                    batch=batch,
                    results=results,
                    error=error,
                    suppressed=suppressed,
                    mark_done=False,
                )
            except BatchSendError as exc:
                pack.retry[batch.pk] = str(exc)

    calls = max(1, settings.ESP_CONCURRENT_CALLS)
    appeals_running = _appeals_running()  # once for the pack: the sends take seconds
    with ThreadPoolExecutor(max_workers=calls, thread_name_prefix="digest-esp") as pool:
        for batch_id in batch_ids:
            if len(in_flight) >= calls:
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                settle(done)
            try:
                started = _start(
                    batch_id=batch_id,
                    task_id=task_id,
                    mark_done=False,
                    appeals_running=appeals_running,
                )
            except BatchSendError as exc:
                pack.retry[batch_id] = str(exc)
                continue
            if isinstance(started, BatchOutcome):
                pack.outcomes[batch_id] = started
                continue
            batch, prepared, suppressed = started
            editions.add(batch.edition_id)
            future = pool.submit(send_messages, edition=batch.edition, prepared=prepared)
            in_flight[future] = (batch, suppressed)
        settle(list(in_flight))
    for edition_id in editions or _editions_of(batch_ids):
        _mark_edition_sent_if_done(edition_id)
    return pack


def _editions_of(batch_ids: list[int]) -> set[int]:
    return set(DeliveryBatch.objects.filter(pk__in=batch_ids).values_list("edition_id", flat=True))


def _start(
    *, batch_id: int, task_id: str, mark_done: bool = True, appeals_running: bool | None = None
):
    """Claim a batch and render its emails: (batch, prepared, suppressed) or its outcome."""
    claim = _claim(batch_id=batch_id, task_id=task_id)
    if isinstance(claim, BatchOutcome):
        if claim.state == DeliveryBatch.State.IN_DOUBT and mark_done:
            # Nothing is left to send; the in-doubt batch waits for staff in the admin.
            _mark_edition_sent_if_done(DeliveryBatch.objects.get(pk=batch_id).edition_id)
        return claim
    batch, recipients, suppressed = claim
    if not recipients:
        _finish(batch=batch, results={}, error="", mark_done=mark_done)
        return BatchOutcome(state=DeliveryBatch.State.SENT, suppressed=suppressed)
    try:
        prepared = prepare_messages(
            edition=batch.edition,
            followed=batch.followed,
            recipients=recipients,
            appeals_running=appeals_running,
        )
    except Exception as exc:
        # Nothing reached the ESP yet: the batch can safely wait for a retry.
        _finish(batch=batch, results={}, error=f"Rendering failed: {exc!r}")
        raise BatchSendError(f"Rendering failed: {exc!r}") from exc
    return batch, prepared, suppressed


def _settle(
    *,
    batch: DeliveryBatch,
    results: dict[int, _Result],
    error: str,
    suppressed: int,
    mark_done: bool = True,
) -> BatchOutcome:
    """Record the ESP's answer for a batch; raise BatchSendError if it must be retried."""
    _finish(batch=batch, results=results, error=error, mark_done=mark_done)
    if error:
        raise BatchSendError(error)
    failed = sum(1 for r in results.values() if not r.ok)
    return BatchOutcome(
        state=DeliveryBatch.State.SENT,
        sent=len(results) - failed,
        suppressed=suppressed,
        failed=failed,
    )


def _claim(*, batch_id: int, task_id: str):
    """Lock the batch, drop who may no longer be emailed, claim the rest, commit."""
    now = timezone.now()
    with transaction.atomic():
        batch = (
            # The batch's row only: locking its edition too made every claim of every
            # worker wait its turn on that one row.
            DeliveryBatch.objects.select_for_update(of=("self",))
            .select_related("edition__newsletter")
            .filter(pk=batch_id)
            .first()
        )
        if batch is None:
            return BatchOutcome(state="missing")
        if batch.state == DeliveryBatch.State.SENDING:
            redelivered = bool(task_id) and batch.task_id == task_id
            stale = batch.started_at is not None and batch.started_at < now - SENDING_STALE_AFTER
            if redelivered or stale:
                # The worker that called the ESP died before recording the answer: some
                # or all of these emails may have gone. Staff decide; we never resend.
                batch.deliveries.filter(state=Delivery.State.CLAIMED).update(
                    state=Delivery.State.IN_DOUBT
                )
                batch.state = DeliveryBatch.State.IN_DOUBT
                batch.error = "The worker stopped during the ESP call; the outcome is unknown."
                batch.save(update_fields=["state", "error"])
                logger.warning("digest: batch %s is in doubt", batch.pk)
                return BatchOutcome(state=DeliveryBatch.State.IN_DOUBT)
            return BatchOutcome(state="busy")
        if batch.state != DeliveryBatch.State.QUEUED:
            return BatchOutcome(state=batch.state)
        if batch.edition.state == Edition.State.PAUSED:
            return BatchOutcome(state="paused")

        # One query for the deliveries, their readers and whether each is still
        # subscribed (three before: with batches of 20, queries cost per reader).
        # FOR UPDATE OF the deliveries only: a deleted reader is a NULL outer join.
        rows = list(
            batch.deliveries.select_for_update(skip_locked=True, of=("self",))
            .filter(state=Delivery.State.QUEUED)
            .annotate(
                subscribed=Exists(
                    Subscription.objects.filter(
                        subscriber=OuterRef("subscriber_id"),
                        newsletter=batch.edition.newsletter_id,
                        status=Subscription.Status.ACTIVE,
                    )
                )
            )
            .values_list(
                "pk", "subscriber_id", "subscriber__email", "subscriber__name", "subscribed"
            )
        )
        # The one suppression check, right before the ESP call (seams.md).
        suppressed = suppressed_among([email for _, sid, email, _, _ in rows if sid is not None])
        dropped: dict[str, list[int]] = defaultdict(list)
        recipients: list[_Recipient] = []
        for delivery_id, subscriber_id, email, name, subscribed in rows:
            if subscriber_id is None:
                dropped["The subscriber was deleted before sending."].append(delivery_id)
            elif email in suppressed:
                dropped["On the suppression list."].append(delivery_id)
            elif not subscribed:
                dropped["Unsubscribed before sending."].append(delivery_id)
            else:
                subscriber = Subscriber(pk=subscriber_id, email=email, name=name)
                recipients.append(_Recipient(delivery_id, subscriber))
        for reason, ids in dropped.items():
            Delivery.objects.filter(pk__in=ids).update(
                state=Delivery.State.SUPPRESSED, error=reason
            )
        Delivery.objects.filter(pk__in=[r.delivery_id for r in recipients]).update(
            state=Delivery.State.CLAIMED
        )
        batch.state = DeliveryBatch.State.SENDING
        batch.task_id = task_id
        batch.started_at = now
        batch.attempts += 1
        batch.save(update_fields=["state", "task_id", "started_at", "attempts"])
    # Committed: from here on a crash leaves the batch "sending", which is what lets a
    # redelivered task tell "maybe sent" from "never tried".
    return batch, recipients, sum(len(ids) for ids in dropped.values())


def _finish(
    *, batch: DeliveryBatch, results: dict[int, _Result], error: str, mark_done: bool = True
) -> None:
    now = timezone.now()
    with transaction.atomic():
        _record_sent([(pk, r.message_id[:200]) for pk, r in results.items() if r.ok], sent_at=now)
        refused: dict[str, list[int]] = defaultdict(list)
        for pk, r in results.items():
            if not r.ok:
                refused[r.error[:300]].append(pk)
        for reason, ids in refused.items():
            Delivery.objects.filter(pk__in=ids).update(state=Delivery.State.FAILED, error=reason)
        # Whoever was claimed but not attempted (the ESP failed first) waits for the retry.
        Delivery.objects.filter(batch=batch, state=Delivery.State.CLAIMED).update(
            state=Delivery.State.QUEUED
        )
        batch.state = DeliveryBatch.State.QUEUED if error else DeliveryBatch.State.SENT
        batch.error = error[:2000]
        batch.finished_at = None if error else now
        batch.save(update_fields=["state", "error", "finished_at"])
    if not error and mark_done:
        _mark_edition_sent_if_done(batch.edition_id)


def _record_sent(rows: list[tuple[int, str]], *, sent_at: datetime) -> None:
    """Mark deliveries sent with their ESP message ids, in as few statements as possible."""
    by_id: dict[str, list[int]] = defaultdict(list)
    for pk, message_id in rows:
        by_id[message_id].append(pk)
    if len(by_id) <= 10 or db_connection.vendor != "postgresql":
        # One id for the whole call (Mailgun, SES) or one per recipient elsewhere.
        if len(by_id) <= 10:
            for message_id, ids in by_id.items():
                Delivery.objects.filter(pk__in=ids).update(
                    state=Delivery.State.SENT, esp_message_id=message_id, sent_at=sent_at, error=""
                )
        else:
            Delivery.objects.bulk_update(
                [
                    Delivery(
                        pk=pk,
                        state=Delivery.State.SENT,
                        esp_message_id=mid,
                        sent_at=sent_at,
                        error="",
                    )
                    for pk, mid in rows
                ],
                ["state", "esp_message_id", "sent_at", "error"],
                batch_size=500,
            )
        return
    # A message id per recipient (Postmark, SendGrid): one UPDATE ... FROM (VALUES ...)
    # instead of bulk_update's CASE per row, which costs more to build than to run.
    table = Delivery._meta.db_table
    values = ", ".join(["(%s::bigint, %s)"] * len(rows))
    params: list = [Delivery.State.SENT.value, sent_at]
    for pk, message_id in rows:
        params += [pk, message_id]
    with db_connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS d SET state = %s, sent_at = %s, error = '', "  # noqa: S608  (table name is ours; values are parameters)
            f"esp_message_id = v.message_id FROM (VALUES {values}) AS v(id, message_id) "
            "WHERE d.id = v.id",
            params,
        )


def _mark_edition_sent_if_done(edition_id: int) -> None:
    # One UPDATE after our commit: of two batches finishing together, the later one
    # sees both committed (READ COMMITTED), so the edition cannot stay "sending".
    outstanding = DeliveryBatch.objects.filter(
        edition=OuterRef("pk"),
        state__in=[DeliveryBatch.State.QUEUED, DeliveryBatch.State.SENDING],
    )
    Edition.objects.filter(pk=edition_id, state=Edition.State.SENDING).exclude(
        Exists(outstanding)
    ).update(state=Edition.State.SENT)


def batch_fail(*, batch_id: int, error: str) -> None:
    """Give up on a batch after its last retry: its waiting deliveries are failed."""
    with transaction.atomic():
        batch = DeliveryBatch.objects.select_for_update().get(pk=batch_id)
        if batch.state != DeliveryBatch.State.QUEUED:
            return
        batch.deliveries.filter(state=Delivery.State.QUEUED).update(
            state=Delivery.State.FAILED, error=error[:300]
        )
        batch.state = DeliveryBatch.State.FAILED
        batch.error = error[:2000]
        batch.finished_at = timezone.now()
        batch.save(update_fields=["state", "error", "finished_at"])
    _mark_edition_sent_if_done(batch.edition_id)


# Errors after which a retry may succeed (API down, rate limit, network, SMTP).
RETRYABLE = (AnymailError, smtplib.SMTPException, OSError)


def esp_supports_batch(connection) -> bool:
    """django-anymail backends send one API call with per-recipient merge data."""
    return isinstance(connection, AnymailBaseBackend)


def prepare_messages(
    *,
    edition: Edition,
    followed: list[list],
    recipients: list[_Recipient],
    appeals_running: bool | None = None,
) -> list[tuple[RenderedEmail, list[_Recipient]]]:
    """Render what `recipients` get, once per appeal among them, before any ESP call.

    The donations app picks each reader's appeal (a reader who gave recently sees none).
    """
    by_appeal: dict[object, tuple[object, list[_Recipient]]] = {}
    # One look per batch (or pack) first: on a day without a newsletter appeal (most
    # days) this spares a lookup per reader. donations.selectors.appeal_for_newsletter
    # returns None whenever active_appeals(NEWSLETTER) is empty.
    ask = _appeals_running() if appeals_running is None else appeals_running
    for recipient in recipients:
        appeal = _appeal_for(recipient.subscriber.email) if ask else None
        appeal_key = getattr(appeal, "pk", id(appeal)) if appeal is not None else None
        by_appeal.setdefault(appeal_key, (appeal, []))[1].append(recipient)
    return [
        (render_edition_email(edition=edition, followed=followed, appeal=appeal), group)
        for appeal, group in by_appeal.values()
    ]


def send_messages(
    *, edition: Edition, prepared: list[tuple[RenderedEmail, list[_Recipient]]]
) -> tuple[dict[int, _Result], str]:
    """Send prepared groups; return per-delivery results and the ESP error that stopped us."""
    results: dict[int, _Result] = {}
    connection = get_connection()
    try:
        connection.open()
        for rendered, group in prepared:
            if esp_supports_batch(connection):
                try:
                    results.update(_send_batch_call(connection, edition, rendered, group))
                    continue
                except (AnymailUnsupportedFeature, AnymailInvalidAddress) as exc:
                    # This ESP cannot take per-recipient headers in a batch, or one
                    # address broke the whole call: fall back to one message each.
                    logger.warning("digest: batch call refused (%s); sending one by one", exc)
                except AnymailRecipientsRefused as exc:
                    results.update({r.delivery_id: _Result(False, error=str(exc)) for r in group})
                    continue
                except RETRYABLE as exc:
                    return results, f"{type(exc).__name__}: {exc}"
            error = _send_one_by_one(connection, edition, rendered, group, results)
            if error:
                return results, error
    finally:
        try:
            connection.close()
        except RETRYABLE:
            logger.warning("digest: closing the email connection failed", exc_info=True)
    return results, ""


def _message(
    *, edition: Edition, rendered: RenderedEmail, to: list[str], headers: dict[str, str]
) -> EmailMultiAlternatives:
    newsletter = edition.newsletter
    message = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=to,
        headers=headers,
    )
    message.attach_alternative(rendered.html, "text/html")
    # anymail hands these to the ESP; its tracking webhooks bring them back, so each
    # delivered/opened/clicked/bounced event attaches to this edition.
    message.metadata = {"newsletter": newsletter.slug}
    if edition.pk is not None:
        message.metadata = {"edition_id": str(edition.pk), **message.metadata}
    message.tags = ["digest", newsletter.slug]
    return message


def _send_batch_call(
    connection, edition: Edition, rendered: RenderedEmail, group: list[_Recipient]
) -> dict[int, _Result]:
    newsletter = edition.newsletter
    merge_data, merge_headers, merge_metadata = {}, {}, {}
    for recipient in group:
        subscriber = recipient.subscriber
        headers = reader_headers(subscriber=subscriber, newsletter=newsletter)
        merge_headers[subscriber.email] = headers
        merge_data[subscriber.email] = recipient_values(
            subscriber=subscriber, newsletter=newsletter, headers=headers
        )
        merge_metadata[subscriber.email] = {"delivery_id": str(recipient.delivery_id)}
    message = _message(
        edition=edition, rendered=rendered, to=[r.subscriber.email for r in group], headers={}
    )
    # merge_data makes anymail send one message per "to" address (batch send), with
    # merge_headers carrying each reader's own RFC 8058 List-Unsubscribe.
    message.merge_data = merge_data
    message.merge_headers = merge_headers
    message.merge_metadata = merge_metadata
    connection.send_messages([message])
    statuses = message.anymail_status.recipients
    results: dict[int, _Result] = {}
    for recipient in group:
        status = statuses.get(recipient.subscriber.email)
        if status is not None and status.status in REFUSED_STATUSES:
            results[recipient.delivery_id] = _Result(False, error=f"ESP status: {status.status}")
        else:
            message_id = status.message_id if status is not None else None
            results[recipient.delivery_id] = _Result(
                True, message_id="" if message_id is None else str(message_id)
            )
    return results


def _send_one_by_one(
    connection,
    edition: Edition,
    rendered: RenderedEmail,
    group: list[_Recipient],
    results: dict[int, _Result],
) -> str:
    newsletter = edition.newsletter
    domain = urlsplit(settings.SITE_URL).hostname or "localhost"
    for recipient in group:
        subscriber = recipient.subscriber
        unsubscribe_headers = reader_headers(subscriber=subscriber, newsletter=newsletter)
        own = personal_copy(
            rendered=rendered,
            values=recipient_values(
                subscriber=subscriber, newsletter=newsletter, headers=unsubscribe_headers
            ),
        )
        message_id = make_msgid(idstring="digest", domain=domain)
        headers = {**unsubscribe_headers, "Message-ID": message_id}
        message = _message(edition=edition, rendered=own, to=[subscriber.email], headers=headers)
        try:
            connection.send_messages([message])
        except (
            AnymailInvalidAddress,
            AnymailRecipientsRefused,
            smtplib.SMTPRecipientsRefused,
        ) as exc:
            results[recipient.delivery_id] = _Result(False, error=str(exc))
            continue
        except RETRYABLE as exc:
            return f"{type(exc).__name__}: {exc}"
        status = getattr(message, "anymail_status", None)
        esp_id = getattr(status, "message_id", None) if status is not None else None
        results[recipient.delivery_id] = _Result(
            True, message_id=message_id if esp_id is None else str(esp_id)
        )
    return ""


# --- staff actions ----------------------------------------------------------------


def edition_pause(*, edition: Edition) -> bool:
    """Stop sending an edition: batches not yet started, and time zones whose send hour
    has not come yet, wait until it is resumed."""
    return bool(
        Edition.objects.filter(
            pk=edition.pk,
            state__in=[Edition.State.COMPOSED, Edition.State.SENDING, Edition.State.SENT],
        ).update(state=Edition.State.PAUSED)
    )


def edition_resume(*, edition: Edition) -> int:
    """Resume a paused edition and queue its waiting batches again; return how many."""
    with transaction.atomic():
        if not Edition.objects.filter(pk=edition.pk, state=Edition.State.PAUSED).update(
            state=Edition.State.SENDING
        ):
            return 0
        batch_ids = list(
            edition.batches.filter(state=DeliveryBatch.State.QUEUED).values_list("pk", flat=True)
        )
        for batch_id in batch_ids:
            transaction.on_commit(partial(enqueue_batch, batch_id))
    if not batch_ids:
        _mark_edition_sent_if_done(edition.pk)
    return len(batch_ids)


def batch_resend(*, batch: DeliveryBatch) -> int:
    """Staff decided an in-doubt batch did not go out: queue its readers again."""
    with transaction.atomic():
        locked = DeliveryBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.state != DeliveryBatch.State.IN_DOUBT:
            return 0
        count = locked.deliveries.filter(state=Delivery.State.IN_DOUBT).update(
            state=Delivery.State.QUEUED
        )
        locked.state = DeliveryBatch.State.QUEUED
        locked.task_id = ""
        locked.error = ""
        locked.save(update_fields=["state", "task_id", "error"])
        Edition.objects.filter(pk=locked.edition_id, state=Edition.State.SENT).update(
            state=Edition.State.SENDING
        )
        transaction.on_commit(partial(enqueue_batch, locked.pk))
    return count


def batch_mark_sent(*, batch: DeliveryBatch) -> int:
    """Staff confirmed (e.g. in the ESP's log) that an in-doubt batch went out."""
    with transaction.atomic():
        locked = DeliveryBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.state != DeliveryBatch.State.IN_DOUBT:
            return 0
        count = locked.deliveries.filter(state=Delivery.State.IN_DOUBT).update(
            state=Delivery.State.SENT, sent_at=timezone.now()
        )
        locked.state = DeliveryBatch.State.SENT
        locked.finished_at = timezone.now()
        locked.save(update_fields=["state", "finished_at"])
    _mark_edition_sent_if_done(locked.edition_id)
    return count


def edition_send_test(
    *,
    edition: Edition,
    to: str,
    subscriber: Subscriber | None = None,
    followed: list[list] | None = None,
) -> None:
    """Send one copy to a staff address, as `subscriber` (or `followed`) would get it.

    Nothing is recorded as a delivery: a test never counts as anyone's edition.
    """
    if subscriber is not None:
        followed = followed_set(subscriber.follows.all())
        values = recipient_values(subscriber=subscriber, newsletter=edition.newsletter)
        appeal = _appeal_for(subscriber.email)
    else:
        values = sample_values(newsletter=edition.newsletter)
        appeal = _appeal_for(to)
    rendered = render_edition_email(edition=edition, followed=followed or [], appeal=appeal)
    own = personal_copy(rendered=rendered, values=values)
    message = _message(
        edition=edition,
        rendered=RenderedEmail(subject=f"[Test] {own.subject}", text=own.text, html=own.html),
        to=[to],
        headers={},
    )
    message.send()


def sample_values(*, newsletter: Newsletter) -> dict[str, str]:
    """Merge values for previews that are nobody's: links lead to the newsletters page."""
    from django.urls import reverse

    page = _absolute(reverse("subscriptions:newsletters"))
    return {
        "greeting": "Good morning",
        "greeting_html": "Good morning",
        "preferences_url": page,
        "unsubscribe_url": page,
    }


def preview_html(
    *, edition: Edition, subscriber: Subscriber | None = None, followed: list[list] | None = None
) -> str:
    """The HTML `subscriber` (or a reader following `followed`) gets, links filled in."""
    if subscriber is not None:
        followed = followed_set(subscriber.follows.all())
        values = recipient_values(subscriber=subscriber, newsletter=edition.newsletter)
        appeal = _appeal_for(subscriber.email)
    else:
        values = sample_values(newsletter=edition.newsletter)
        appeal = None
    rendered = render_edition_email(edition=edition, followed=followed or [], appeal=appeal)
    return substitute(rendered.html, values)


# --- progress -------------------------------------------------------------------

PROGRESS_STATES = [
    Delivery.State.QUEUED,
    Delivery.State.CLAIMED,
    Delivery.State.SENT,
    Delivery.State.FAILED,
    Delivery.State.SUPPRESSED,
    Delivery.State.IN_DOUBT,
]
# anymail's normalized tracking event types (anymail docs, "Tracking: event types").
TRACKED_EVENTS = ["opened", "clicked", "bounced", "unsubscribed"]


def edition_progress(edition: Edition) -> dict[str, int]:
    """Counts staff watch during a send: deliveries by state, readers by tracked event."""
    counts = {state.value: 0 for state in PROGRESS_STATES}
    counts.update(
        dict(
            edition.deliveries.order_by()
            .values_list("state")
            .annotate(n=Count("id"))
            .values_list("state", "n")
        )
    )
    events = dict(
        edition.events.filter(event_type__in=TRACKED_EVENTS)
        .order_by()
        .values_list("event_type")
        .annotate(n=Count("recipient", distinct=True))
        .values_list("event_type", "n")
    )
    counts.update({event: events.get(event, 0) for event in TRACKED_EVENTS})
    counts["total"] = sum(counts[state.value] for state in PROGRESS_STATES)
    done = counts["sent"] + counts["failed"] + counts["suppressed"] + counts["in_doubt"]
    counts["done"] = done
    counts["percent"] = round(100 * done / counts["total"]) if counts["total"] else 0
    return counts


def new_task_id() -> str:
    return f"inline-{uuid.uuid4()}"
