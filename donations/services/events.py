"""Stripe events: stored once under their unique id, then processed by a dict of handlers.

docs.stripe.com/webhooks: a redelivered event is stored once (the unique Stripe id),
each type we handle maps to one service, and the outcome and any error are recorded
on the stored event; types we do not handle are stored as ignored.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from donations.models import StripeEvent
from donations.services.gifts import (
    WaitingFor,
    gift_apply_charge_refunded,
    gift_apply_checkout_session,
    gift_apply_invoice_paid,
    gift_flag_dispute,
    plan_apply_subscription,
    plan_record_payment_failed,
)

logger = logging.getLogger(__name__)


def _checkout_session(obj: dict, event: dict) -> None:
    gift_apply_checkout_session(session=obj, event_type=event["type"])


def _invoice_paid(obj: dict, event: dict) -> None:
    gift_apply_invoice_paid(invoice=obj)


def _invoice_payment_failed(obj: dict, event: dict) -> None:
    plan_record_payment_failed(invoice=obj)


def _subscription(obj: dict, event: dict) -> None:
    plan_apply_subscription(subscription=obj, event_created=event.get("created") or 0)


def _charge_refunded(obj: dict, event: dict) -> None:
    gift_apply_charge_refunded(charge=obj)


def _dispute_created(obj: dict, event: dict) -> None:
    gift_flag_dispute(dispute=obj)


HANDLERS: dict[str, Callable[[dict, dict], None]] = {
    "checkout.session.completed": _checkout_session,
    "checkout.session.async_payment_succeeded": _checkout_session,
    "checkout.session.async_payment_failed": _checkout_session,
    "checkout.session.expired": _checkout_session,
    "invoice.paid": _invoice_paid,
    "invoice.payment_failed": _invoice_payment_failed,
    "customer.subscription.updated": _subscription,
    "customer.subscription.deleted": _subscription,
    "charge.refunded": _charge_refunded,
    "charge.dispute.created": _dispute_created,
}


def stripe_event_store(*, event: dict) -> tuple[StripeEvent, bool]:
    """Store a verified event under its Stripe id; (event, False) when it was already stored."""
    handled = event["type"] in HANDLERS
    try:
        with transaction.atomic():
            stored = StripeEvent.objects.create(
                stripe_id=event["id"],
                type=event["type"],
                livemode=bool(event.get("livemode")),
                payload=event,
                outcome=StripeEvent.Outcome.RECEIVED if handled else StripeEvent.Outcome.IGNORED,
                processed_at=None if handled else timezone.now(),
            )
    except IntegrityError:
        return StripeEvent.objects.get(stripe_id=event["id"]), False
    return stored, True


def stripe_event_process(*, event_id: int) -> str:
    """Run an event's handler and record the outcome (and error) on the stored event."""
    event = StripeEvent.objects.get(pk=event_id)
    if event.outcome in {StripeEvent.Outcome.PROCESSED, StripeEvent.Outcome.IGNORED}:
        return event.outcome
    handler = HANDLERS.get(event.type)
    update: dict = {"attempts": F("attempts") + 1, "processed_at": timezone.now()}
    try:
        if handler is None:
            update.update(outcome=StripeEvent.Outcome.IGNORED, error="")
        else:
            handler(event.payload["data"]["object"], event.payload)
            update.update(outcome=StripeEvent.Outcome.PROCESSED, error="", waiting_for="")
    except WaitingFor as waiting:
        update.update(outcome=StripeEvent.Outcome.WAITING, waiting_for=waiting.stripe_id, error="")
    except Exception:
        update.update(outcome=StripeEvent.Outcome.FAILED, error=traceback.format_exc()[-4000:])
        StripeEvent.objects.filter(pk=event_id).update(**update)
        raise
    StripeEvent.objects.filter(pk=event_id).update(**update)
    return update["outcome"]


def stripe_events_retry_waiting() -> int:
    """Process again the events still waiting or failed (the daily reconcile calls this)."""
    retried = 0
    pending = StripeEvent.objects.filter(
        outcome__in=[StripeEvent.Outcome.WAITING, StripeEvent.Outcome.FAILED]
    ).values_list("pk", flat=True)
    for event_id in pending:
        try:
            stripe_event_process(event_id=event_id)
        except Exception:
            logger.exception("Stripe event %s failed again", event_id)
        retried += 1
    return retried
