"""Leaving: unsubscribing, the suppression list and forgetting a reader."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from newsroom import audit
from subscriptions import appeals
from subscriptions.models import (
    ConsentRecord,
    Newsletter,
    Subscriber,
    Subscription,
    Suppression,
    TrackingEvent,
    email_hash,
)
from subscriptions.services.consent import RequestMeta, _record

logger = logging.getLogger(__name__)


def subscription_unsubscribe(
    *, subscriber: Subscriber, newsletter: Newsletter | None = None, meta: RequestMeta
) -> int:
    """Leave one newsletter, or all of them; at once, idempotent. Returns how many ended."""
    now = timezone.now()
    ended = 0
    with transaction.atomic():
        subscriptions = subscriber.subscriptions.select_for_update().exclude(
            status=Subscription.Status.UNSUBSCRIBED
        )
        if newsletter is not None:
            subscriptions = subscriptions.filter(newsletter=newsletter)
        for subscription in subscriptions.select_related("newsletter"):
            subscription.status = Subscription.Status.UNSUBSCRIBED
            subscription.unsubscribed_at = now
            subscription.save(update_fields=["status", "unsubscribed_at"])
            _record(
                subscriber=subscriber,
                newsletter=subscription.newsletter,
                action=ConsentRecord.Action.UNSUBSCRIBE,
                meta=meta,
            )
            ended += 1
    return ended


def unsubscribe_by_mail(
    *, sender: str, recipients: list[str], sender_verified: bool, esp_name: str
) -> int:
    """A mail to UNSUBSCRIBE_MAILTO unsubscribes its sender from every newsletter (RFC 2369).

    Only when the receiving ESP vouches for the sender (SPF or DKIM of the sender's
    domain): a From line alone is anyone's to write. Returns how many subscriptions ended.
    """
    if settings.UNSUBSCRIBE_MAILTO.lower() not in [r.lower() for r in recipients]:
        return 0
    if not sender_verified:
        logger.info("an unsubscribe mail whose sender the ESP could not verify was ignored")
        return 0
    subscriber = Subscriber.objects.filter(email__iexact=sender).first()
    if subscriber is None:
        return 0
    return subscription_unsubscribe(
        subscriber=subscriber, meta=RequestMeta(source=f"mailto:{esp_name}")
    )


def suppression_add(*, email: str, reason: str) -> Suppression:
    """Put an address on the suppression list (by hash); the first reason given stays."""
    digest = email_hash(email)
    try:
        with transaction.atomic():
            suppression, _ = Suppression.objects.get_or_create(
                email_sha256=digest, defaults={"reason": reason}
            )
    except IntegrityError:
        suppression = Suppression.objects.get(email_sha256=digest)
    return suppression


def suppression_remove(*, suppression: Suppression, actor: audit.Actor | None, why: str) -> bool:
    """Take an address off the suppression list, recording who did it, when and why.

    Returns False when it was already gone (two staff at once): nothing is recorded twice.
    """
    with transaction.atomic():
        removed, _ = Suppression.objects.filter(pk=suppression.pk).delete()
        if not removed:
            return False
        audit.audit_record(
            action=audit.Action.SUPPRESSION_REMOVE,
            actor=actor,
            obj=suppression,
            details={
                "email_sha256": suppression.email_sha256,
                "reason": suppression.reason,
                "suppressed_at": suppression.created_at.isoformat(),
                "why": why,
            },
        )
    return True


def subscriber_delete(*, subscriber: Subscriber, actor: audit.Actor | None, by: str) -> None:
    """Forget the reader: only the hash of the address stays, so no email goes to it again.

    Gifts and ended plans under the address are anonymised, not deleted (tax records);
    a plan still running at Stripe is left as it is, for the reader to cancel.
    `by` is "reader" (their own "delete my data", `actor` None: the reader's address and
    IP are what is being forgotten) or "staff" (the admin, `actor` the staff member).
    """
    with transaction.atomic():
        appeals.reader_gifts_anonymise(email=subscriber.email, actor=actor, by=by)
        # The audit entry names the reader by id and hash only, committed with the deletion.
        audit.subscriber_deletion_record(subscriber=subscriber, actor=actor, by=by)
        suppression_add(email=subscriber.email, reason=Suppression.Reason.DELETED)
        # Tracking events name the address in clear; they go with the rest.
        TrackingEvent.objects.filter(recipient__iexact=subscriber.email).delete()
        # Subscriptions, follows and consent records cascade; deliveries keep no address.
        subscriber.delete()
