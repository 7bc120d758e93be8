"""Rendering an edition's email once per followed set and appeal, merge fields for the rest."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from functools import lru_cache

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import dateformat, translation
from django.utils.html import escape, strip_tags
from django.utils.translation import gettext as _

from newsroom import mail
from newsroom.links import absolute
from newsroom.mail import RenderedEmail
from newsroom.text import clean_line
from subscriptions import appeals, tokens
from subscriptions.digest.compose import (
    EditionView,
    edition_view,
    followed_set,
    split_language,
)
from subscriptions.digest.kept import Kept
from subscriptions.models import Edition, Newsletter, Subscriber

logger = logging.getLogger(__name__)

RTL_LANGUAGES = {"ar", "he", "fa", "ur"}
# Per-recipient values; every other byte of an email is shared by its whole group.
MERGE_FIELDS = ("greeting", "greeting_html", "preferences_url", "unsubscribe_url")
# How a merge field is written where the site fills it in itself (previews, one message
# per reader); an ESP that merges writes it its own way (digest.esp's profiles).
MERGE_FORMAT = "{{FIELD}}"


def merge_field(name: str, merge_format: str = MERGE_FORMAT) -> str:
    """How merge field `name` is written in the rendered email: FIELD replaced by it."""
    return merge_format.replace("FIELD", name)


def web_version_url(edition: Edition) -> str:
    return absolute(edition.get_absolute_url())


def edition_subject(view: EditionView) -> str:
    """The subject line in the active language: the newsletter, the day, the lead story."""
    edition = view.edition
    lead = view.top[0].headline if view.top else ""
    # The month's name in the active language (Django's date formats, not the C locale).
    day = dateformat.format(edition.date, "j F Y")
    name = edition.newsletter.local_name
    if lead:
        return _("%(newsletter)s, %(day)s: %(lead)s") % {
            "newsletter": name,
            "day": day,
            "lead": lead,
        }
    return _("%(newsletter)s, %(day)s") % {"newsletter": name, "day": day}


def is_rtl(language: str) -> bool:
    return language.split("-")[0] in RTL_LANGUAGES


# Rendered emails by (edition, its compose time, followed set, appeal, settings that
# change the bytes). A worker keeps the last few hundred: one per distinct content.
_RENDERS: Kept[RenderedEmail] = Kept(max_entries=256)


def render_edition_email(
    *, edition: Edition, followed: list[list], appeal=None, merge_format: str = MERGE_FORMAT
) -> RenderedEmail:
    """Render the email a group gets, with merge fields where each reader differs."""
    key = (
        edition.pk,
        edition.composed_at.isoformat() if edition.composed_at else "",
        json.dumps(followed),
        getattr(appeal, "pk", None) if appeal is not None else None,
        str(getattr(appeal, "updated_at", "")),  # an appeal edited mid-send renders anew
        merge_format,
        settings.SITE_URL,
    )
    if edition.pk is None or (appeal is not None and getattr(appeal, "pk", None) is None):
        # A draft (send_digest --dry-run / --to) or an appeal we cannot name: not shared.
        return _render(edition=edition, followed=followed, appeal=appeal, merge_format=merge_format)
    cached = _RENDERS.get(key)
    if cached is not None:
        return cached
    rendered = _render(edition=edition, followed=followed, appeal=appeal, merge_format=merge_format)
    _RENDERS.put(key, rendered)
    return rendered


def _render(*, edition: Edition, followed: list[list], appeal, merge_format: str) -> RenderedEmail:
    # The batch's language (its followed set's first item), else the newsletter's own.
    named, _follows = split_language(followed)
    language = named or edition.newsletter.language
    with translation.override(language):
        return _render_in(
            edition=edition,
            followed=followed,
            appeal=appeal,
            merge_format=merge_format,
            language=language,
        )


def _render_in(
    *, edition: Edition, followed: list[list], appeal, merge_format: str, language: str
) -> RenderedEmail:
    newsletter = edition.newsletter
    _named, follows = split_language(followed)
    view = edition_view(edition=edition, followed=followed, shared=True)
    appeal_html = ""
    if appeal is not None:
        appeal_html = appeals.appeal_html(appeal=appeal)
    rtl = is_rtl(language)
    context = {
        **mail.org_context(),
        "newsletter": newsletter,
        "edition": edition,
        "view": view,
        "top": view.top,
        "sections": view.sections,
        "follows_nothing": not follows,
        "merge": {name: merge_field(name, merge_format) for name in MERGE_FIELDS},
        "appeal_html": appeal_html,
        "appeal_text": " ".join(strip_tags(appeal_html).split()),
        "web_url": web_version_url(edition),
        "lang": language,
        "dir": "rtl" if rtl else "ltr",
        # Outlook's Word engine ignores CSS direction: each cell says its side itself.
        "align": "right" if rtl else "left",
        "subject": edition_subject(view),
    }
    html = render_to_string("subscriptions/digest/email.html", context)
    text = render_to_string("subscriptions/digest/email.txt", context)
    return RenderedEmail(subject=context["subject"], text=text, html=mail.inline_css(html))


def recipient_values(
    *, subscriber: Subscriber, newsletter: Newsletter, headers: dict[str, str] | None = None
) -> dict[str, str]:
    """The merge values of one reader: everything in the email that is theirs alone.

    Given the reader's List-Unsubscribe headers, the link is taken from them (RFC 2369
    §3.2: a list of <URI>s, ours first) instead of signing a second token.
    """
    unsubscribe = ""
    if headers:
        first = headers.get("List-Unsubscribe", "").split(",", 1)[0].strip()
        if first.startswith("<http") and first.endswith(">"):
            unsubscribe = first[1:-1]
    return _values(
        subscriber,
        preferences=tokens.preferences_url(subscriber=subscriber),
        unsubscribe=unsubscribe
        or tokens.unsubscribe_url(subscriber=subscriber, newsletter=newsletter),
    )


def reader_headers_and_values(
    *, subscriber: Subscriber, newsletter: Newsletter
) -> tuple[dict[str, str], dict[str, str]]:
    """reader_headers and recipient_values of one reader, their two links signed together
    (tokens.reader_links): what every message of a digest carries."""
    [pair] = readers_headers_and_values([subscriber], newsletter=newsletter)
    return pair


def readers_headers_and_values(
    subscribers: list, *, newsletter: Newsletter
) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """reader_headers_and_values of each of `subscribers` (a batch's), in their order."""
    links = tokens.readers_links(subscribers, newsletter=newsletter)
    for subscriber, (preferences, unsubscribe) in zip(subscribers, links, strict=True):
        values = _values(subscriber, preferences=preferences, unsubscribe=unsubscribe)
        yield tokens.unsubscribe_headers(unsubscribe), values


def _values(subscriber: Subscriber, *, preferences: str, unsubscribe: str) -> dict[str, str]:
    name = clean_line(subscriber.name)
    named, unnamed = _greetings(subscriber.language)
    greeting = named % {"name": name} if name else unnamed
    return {
        "greeting": greeting,
        "greeting_html": escape(greeting),
        "preferences_url": preferences,
        "unsubscribe_url": unsubscribe,
    }


@lru_cache(maxsize=32)
def _greetings(language: str) -> tuple[str, str]:
    """The greeting with and without a name, in `language`: the active language is switched
    once per language a worker meets, not once per reader of every batch."""
    with translation.override(language):
        return _("Good morning, %(name)s"), _("Good morning")


def reader_headers(*, subscriber: Subscriber, newsletter: Newsletter) -> dict[str, str]:
    return tokens.list_unsubscribe_headers(subscriber=subscriber, newsletter=newsletter)


def substitute(content: str, values: dict[str, str], merge_format: str = MERGE_FORMAT) -> str:
    """Fill merge fields ourselves, for ESPs that take each reader's message whole."""
    pieces = cut_at_fields(content, tuple(values), merge_format)
    return "".join(piece if i % 2 == 0 else values[piece] for i, piece in enumerate(pieces))


@lru_cache(maxsize=64)
def cut_at_fields(
    content: str, names: tuple[str, ...], merge_format: str = MERGE_FORMAT
) -> tuple[str, ...]:
    """`content` cut at its merge fields `names`: [text, name, text, ..., name, text].

    Filling the pieces in one pass spares copying the whole email once per field, and a
    value that happens to contain a merge field is left as it is. Kept for the emails a
    worker sends most: each of a batch's readers is cut the same way.
    """
    if not names:
        return (content,)
    before, after = merge_format.split("FIELD", 1)
    fields = "|".join(re.escape(name) for name in names)
    return tuple(re.split(f"{re.escape(before)}({fields}){re.escape(after)}", content))


def personal_copy(
    *, rendered: RenderedEmail, values: dict[str, str], merge_format: str = MERGE_FORMAT
) -> RenderedEmail:
    text_values = {k: v for k, v in values.items() if k != "greeting_html"}
    return RenderedEmail(
        subject=substitute(rendered.subject, values, merge_format),
        text=substitute(rendered.text, text_values, merge_format),
        html=substitute(rendered.html, values, merge_format),
    )


def _appeals_running() -> bool:
    """Whether any newsletter appeal runs now; if none, no reader is asked for one."""
    try:
        with transaction.atomic():  # a savepoint: see _appeal_for
            return bool(appeals.newsletter_appeals())
    except Exception:
        logger.exception("digest: no appeals, the donations app failed to list them")
        return False


def _appeal_for(email: str):
    """The donations app's appeal for this reader, or None.

    The appeal is the one optional part of the email: if the donations app cannot
    answer, the news still goes out (without an appeal) and the error is logged.
    Called inside the claim's transaction (send._claim): each lookup has its savepoint,
    so that a failed query, which would abort the transaction and the claim with it,
    is rolled back alone.
    """
    try:
        with transaction.atomic():
            return appeals.appeal_for_newsletter(email=email)
    except Exception:
        logger.exception("digest: no appeal, the donations app failed to choose one")
        return None


# --- previews ------------------------------------------------------------------


def sample_values(*, newsletter: Newsletter) -> dict[str, str]:
    """Merge values for previews that are nobody's: links lead to the newsletters page."""
    from django.urls import reverse

    with translation.override(newsletter.language):
        page = absolute(reverse("subscriptions:newsletters"))
        greeting = _("Good morning")
    return {
        "greeting": greeting,
        "greeting_html": escape(greeting),
        "preferences_url": page,
        "unsubscribe_url": page,
    }


def preview_html(
    *, edition: Edition, subscriber: Subscriber | None = None, followed: list[list] | None = None
) -> str:
    """The HTML `subscriber` (or a reader following `followed`) gets, links filled in."""
    if subscriber is not None:
        followed = followed_set(subscriber.follows.all(), language=subscriber.language)
        values = recipient_values(subscriber=subscriber, newsletter=edition.newsletter)
        appeal = _appeal_for(subscriber.email)
    else:
        values = sample_values(newsletter=edition.newsletter)
        appeal = None
    rendered = render_edition_email(edition=edition, followed=followed or [], appeal=appeal)
    return substitute(rendered.html, values)
