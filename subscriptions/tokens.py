"""Signed, per-subscriber tokens for links in emails (no login needed)."""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse

UNSUBSCRIBE = "subscriptions.unsubscribe"
PREFERENCES = "subscriptions.preferences"
CONFIRM = "subscriptions.confirm"

# RFC 8058 links must keep working long after the email was sent.
UNSUBSCRIBE_MAX_AGE = 60 * 60 * 24 * 90
PREFERENCES_MAX_AGE = 60 * 60 * 24 * 90


def make_token(purpose: str, *, subscriber_id: int, newsletter_id: int | None = None) -> str:
    payload = {"s": subscriber_id}
    if newsletter_id is not None:
        payload["n"] = newsletter_id
    return signing.dumps(payload, salt=purpose, compress=True)


def read_token(purpose: str, token: str, *, max_age: int) -> dict:
    """Return the payload; raise signing.BadSignature (or SignatureExpired) otherwise."""
    return signing.loads(token, salt=purpose, max_age=max_age)


def unsubscribe_url(*, subscriber, newsletter=None) -> str:
    token = make_token(
        UNSUBSCRIBE,
        subscriber_id=subscriber.pk,
        newsletter_id=newsletter.pk if newsletter else None,
    )
    return settings.SITE_URL + reverse("subscriptions:unsubscribe", kwargs={"token": token})


def preferences_url(*, subscriber) -> str:
    token = make_token(PREFERENCES, subscriber_id=subscriber.pk)
    return settings.SITE_URL + reverse("subscriptions:preferences", kwargs={"token": token})


def list_unsubscribe_headers(*, subscriber, newsletter=None) -> dict[str, str]:
    """RFC 2369 List-Unsubscribe with RFC 8058 one-click POST."""
    return {
        "List-Unsubscribe": (
            f"<{unsubscribe_url(subscriber=subscriber, newsletter=newsletter)}>, "
            f"<mailto:{settings.UNSUBSCRIBE_MAILTO}?subject=unsubscribe>"
        ),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
