"""Checkout: a pending gift and the Stripe Checkout Session that asks for it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from donations import stripe_api
from donations.models import Frequency, Gift
from donations.money import fee_cents
from donations.services.appeals import appeal_count
from newsroom.links import absolute

logger = logging.getLogger(__name__)

INTERVALS = {Frequency.MONTHLY: "month", Frequency.ANNUAL: "year"}


class CheckoutUnavailable(Exception):
    """Stripe could not open a Checkout Session; nothing was charged."""


@dataclass(frozen=True)
class GiftRequest:
    amount_cents: int
    frequency: str
    email: str
    cover_fee: bool = False
    name: str = ""
    anonymous: bool = False
    dedication: str = ""
    honoree_name: str = ""
    honoree_email: str = ""
    appeal_id: int | None = None
    placement: str = ""
    article_id: int | None = None
    utm: dict = field(default_factory=dict)
    # The language of the page the donor gave on ("" is the site's default).
    language: str = ""


def gift_metadata(*, gift: Gift) -> dict[str, str]:
    """What Stripe keeps of a pending gift, so a gift our database lost can be rebuilt whole.

    Metadata values are strings of at most 500 characters (docs.stripe.com/metadata).
    """
    metadata = {"gift_id": str(gift.pk), "frequency": gift.frequency, "language": gift.language}
    optional = {
        "appeal_id": str(gift.appeal_id or ""),
        "article_id": str(gift.article_id or ""),
        "placement": gift.placement,
        "dedication": gift.dedication,
        "honoree_name": gift.honoree_name if gift.dedication else "",
        "honoree_email": gift.honoree_email if gift.dedication else "",
        **{key: str(value) for key, value in (gift.utm or {}).items() if key.startswith("utm_")},
    }
    metadata.update({key: value[:500] for key, value in optional.items() if value})
    return metadata


def checkout_params(*, gift: Gift) -> dict:
    """The Checkout Session for a pending gift (docs.stripe.com/api/checkout/sessions/create),
    its wording and return pages in the donor's language."""
    with translation.override(gift.language):
        return _checkout_params(gift=gift)


def _checkout_params(*, gift: Gift) -> dict:
    name = {"name": settings.NEWSROOM_NAME}
    recurring = gift.frequency in INTERVALS
    label = {
        Frequency.ONE_TIME: _("Gift to %(name)s") % name,
        Frequency.MONTHLY: _("Monthly gift to %(name)s") % name,
        Frequency.ANNUAL: _("Annual gift to %(name)s") % name,
    }[gift.frequency]

    def line(amount: int, title: str) -> dict:
        price: dict = {
            "currency": gift.currency,
            "unit_amount": amount,
            "product_data": {"name": title},
        }
        if recurring:
            price["recurring"] = {"interval": INTERVALS[gift.frequency]}
        return {"price_data": price, "quantity": 1}

    items = [line(gift.amount_cents - gift.fee_cents, label)]
    if gift.fee_cents:
        # A line of its own, so the donor sees the fee on Stripe's page before paying.
        items.append(line(gift.fee_cents, _("Processing fee, covered by you")))
    metadata = gift_metadata(gift=gift)
    params: dict = {
        "mode": "subscription" if recurring else "payment",
        "line_items": items,
        "customer_email": gift.donor_email,
        "client_reference_id": str(gift.pk),
        "metadata": metadata,
        "success_url": absolute(reverse("donations:thanks")) + "?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": absolute(reverse("donations:cancelled")),
    }
    if recurring:
        # Invoices copy the subscription's metadata (`subscription_details.metadata`),
        # so every installment leads back to this gift.
        params["subscription_data"] = {"metadata": metadata, "description": label}
    else:
        params["submit_type"] = "donate"
        # A customer is what the customer portal opens for "manage my giving".
        params["customer_creation"] = "always"
        params["payment_intent_data"] = {"metadata": metadata, "description": label}
    return params


def checkout_start(*, gift_request: GiftRequest) -> tuple[Gift, str]:
    """Record a pending gift, open a Stripe Checkout Session for it, return the gift and URL.

    The pending gift is committed before Stripe is called (its id is the session's
    metadata and the idempotency key), so this is deliberately not one transaction.
    """
    fee = fee_cents(gift_request.amount_cents) if gift_request.cover_fee else 0
    gift = Gift.objects.create(
        status=Gift.Status.PENDING,
        frequency=gift_request.frequency,
        amount_cents=gift_request.amount_cents + fee,
        fee_cents=fee,
        currency=settings.DONATION_CURRENCY,
        donor_email=gift_request.email,
        donor_name=gift_request.name,
        anonymous=gift_request.anonymous,
        dedication=gift_request.dedication,
        honoree_name=gift_request.honoree_name if gift_request.dedication else "",
        honoree_email=gift_request.honoree_email if gift_request.dedication else "",
        appeal_id=gift_request.appeal_id,
        placement=gift_request.placement,
        article_id=gift_request.article_id,
        utm=gift_request.utm,
        language=gift_request.language or settings.LANGUAGE_CODE,
    )
    try:
        session = stripe_api.checkout_session_create(
            params=checkout_params(gift=gift),
            idempotency_key=f"gift-{gift.pk}-checkout",
            language=gift.language,
        )
    except stripe_api.StripeError as exc:
        logger.warning("checkout session for gift %s failed: %s", gift.pk, exc)
        Gift.objects.filter(pk=gift.pk).update(status=Gift.Status.FAILED, error=str(exc)[:2000])
        raise CheckoutUnavailable(str(exc)) from exc
    Gift.objects.filter(pk=gift.pk).update(stripe_checkout_session_id=session["id"])
    gift.stripe_checkout_session_id = session["id"]
    if gift.appeal_id:
        appeal_count(appeal_id=gift.appeal_id, counter="checkouts_started")
    return gift, session["url"]
