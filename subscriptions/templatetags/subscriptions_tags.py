"""Template tags for the signup form that sits in every page's footer."""

from __future__ import annotations

from django import template

from subscriptions import selectors, services

register = template.Library()


@register.inclusion_tag("subscriptions/_signup_form.html")
def signup_form(source: str = "footer", form=None) -> dict:
    """The signup form, with the hash of the consent wording it shows (stored once per version)."""
    return {
        "source": source,
        "newsletters": list(selectors.active_newsletters()),
        "consent_version": services.consent_text_current().sha256,
        "form": form,
    }
