"""Manage my giving: one-use sign-in links, and Stripe's customer portal."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone

from donations import selectors, stripe_api
from donations.models import ManageLink, UsedManageToken

MANAGE_SALT = "donations.manage-giving"
# Links of the signed form (which carried the email) hold a ":"; random tokens never do.
SIGNED_SEPARATOR = ":"
# How long a used or expired link's row is kept, so it is refused with its reason.
KEEP_SPENT = timedelta(days=1)


class ManageLinkInvalid(Exception):
    """A manage-giving link that is forged, expired or already used."""


def _hash(token: str) -> str:
    # The token is 256 random bits, so a plain digest cannot be reversed by guessing.
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def manage_token_make(*, email: str) -> str:
    """Issue a one-use link token for `email`: random, so it tells nothing about the donor."""
    now = timezone.now()
    ManageLink.objects.filter(expires_at__lt=now - KEEP_SPENT).delete()
    token = secrets.token_urlsafe(32)
    ManageLink.objects.create(
        token_hash=_hash(token),
        email=email.lower(),
        expires_at=now + timedelta(minutes=settings.DONATION_MANAGE_LINK_MINUTES),
    )
    return token


def _signed_read(token: str) -> tuple[str, str]:
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


def _link(token: str) -> ManageLink:
    link = ManageLink.objects.filter(token_hash=_hash(token)).first()
    if link is None:
        raise ManageLinkInvalid("This link is not valid.")
    if link.expires_at <= timezone.now():
        raise ManageLinkInvalid("This link has expired.")
    if link.used_at is not None:
        raise ManageLinkInvalid("This link has already been used.")
    return link


def manage_token_read(*, token: str) -> str:
    """The email a link stands for; ManageLinkInvalid when it cannot be used."""
    if SIGNED_SEPARATOR in token:
        return _signed_read(token)[0]
    return _link(token).email


def manage_token_use(*, token: str) -> str:
    """Spend a link (it works once) and return the donor's email."""
    if SIGNED_SEPARATOR in token:
        email, token_id = _signed_read(token)
        try:
            with transaction.atomic():
                UsedManageToken.objects.create(token_id=token_id)
        except IntegrityError as exc:  # two clicks at once: only one wins
            raise ManageLinkInvalid("This link has already been used.") from exc
        return email
    link = _link(token)
    # Two clicks at once: the update matches for only one of them.
    spent = ManageLink.objects.filter(pk=link.pk, used_at__isnull=True).update(
        used_at=timezone.now()
    )
    if not spent:
        raise ManageLinkInvalid("This link has already been used.")
    return link.email


def portal_url(*, email: str, return_url: str, language: str) -> str | None:
    """A Stripe customer portal session for the donor, in `language`, or None when Stripe
    has no customer."""
    customer = selectors.customer_id_for_email(email)
    if not customer:
        return None
    return stripe_api.billing_portal_session_create(
        customer=customer, return_url=return_url, language=language
    )["url"]
