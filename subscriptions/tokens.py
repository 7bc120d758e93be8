"""Signed, per-subscriber tokens for links in emails (no login needed).

Each token is `django.core.signing` output: HMAC-SHA256 under SECRET_KEY with a salt per
purpose, so a token made for one purpose (confirm) is refused for another (unsubscribe),
and nobody without the key can make one. The payload carries the subscriber's id and a
fingerprint of the address, so a token cannot be turned against another address, even one
that later gets the same row id.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.crypto import salted_hmac

from newsroom.links import absolute

UNSUBSCRIBE = "subscriptions.unsubscribe"
PREFERENCES = "subscriptions.preferences"
CONFIRM = "subscriptions.confirm"

# RFC 8058 links must keep working long after the email was sent.
UNSUBSCRIBE_MAX_AGE = 60 * 60 * 24 * 90
PREFERENCES_MAX_AGE = 60 * 60 * 24 * 90
# Double opt-in links expire after a week (settings.SUBSCRIPTIONS_CONFIRM_MAX_AGE_DAYS).
CONFIRM_MAX_AGE = 60 * 60 * 24 * settings.SUBSCRIPTIONS_CONFIRM_MAX_AGE_DAYS

# 64 bits: enough to tell addresses apart, short in a URL.
FINGERPRINT_LENGTH = 16


def fingerprint(email: str) -> str:
    """A keyed digest of the address: ties a token to it without revealing it.

    Keyed with SECRET_KEY (HMAC) so that, unlike a plain hash, nobody can test a guessed
    address against a token they have seen.
    """
    normalised = email.strip().lower()
    return salted_hmac(
        "subscriptions.tokens.fingerprint", normalised, algorithm="sha256"
    ).hexdigest()[:FINGERPRINT_LENGTH]


def make_token(
    purpose: str,
    *,
    subscriber_id: int,
    newsletter_id: int | None = None,
    email: str | None = None,
) -> str:
    payload: dict[str, int | str] = {"s": subscriber_id}
    if newsletter_id is not None:
        payload["n"] = newsletter_id
    if email is not None:
        payload["e"] = fingerprint(email)
    return signing.dumps(payload, salt=purpose, compress=True)


def read_token(purpose: str, token: str, *, max_age: int) -> dict:
    """Return the payload; raise signing.BadSignature (or SignatureExpired) otherwise."""
    payload = signing.loads(token, salt=purpose, max_age=max_age)
    if not isinstance(payload, dict) or not isinstance(payload.get("s"), int):
        raise signing.BadSignature("token payload has no subscriber")
    return payload


def confirm_url(*, subscriber) -> str:
    token = make_token(CONFIRM, subscriber_id=subscriber.pk, email=subscriber.email)
    return absolute(reverse("subscriptions:confirm", kwargs={"token": token}))


def unsubscribe_url(*, subscriber, newsletter=None) -> str:
    token = make_token(
        UNSUBSCRIBE,
        subscriber_id=subscriber.pk,
        newsletter_id=newsletter.pk if newsletter else None,
        email=subscriber.email,
    )
    return absolute(reverse("subscriptions:unsubscribe", kwargs={"token": token}))


def preferences_url(*, subscriber) -> str:
    token = make_token(PREFERENCES, subscriber_id=subscriber.pk, email=subscriber.email)
    return absolute(reverse("subscriptions:preferences", kwargs={"token": token}))


def list_unsubscribe_headers(*, subscriber, newsletter=None) -> dict[str, str]:
    """RFC 2369 List-Unsubscribe with RFC 8058 one-click POST."""
    return {
        "List-Unsubscribe": (
            f"<{unsubscribe_url(subscriber=subscriber, newsletter=newsletter)}>, "
            f"<mailto:{settings.UNSUBSCRIBE_MAILTO}?subject=unsubscribe>"
        ),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
