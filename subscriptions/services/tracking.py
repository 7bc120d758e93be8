"""ESP tracking events: stored once, then applied through a dict of event type -> handler."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from newsroom.outbox import outbox_enqueue
from newsroom.parsing import parse_int
from subscriptions.digest.ledger import parse_reader_key
from subscriptions.models import (
    Delivery,
    DeliveryBatch,
    Edition,
    Subscriber,
    Suppression,
    TrackingEvent,
)
from subscriptions.services.consent import RequestMeta
from subscriptions.services.leaving import subscription_unsubscribe, suppression_add
from subscriptions.services.signup import normalize_email

logger = logging.getLogger(__name__)

# Soft bounces (anymail "deferred") suppress the address after this many in this window.
SOFT_BOUNCE_LIMIT = 3
SOFT_BOUNCE_WINDOW = timedelta(days=30)


def _json_safe(value) -> dict:
    if hasattr(value, "lists"):  # a QueryDict from a form-encoded webhook
        value = {key: values if len(values) > 1 else values[0] for key, values in value.lists()}
    try:
        data = json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        data = str(value)
    return data if isinstance(data, dict) else {"event": data}


def _derived_event_id(*, event, esp_name: str) -> str:
    """A stable id for ESPs whose events carry none (e.g. Postmark deliveries)."""
    parts = [
        esp_name,
        str(event.event_type),
        str(event.message_id or ""),
        normalize_email(event.recipient or ""),
        event.timestamp.isoformat() if event.timestamp else "",
        str(event.description or ""),
        str(event.mta_response or ""),
    ]
    return "derived:" + hashlib.sha256("|".join(parts).encode()).hexdigest()


# The task that applies a stored event; queued through the outbox by name.
TRACKING_TASK = "subscriptions.tracking_event_process"


def tracking_event_record(*, event, esp_name: str) -> TrackingEvent | None:
    """Store an anymail AnymailTrackingEvent once, with the task that applies it.

    None when it was already stored. The event and its outbox row commit together: a
    broker that is down delays the bounce's suppression, never loses it (the ESP's
    redelivery would find the event stored and do nothing).
    """
    event_id = (
        str(event.event_id) if event.event_id else _derived_event_id(event=event, esp_name=esp_name)
    )
    metadata = event.metadata or {}
    edition_id = metadata.get("edition_id")
    edition = None
    if pk := parse_int(edition_id, minimum=1):
        edition = Edition.objects.filter(pk=pk).first()
    recipient = normalize_email(event.recipient or "")[:254]
    batch, delivery = (
        _reader_copy(edition=edition, named=metadata.get("delivery_id"), recipient=recipient)
        if edition is not None
        else (None, None)
    )
    try:
        with transaction.atomic():
            stored, created = TrackingEvent.objects.get_or_create(
                esp_event_id=event_id[:200],
                defaults={
                    "event_type": str(event.event_type)[:30],
                    "esp_name": esp_name[:40],
                    "recipient": recipient,
                    "message_id": str(event.message_id or "")[:200],
                    "edition": edition,
                    "batch": batch,
                    "delivery": delivery,
                    "reject_reason": str(event.reject_reason or "")[:40],
                    "description": str(event.description or event.mta_response or ""),
                    "occurred_at": event.timestamp or timezone.now(),
                    "payload": _json_safe(event.esp_event),
                },
            )
            if created:
                outbox_enqueue(task=TRACKING_TASK, kwargs={"tracking_event_id": stored.pk})
    except IntegrityError:  # the same event arrived twice at the same moment
        return None
    return stored if created else None


def _reader_copy(
    *, edition: Edition, named: object, recipient: str
) -> tuple[DeliveryBatch | None, Delivery | None]:
    """The batch and the reader's own row (if any) of the copy an event is about.

    Only this edition's copy to this recipient: metadata is the ESP's echo of what we
    sent, but a stray key must not attach an event to another reader. `named` is the
    reader key (ledger.reader_key), or a Delivery's id in mail sent before the ledger.
    """
    parsed = parse_reader_key(named)
    if parsed is None:
        pk = parse_int(named, minimum=1)
        if pk is None:
            return None, None
        delivery = (
            Delivery.objects.filter(pk=pk, edition=edition, subscriber__email=recipient)
            .select_related("batch")
            .first()
        )
        return (delivery.batch if delivery is not None else None), delivery
    batch_id, subscriber_id = parsed
    batch = DeliveryBatch.objects.filter(pk=batch_id, edition=edition).first()
    if batch is None or subscriber_id not in batch.readers:
        return None, None
    if not Subscriber.objects.filter(pk=subscriber_id, email=recipient).exists():
        return None, None
    delivery = Delivery.objects.filter(edition=edition, subscriber_id=subscriber_id).first()
    return batch, delivery


def _suppress_hard(stored: TrackingEvent) -> str:
    reason = (
        Suppression.Reason.COMPLAINT
        if stored.reject_reason == "spam"
        else Suppression.Reason.HARD_BOUNCE
    )
    suppression_add(email=stored.recipient, reason=reason)
    return f"suppressed ({reason})"


def _suppress_complaint(stored: TrackingEvent) -> str:
    suppression_add(email=stored.recipient, reason=Suppression.Reason.COMPLAINT)
    return "suppressed (complaint)"


def _count_soft_bounce(stored: TrackingEvent) -> str:
    recent = TrackingEvent.objects.filter(
        recipient=stored.recipient,
        event_type="deferred",
        occurred_at__gt=stored.occurred_at - SOFT_BOUNCE_WINDOW,
        occurred_at__lte=stored.occurred_at,
    ).count()
    if recent >= SOFT_BOUNCE_LIMIT:
        suppression_add(email=stored.recipient, reason=Suppression.Reason.SOFT_BOUNCES)
        return f"suppressed after {recent} soft bounces in 30 days"
    return f"soft bounce {recent} of {SOFT_BOUNCE_LIMIT}"


def _unsubscribe(stored: TrackingEvent) -> str:
    subscriber = Subscriber.objects.filter(email=stored.recipient).first()
    if subscriber is None:
        return "unsubscribed: no such subscriber"
    ended = subscription_unsubscribe(
        subscriber=subscriber, meta=RequestMeta(source=f"esp:{stored.esp_name}")
    )
    return f"unsubscribed from {ended} newsletter(s)"


# anymail's normalised event types (anymail.signals.EventType) -> what they change.
# bounced: anymail reports permanent failures as "bounced" and temporary ones as "deferred".
TRACKING_HANDLERS = {
    "bounced": _suppress_hard,
    "rejected": _suppress_hard,
    "complained": _suppress_complaint,
    "deferred": _count_soft_bounce,
    "unsubscribed": _unsubscribe,
}


def tracking_event_process(*, tracking_event_id: int) -> str:
    """Apply a stored tracking event to the subscriber; record what was done."""
    stored = TrackingEvent.objects.filter(pk=tracking_event_id).first()
    if stored is None or stored.processed_at is not None:
        return "already processed"
    handler = TRACKING_HANDLERS.get(stored.event_type)
    error = ""
    if handler is None:
        outcome = "stored"
    elif not stored.recipient:
        outcome = "ignored: no recipient"
    else:
        try:
            outcome = handler(stored)
        except Exception as exc:  # keep the error on the event for staff; the event stays stored
            logger.exception("tracking event %s failed", stored.pk)
            outcome, error = "failed", f"{exc.__class__.__name__}: {exc}"
    TrackingEvent.objects.filter(pk=stored.pk).update(
        processed_at=timezone.now(), outcome=outcome[:200], error=error
    )
    return outcome
