"""Template tags for the signup form that sits in every page's footer."""

from __future__ import annotations

import hashlib

from django import template
from django.conf import settings
from django.core.cache import cache

from subscriptions import selectors, services

register = template.Library()


def _consent_version() -> str:
    """The SHA-256 of the consent wording the form shows, stored (once) before it is shown.

    A stored version is never deleted (old consent records point at it), so once the
    cache says it is stored the database is not asked again; a changed wording has a
    new hash and is stored on its first showing.
    """
    text = services.consent_document()
    digest = hashlib.sha256(text.encode()).hexdigest()
    key = f"subscriptions:consent-stored:{digest}"
    if not cache.get(key):
        services.consent_text_store(text=text)
        cache.set(key, True, timeout=None)
    return digest


@register.inclusion_tag("subscriptions/_signup_form.html")
def signup_form(source: str = "footer", form=None) -> dict:
    """The signup form, with the hash of the consent wording it shows (stored once per version)."""
    return {
        "NEWSROOM_NAME": settings.NEWSROOM_NAME,
        "source": source,
        "newsletters": list(selectors.active_newsletters()),
        "consent_version": _consent_version(),
        "form": form,
        # After a refused submission, the boxes the reader had ticked stay ticked.
        "chosen": [str(v) for v in (form["newsletters"].value() or [])] if form else [],
    }


@register.simple_tag(takes_context=True)
def follow_target(context) -> dict:
    """What a follow button is for: the `category` or `topic` its include was given.

    `{% include ... with category=c %}` pushes its values as the top context dict, and the
    page's own `topic` (or `category`) sits below it; the explicit one must win.
    """
    for scope in (context.dicts[-1], context):
        topic = scope.get("topic")
        category = scope.get("category")
        if topic:
            return {"kind": "topic", "item": topic}
        if category:
            return {"kind": "category", "item": category}
    return {}
