"""Template tags for the signup form that sits in every page's footer."""

from __future__ import annotations

from django import template
from django.conf import settings

from subscriptions import selectors, services

register = template.Library()


@register.inclusion_tag("subscriptions/_signup_form.html")
def signup_form(source: str = "footer", form=None) -> dict:
    """The signup form, with the hash of the consent wording it shows (stored once per version)."""
    return {
        "NEWSROOM_NAME": settings.NEWSROOM_NAME,
        "source": source,
        "newsletters": list(selectors.active_newsletters()),
        "consent_version": services.consent_version_shown(),
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
