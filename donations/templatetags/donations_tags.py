from __future__ import annotations

from urllib.parse import urlencode

from django import template
from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse

from donations import reader_state, selectors
from donations.models import Appeal, Placement
from donations.money import format_cents
from newsroom import fragments
from newsroom.links import absolute

register = template.Library()

# The placements a page's slots can ask for (the donate page's hero is read by its view).
WEB_SLOTS = [Placement.SITE_BANNER, Placement.IN_ARTICLE, Placement.AFTER_ARTICLE]
# Placement.values builds its list on every access; a slot asks once per paragraph.
_PLACEMENTS = frozenset(Placement.values)


@register.filter
def money(cents: int | None, currency: str | None = None) -> str:
    """25 00 cents -> "$25"; with cents when there are any."""
    return "" if cents in (None, "") else format_cents(int(cents), currency)


@register.filter
def money_exact(cents: int | None, currency: str | None = None) -> str:
    return "" if cents in (None, "") else format_cents(int(cents), currency, exact=True)


def click_url(appeal: Appeal, placement: str, **extra) -> str:
    params = {"placement": placement, **{k: v for k, v in extra.items() if v}}
    return reverse("donations:appeal_click", args=[appeal.pk]) + "?" + urlencode(params)


def pixel_url(appeal: Appeal, placement: str) -> str:
    return reverse("donations:appeal_seen", args=[appeal.pk]) + "?" + urlencode({"p": placement})


def _appeal_context(appeal: Appeal, placement: str, *, article=None, raised: int) -> dict:
    frequency = appeal.default_frequency
    return {
        "appeal": appeal,
        "placement": placement,
        "article_id": getattr(article, "pk", "") or "",
        "frequency": frequency,
        "frequency_word": {"one_time": "once", "monthly": "monthly", "annual": "every year"}[
            frequency
        ],
        "amounts": [
            {"cents": cents, "label": format_cents(cents)}
            for cents in appeal.amounts_for(frequency)
            if settings.DONATION_MIN_CENTS <= int(cents) <= settings.DONATION_MAX_CENTS
        ][:4],
        "raised_cents": raised,
        "percent": min(100, round(raised * 100 / appeal.goal_cents)) if appeal.goal_cents else 0,
        "click_url": reverse("donations:appeal_click", args=[appeal.pk]),
        "pixel_url": pixel_url(appeal, placement),
        "dismiss_url": reverse("donations:appeal_dismiss", args=[appeal.pk]),
    }


@register.simple_tag(takes_context=True)
def appeal_slot(context, placement: str, article=None, paragraph: int | None = None) -> str:
    """Render the appeal chosen for `placement` (after `paragraph` for in-article ones).

    The choice depends only on the appeals running and the reader's signed state
    cookie, and cached pages vary on that cookie's key (`selectors.reader_state_key`),
    so a cached page never shows a reader an appeal they dismissed. The impression is
    counted by the appeal's beacon image, not here, because this runs only on a
    page-cache miss.
    """
    if placement not in _PLACEMENTS or placement == Placement.NEWSLETTER:
        return ""
    request = context.get("request")
    memo = getattr(request, "_donations_appeals", None) if request is not None else None
    if memo is None:
        memo = {}
        if request is not None:
            request._donations_appeals = memo
    if placement not in memo:
        if "_running" not in memo:
            # Every slot a page may have, from the cache in one round trip.
            memo["_running"] = selectors.active_appeals_in(WEB_SLOTS)
        state = reader_state.read(request) if request is not None else reader_state.ReaderState()
        memo[placement] = selectors.appeal_for_reader(
            placement=placement, state=state, running=memo["_running"].get(placement)
        )
    appeal = memo[placement]
    if appeal is None:
        return ""
    if placement == Placement.IN_ARTICLE:
        try:
            if int(paragraph or 0) != appeal.after_paragraph:
                return ""
        except (TypeError, ValueError):
            return ""
    needs_css = not memo.get("_css")
    memo["_css"] = True
    raised = selectors.appeal_raised_cents(appeal) if appeal.goal_cents else 0
    next_url = request.get_full_path() if request is not None else "/"
    article = article or None
    # The rendering depends on nothing else: kept for the content version, which moves
    # when an appeal is saved (services.appeals.appeal_cache_clear). The reader's
    # state chose the appeal above and is not part of what is rendered.
    article_id = getattr(article, "pk", None)
    key = ("appeal", placement, appeal.pk, article_id, raised, needs_css, next_url)
    return fragments.cached(
        request,
        key,
        lambda: render_to_string(
            "donations/_appeal.html",
            {
                **_appeal_context(appeal, placement, article=article, raised=raised),
                "next": next_url,
                "needs_css": needs_css,
            },
        ),
    )


@register.simple_tag
def appeal_email_urls(appeal: Appeal) -> dict:
    """Absolute links for an appeal inside an email: the click-through and the beacon."""
    click = click_url(
        appeal,
        Placement.NEWSLETTER,
        frequency=appeal.default_frequency,
        utm_source="newsletter",
        utm_medium="email",
        utm_campaign=f"appeal-{appeal.pk}",
    )
    return {
        "click": absolute(click),
        "pixel": absolute(pixel_url(appeal, Placement.NEWSLETTER)),
        "donate": absolute(reverse("donations:donate")),
    }
