"""Composing an edition (its frozen article ids) and reading it back as a reader sees it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date as Date
from datetime import datetime, timedelta
from time import monotonic

from django.conf import settings
from django.db.models import F
from django.utils import timezone, translation

from newsroom.links import absolute
from newsroom.models import Article, Category, Topic
from subscriptions import appeals
from subscriptions.digest.kept import Kept
from subscriptions.models import Edition, Follow, Newsletter


def compose_contents(
    *, newsletter: Newsletter, cutoff_start: datetime | None, cutoff_end: datetime
) -> dict:
    """The article ids an edition freezes, for each language the site offers.

    {"languages": {code: {"top", "categories", "topics"}}}, each language's from its own
    articles; the newsletter's own language is repeated at the top level, which is what
    the edition's page and the admin show. Followed categories and topics are shared
    rows, so a reader following one gets its articles in their language.
    """
    languages = {
        code: _language_contents(
            newsletter=newsletter, language=code, cutoff_start=cutoff_start, cutoff_end=cutoff_end
        )
        for code, _ in settings.LANGUAGES
    }
    own = languages.get(newsletter.language) or {"top": [], "categories": {}, "topics": {}}
    return {**own, "languages": languages}


def _language_contents(
    *, newsletter: Newsletter, language: str, cutoff_start: datetime | None, cutoff_end: datetime
) -> dict:
    """Top stories, then per category and per topic, of the articles in `language`.

    Only articles published in (cutoff_start, cutoff_end] are new. Top stories are
    ranked by `top_story_rank` (1 first), then recency; sections never repeat them.
    """
    new = Article.objects.published(now=cutoff_end).filter(language=language)
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


def languages_with_news(edition: Edition) -> list[str] | None:
    """The languages this edition has top stories in; None for an edition composed before
    editions had languages (every reader gets its one set of stories)."""
    languages = (edition.contents or {}).get("languages")
    if languages is None:
        return None
    return [code for code, part in languages.items() if part.get("top")]


def language_contents(edition: Edition, language: str | None) -> dict:
    """The edition's contents in `language` (None: the newsletter's own)."""
    contents = edition.contents or {}
    if language is None:
        return contents
    return contents.get("languages", {}).get(language, contents)


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


def edition_draft(*, newsletter: Newsletter, date: Date, now: datetime) -> Edition:
    """The stored edition for `date`, or an unsaved one composed as it would be now.

    Previews (send_digest --dry-run / --to) use it so that looking never freezes an
    edition before its send hour. Articles are new when published after the previous
    edition's cutoff; with nothing new the edition is skipped.
    """
    existing = Edition.objects.filter(newsletter=newsletter, date=date).first()
    if existing is not None:
        return existing
    previous = (
        Edition.objects.filter(newsletter=newsletter, date__lt=date).order_by("-date").first()
    )
    cutoff_start = previous.cutoff_end if previous else now - _lookback(newsletter)
    contents = compose_contents(newsletter=newsletter, cutoff_start=cutoff_start, cutoff_end=now)
    news = any(part["top"] for part in contents["languages"].values())
    return Edition(
        newsletter=newsletter,
        date=date,
        cutoff_start=cutoff_start,
        cutoff_end=now,
        contents=contents,
        state=Edition.State.COMPOSED if news else Edition.State.SKIPPED,
        skip_reason="" if news else "Nothing new has been published since the last edition.",
    )


def edition_compose(*, newsletter: Newsletter, date: Date, now: datetime | None = None) -> Edition:
    """Return the newsletter's edition for `date`, composing and freezing it the first time.

    A skipped edition is stored with the reason staff see in the admin.
    """
    now = now or timezone.now()
    draft = edition_draft(newsletter=newsletter, date=date, now=now)
    if draft.pk is not None:
        return draft
    if draft.state == Edition.State.SKIPPED:
        since = timezone.localtime(draft.cutoff_start)
        draft.skip_reason = (
            f"Nothing was published between {since:%Y-%m-%d %H:%M} "
            f"and {timezone.localtime(now):%Y-%m-%d %H:%M} ({settings.TIME_ZONE}), "
            "so this edition was not sent."
        )
    # A concurrent planner composing the same day loses the race on the unique
    # constraint; get_or_create then returns the winner's edition.
    edition, _ = Edition.objects.get_or_create(
        newsletter=newsletter,
        date=date,
        defaults={
            "cutoff_start": draft.cutoff_start,
            "cutoff_end": draft.cutoff_end,
            "contents": draft.contents,
            "state": draft.state,
            "skip_reason": draft.skip_reason,
        },
    )
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


def followed_set(follows: Iterable[Follow], *, language: str | None = None) -> list[list]:
    """A reader's follows as [["c", id] | ["t", id], ...] in the order they chose them,
    after ["l", language] when given: a batch renders one language's stories."""
    followed = [["c", f.category_id] if f.category_id else ["t", f.topic_id] for f in follows]
    return [["l", language], *followed] if language else followed


def split_language(followed: list[list] | None) -> tuple[str | None, list[list] | None]:
    """(language, follows) of a followed set; language None when it names none."""
    if not followed or followed[0][0] != "l":
        return None, followed
    return followed[0][1], followed[1:]


def group_key(followed: list[list]) -> str:
    return hashlib.sha256(json.dumps(followed, separators=(",", ":")).encode()).hexdigest()


def edition_view(
    *,
    edition: Edition,
    followed: list[list] | None,
    shared: bool = False,
    language: str | None = None,
) -> EditionView:
    """Top stories and the sections a reader with `followed` gets (None: every section).

    A followed set that starts with ["l", language] reads that language's stories;
    `language` does the same for the edition's web page (followed None).

    A reader who follows nothing gets the latest per category. An article shown once is
    not shown again further down (a story can be in a category and a topic both), and
    an article unpublished since composing is left out (within a minute when `shared`:
    the emails of a send read the edition's articles once, see _edition_parts).
    """
    named, followed = split_language(followed)
    contents = language_contents(edition, named or language)
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
            Section(title=owner.local_name, url=absolute(owner.get_absolute_url()), articles=picked)
        )
    return EditionView(edition=edition, top=top, sections=sections)


# An edition's articles, categories and topics by id, read once per worker for every
# followed set it renders: per set, reading them would be most of a set's rendering
# (bench/README.md, "The digest"). Kept a minute, so an article unpublished during a
# send drops out of later renders.
_PARTS: Kept[tuple[float, tuple[dict, dict, dict]]] = Kept(max_entries=8)
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
            return cached[1]
    contents = edition.contents or {}
    parts_by_language = [contents, *contents.get("languages", {}).values()]
    ids: set[int] = set()
    category_ids: set[int] = set()
    topic_ids: set[int] = set()
    for part in parts_by_language:
        ids.update(part.get("top", []))
        for section_ids in [*part.get("categories", {}).values(), *part.get("topics", {}).values()]:
            ids.update(section_ids)
        category_ids.update(int(k) for k in part.get("categories", {}))
        topic_ids.update(int(k) for k in part.get("topics", {}))
    articles = Article.objects.published().select_related("category").in_bulk(list(ids))
    for article in articles.values():
        # Emails need absolute links; the templates read these two. A reader arriving by
        # one is known as a subscriber, so the site shows them the subscribers' appeal.
        # Each article at its own language's address, whichever language renders it.
        with translation.override(article.language):
            url = absolute(article.get_absolute_url())
        article.absolute_url = appeals.subscriber_link(url)
        article.image_url = absolute(article.lead_photo.url) if article.lead_photo else ""
    categories = Category.objects.in_bulk(list(category_ids))
    topics = Topic.objects.in_bulk(list(topic_ids))
    parts = (articles, categories, topics)
    if shared:
        _PARTS.put(key, (now, parts))
    return parts
