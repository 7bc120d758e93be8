"""Manage my giving: one-use sign-in links, and Stripe's customer portal."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction

from donations import selectors, stripe_api
from donations.models import UsedManageToken

MANAGE_SALT = "donations.manage-giving"


class ManageLinkInvalid(Exception):
    """A manage-giving link that is forged, expired or already used."""


def manage_token_make(*, email: str) -> str:
    return signing.dumps({"e": email.lower(), "j": secrets.token_hex(12)}, salt=MANAGE_SALT)


def manage_token_read(*, token: str) -> tuple[str, str]:
    """The (email, token id) a link stands for; ManageLinkInvalid when it cannot be used."""
    try:
        payload = signing.loads(
            token, salt=MANAGE_SALT, max_age=settings.DONATION_MANAGE_LINK_MINUTES * 60
        )
    except signing.SignatureExpired as exc:
        raise ManageLinkInvalid("This link has expired.") from exc
    except signing.BadSignature as exc:
        raise ManageLinkInvalid("This link is not valid.") from exc
    if UsedManageToken.objects.filter(token_id=payload["j"]).exists():
        raise ManageLinkInvalid("This link has already been used.")
    return payload["e"], payload["j"]


def manage_token_use(*, token: str) -> str:
    """Spend a link (it works once) and return the donor's email."""
    email, token_id = manage_token_read(token=token)
    try:
        with transaction.atomic():
            UsedManageToken.objects.create(token_id=token_id)
    except IntegrityError as exc:  # two clicks at once: only one wins
        raise ManageLinkInvalid("This link has already been used.") from exc
    return email


def portal_url(*, email: str, return_url: str) -> str | None:
    """A Stripe customer portal session for the donor, or None when Stripe has no customer."""
    customer = selectors.customer_id_for_email(email)
    if not customer:
        return None
    return stripe_api.billing_portal_session_create(customer=customer, return_url=return_url)["url"]
