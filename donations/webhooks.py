"""Stripe's webhook: verify, store once, answer at once, process in a task.

docs.stripe.com/webhooks: the signature is checked on the raw body; each event is
stored under its unique id (a redelivery is a no-op that still answers 200); a 2xx
goes back before any work is done, because Stripe retries slow endpoints; event types
we do not handle are answered 200 so Stripe does not retry them for days.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from donations import services, stripe_api
from donations.models import StripeEvent

logger = logging.getLogger(__name__)


def _checkout_session(obj: dict, event: dict) -> None:
    services.gift_apply_checkout_session(session=obj, event_type=event["type"])


def _invoice_paid(obj: dict, event: dict) -> None:
    services.gift_apply_invoice_paid(invoice=obj)


def _invoice_payment_failed(obj: dict, event: dict) -> None:
    services.plan_record_payment_failed(invoice=obj)


def _subscription(obj: dict, event: dict) -> None:
    services.plan_apply_subscription(subscription=obj, event_created=event.get("created") or 0)


def _charge_refunded(obj: dict, event: dict) -> None:
    services.gift_apply_charge_refunded(charge=obj)


def _dispute_created(obj: dict, event: dict) -> None:
    services.gift_flag_dispute(dispute=obj)


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
    except services.WaitingFor as waiting:
        update.update(outcome=StripeEvent.Outcome.WAITING, waiting_for=waiting.stripe_id, error="")
    except Exception:
        update.update(outcome=StripeEvent.Outcome.FAILED, error=traceback.format_exc()[-4000:])
        StripeEvent.objects.filter(pk=event_id).update(**update)
        raise
    StripeEvent.objects.filter(pk=event_id).update(**update)
    return update["outcome"]


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """POST /webhooks/stripe/: 400 for a bad signature, 200 for everything verified."""
    try:
        event = stripe_api.webhook_event_construct(
            payload=request.body, signature=request.headers.get("Stripe-Signature", "")
        )
    except (stripe_api.SignatureVerificationError, ValueError):
        # ValueError also covers a body that is not UTF-8 JSON.
        return HttpResponse("Invalid signature.", status=400, content_type="text/plain")
    if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
        return HttpResponse("Not an event.", status=400, content_type="text/plain")
    stored, created = stripe_event_store(event=event)
    if created and stored.outcome == StripeEvent.Outcome.RECEIVED:
        from donations.tasks import stripe_event_process_task

        stripe_event_process_task.delay_on_commit(stored.pk)
    return HttpResponse("ok", content_type="text/plain")


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
