"""Recover what lost webhooks missed, from Stripe's own records.

Stripe's event log (kept 30 days, docs.stripe.com/api/events/list) holds every event
the webhook should have delivered: each one the site never stored, or stored and never
processed, goes through the same store and handlers as a delivered one. Checkout
Sessions and paid invoices are then listed as well, and what waits or failed is retried.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone

from donations import stripe_api
from donations.models import Gift, StripeEvent
from donations.services.events import (
    HANDLERS,
    stripe_event_process,
    stripe_event_store,
    stripe_events_retry_waiting,
)
from donations.services.gifts import gift_apply_checkout_session, gift_apply_invoice_paid

logger = logging.getLogger(__name__)

# Stripe lists events of the last 30 days only (docs.stripe.com/api/events).
EVENTS_KEPT = timedelta(days=30)


class ReconcileWindowTooLong(ValueError):
    """The window reaches further back than Stripe keeps events."""


def _recover_events(*, created_gte: int) -> dict[str, int]:
    counts = {"events": 0, "events_stored": 0, "events_processed": 0, "events_failed": 0}
    listed = list(stripe_api.events_list(created_gte=created_gte, types=sorted(HANDLERS)))
    # Stripe lists newest first; applying oldest first leaves fewer events waiting.
    for event in sorted(listed, key=lambda event: event.get("created") or 0):
        counts["events"] += 1
        stored, created = stripe_event_store(event=event)
        counts["events_stored"] += created
        if stored.outcome != StripeEvent.Outcome.RECEIVED:
            continue  # processed, ignored, or waiting/failed (retried below)
        try:
            outcome = stripe_event_process(event_id=stored.pk)
        except Exception:
            logger.exception("Stripe event %s failed during reconcile", stored.stripe_id)
            counts["events_failed"] += 1
            continue
        counts["events_processed"] += outcome == StripeEvent.Outcome.PROCESSED
    return counts


def _recover_sessions_and_invoices(*, created_gte: int) -> dict[str, int]:
    counts = {"sessions": 0, "invoices": 0, "recovered": 0}
    for session in stripe_api.checkout_sessions_list(created_gte=created_gte):
        counts["sessions"] += 1
        done = session.get("status") == "expired" or (
            session.get("status") == "complete" and session.get("payment_status") == "paid"
        )
        if not done:
            continue
        was_given = Gift.objects.filter(
            stripe_checkout_session_id=session["id"], paid_at__isnull=False
        ).exists()
        gift = gift_apply_checkout_session(session=session, event_type="reconcile")
        if gift is not None and gift.paid_at and not was_given:
            counts["recovered"] += 1
    for invoice in stripe_api.invoices_list(created_gte=created_gte, status="paid"):
        counts["invoices"] += 1
        was_given = Gift.objects.filter(
            stripe_invoice_id=invoice["id"], paid_at__isnull=False
        ).exists()
        gift = gift_apply_invoice_paid(invoice=invoice)
        if gift is not None and not was_given:
            counts["recovered"] += 1
    return counts


def stripe_reconcile(*, since: timedelta) -> dict[str, int]:
    """Apply every event, payment and installment of the last `since` that the site missed.

    Raises ReconcileWindowTooLong past Stripe's 30 days of events.
    """
    if since > EVENTS_KEPT:
        raise ReconcileWindowTooLong(
            f"Stripe keeps events for {EVENTS_KEPT.days} days only; "
            f"ask for {EVENTS_KEPT.days}d or less."
        )
    created_gte = int((timezone.now() - since).timestamp())
    # A gift once paid keeps its paid_at (refunds included), so the count only grows.
    paid_before = Gift.objects.filter(paid_at__isnull=False).count()
    counts = _recover_events(created_gte=created_gte)
    counts.update(_recover_sessions_and_invoices(created_gte=created_gte))
    counts["retried"] = stripe_events_retry_waiting()
    counts["recovered"] = Gift.objects.filter(paid_at__isnull=False).count() - paid_before
    return counts
