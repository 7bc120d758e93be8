"""Stripe objects as webhooks deliver them (API version 2025-03-31 and later), trimmed
to the fields this app reads (docs.stripe.com/api)."""

from __future__ import annotations

import itertools
import time

_ids = itertools.count(1)


def event(
    type_: str, obj: dict, *, event_id: str | None = None, created: int | None = None
) -> dict:
    return {
        "id": event_id or f"evt_test_{next(_ids)}",
        "object": "event",
        "type": type_,
        "created": created or int(time.time()),
        "livemode": False,
        "api_version": "2025-03-31.basil",
        "data": {"object": obj},
    }


def checkout_session(
    gift,
    *,
    status: str = "complete",
    payment_status: str = "paid",
    payment_intent: str | None = "pi_test_1",
    subscription: str | None = None,
    invoice: str | None = None,
) -> dict:
    recurring = subscription is not None
    return {
        "id": gift.stripe_checkout_session_id,
        "object": "checkout.session",
        "mode": "subscription" if recurring else "payment",
        "status": status,
        "payment_status": payment_status,
        "amount_total": gift.amount_cents,
        "currency": "usd",
        "customer": "cus_test_1",
        "customer_email": gift.donor_email,
        "customer_details": {"email": gift.donor_email, "name": gift.donor_name},
        "client_reference_id": str(gift.pk),
        "metadata": {"gift_id": str(gift.pk), "frequency": gift.frequency},
        "payment_intent": None if recurring else payment_intent,
        "subscription": subscription,
        "invoice": invoice,
        "created": int(time.time()),
    }


def invoice(
    gift,
    *,
    invoice_id: str,
    subscription: str,
    amount: int | None = None,
    billing_reason: str = "subscription_cycle",
    paid: bool = True,
) -> dict:
    return {
        "id": invoice_id,
        "object": "invoice",
        "customer": "cus_test_1",
        "customer_email": gift.donor_email,
        "customer_name": gift.donor_name,
        "amount_paid": (amount or gift.amount_cents) if paid else 0,
        "amount_due": amount or gift.amount_cents,
        "currency": "usd",
        "billing_reason": billing_reason,
        "status": "paid" if paid else "open",
        "hosted_invoice_url": f"https://invoice.stripe.test/{invoice_id}",
        "status_transitions": {"paid_at": int(time.time()) if paid else None},
        "parent": {
            "type": "subscription_details",
            "subscription_details": {
                "subscription": subscription,
                "metadata": {"gift_id": str(gift.pk), "frequency": gift.frequency},
            },
        },
    }


def charge(*, payment_intent: str, amount: int, amount_refunded: int) -> dict:
    return {
        "id": f"ch_for_{payment_intent}",
        "object": "charge",
        "payment_intent": payment_intent,
        "amount": amount,
        "amount_refunded": amount_refunded,
        "refunded": amount_refunded >= amount,
    }


def subscription(
    gift,
    *,
    subscription_id: str,
    status: str = "active",
    amount: int = 2000,
    interval: str = "month",
    canceled_at: int | None = None,
) -> dict:
    return {
        "id": subscription_id,
        "object": "subscription",
        "customer": "cus_test_1",
        "status": status,
        "metadata": {"gift_id": str(gift.pk), "frequency": gift.frequency},
        "canceled_at": canceled_at,
        "ended_at": canceled_at,
        "items": {
            "data": [
                {
                    "price": {"unit_amount": amount, "recurring": {"interval": interval}},
                    "quantity": 1,
                }
            ]
        },
    }


def dispute(*, payment_intent: str) -> dict:
    return {
        "id": "dp_test_1",
        "object": "dispute",
        "payment_intent": payment_intent,
        "charge": f"ch_for_{payment_intent}",
        "reason": "fraudulent",
        "created": int(time.time()),
    }
