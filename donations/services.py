"""Writes of the donations app: keyword-only arguments, one transaction each.

Stripe is the truth about money (docs.stripe.com/webhooks): a gift becomes paid,
refunded or disputed only from what Stripe reports, through a webhook or through
`stripe_reconcile`. Every function that applies a Stripe object is idempotent and
does not depend on the order events arrive in: it finds our rows by Stripe ids (all
unique in the database), only moves a gift forward, and an event about a payment we
have not recorded yet waits (`WaitingFor`) and is replayed when that payment appears.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.mail import mail_admins
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from donations import selectors, stripe_api
from donations.models import (
    Appeal,
    Frequency,
    Gift,
    GivingStatement,
    PaymentFailureNotice,
    Placement,
    RecurringPlan,
    StripeEvent,
    UsedManageToken,
)
from donations.money import fee_cents, format_cents
from newsroom import mail
from newsroom.links import absolute

logger = logging.getLogger(__name__)

COUNTERS = ("impressions", "clicks", "checkouts_started")
COUNTER_SECONDS = 7 * 86_400
MANAGE_SALT = "donations.manage-giving"
UNPAID = (Gift.Status.PENDING, Gift.Status.FAILED, Gift.Status.ABANDONED)
INTERVALS = {Frequency.MONTHLY: "month", Frequency.ANNUAL: "year"}
FREQUENCY_OF_INTERVAL = {"month": Frequency.MONTHLY, "year": Frequency.ANNUAL}


class CheckoutUnavailable(Exception):
    """Stripe could not open a Checkout Session; nothing was charged."""


class RefundNotPossible(Exception):
    """The gift cannot be refunded (not paid, already refunded, or no Stripe payment)."""


class ManageLinkInvalid(Exception):
    """A manage-giving link that is forged, expired or already used."""


class WaitingFor(Exception):
    """The event is about a Stripe object we have not recorded yet; replay it when we do."""

    def __init__(self, stripe_id: str):
        super().__init__(f"waiting for {stripe_id}")
        self.stripe_id = stripe_id


def _from_timestamp(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if value else None


def _id(value) -> str | None:
    """A Stripe reference is an id, or the object itself when expanded."""
    if isinstance(value, dict):
        return value.get("id")
    return value or None


# --- appeals ---------------------------------------------------------------------


def _counter_key(appeal_id: int, counter: str) -> str:
    return f"donations:count:{counter}:{appeal_id}"


def appeal_count(*, appeal_id: int, counter: str) -> None:
    """Count one impression, click or checkout in the cache; the beat task adds it up."""
    if counter not in COUNTERS:
        raise ValueError(f"unknown counter {counter!r}")
    key = _counter_key(appeal_id, counter)
    # A week is many flushes (one a minute); the bound keeps stray keys from living forever.
    cache.add(key, 0, timeout=COUNTER_SECONDS)
    try:
        cache.incr(key)
    except ValueError:  # evicted between add() and incr()
        cache.set(key, 1, timeout=COUNTER_SECONDS)


def appeal_counters_flush() -> int:
    """Move the cached counters into the appeals' rows; return how many hits moved."""
    # One flush at a time: two overlapping ones would both subtract what they read.
    if not cache.add("donations:flush-lock", 1, timeout=55):
        return 0
    try:
        return _flush_counters()
    finally:
        cache.delete("donations:flush-lock")


def _flush_counters() -> int:
    recent = timezone.now() - timedelta(days=30)
    ids = Appeal.objects.filter(Q(ends_at__isnull=True) | Q(ends_at__gte=recent)).values_list(
        "pk", flat=True
    )
    keys = {_counter_key(pk, counter): (pk, counter) for pk in ids for counter in COUNTERS}
    moved = 0
    for key, value in cache.get_many(list(keys)).items():
        value = int(value or 0)
        if value <= 0:
            continue
        pk, counter = keys[key]
        # Take away only what we read: hits counted meanwhile stay for the next flush.
        cache.decr(key, value)
        try:
            Appeal.objects.filter(pk=pk).update(**{counter: F(counter) + value})
        except Exception:
            cache.incr(key, value)  # give the hits back rather than lose them
            raise
        moved += value
    return moved


def appeal_cache_clear() -> None:
    """Forget the cached lists of running appeals, and the cached pages showing them."""
    from newsroom.caching import content_changed

    cache.delete_many(
        [
            "donations:appeal-ids",
            *[f"donations:active:{placement}" for placement in Placement.values],
        ]
    )
    # Pages embed the chosen appeal; without this a changed appeal would show only
    # when the page cache expires (PAGE_CACHE_SECONDS).
    content_changed()


# --- checkout --------------------------------------------------------------------


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


def checkout_params(*, gift: Gift) -> dict:
    """The Checkout Session for a pending gift (docs.stripe.com/api/checkout/sessions/create)."""
    name = settings.NEWSROOM_NAME
    recurring = gift.frequency in INTERVALS
    label = {
        Frequency.ONE_TIME: f"Gift to {name}",
        Frequency.MONTHLY: f"Monthly gift to {name}",
        Frequency.ANNUAL: f"Annual gift to {name}",
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
        items.append(line(gift.fee_cents, "Processing fee, covered by you"))
    metadata = {"gift_id": str(gift.pk), "frequency": gift.frequency}
    if gift.appeal_id:
        metadata["appeal_id"] = str(gift.appeal_id)
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
    )
    try:
        session = stripe_api.checkout_session_create(
            params=checkout_params(gift=gift), idempotency_key=f"gift-{gift.pk}-checkout"
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


# --- applying what Stripe reports ------------------------------------------------


def _payment_details(*, payment_intent_id: str | None, invoice_id: str | None = None) -> dict:
    """The card's last four digits, the charge and its time, read from Stripe."""
    if not payment_intent_id and invoice_id:
        payment_intent_id = stripe_api.invoice_payment_intent_id(invoice_id=invoice_id)
    if not payment_intent_id:
        return {}
    intent = stripe_api.payment_intent_retrieve(payment_intent=payment_intent_id)
    details: dict = {
        "payment_intent_id": payment_intent_id,
        "customer_id": _id(intent.get("customer")) or "",
    }
    charge = intent.get("latest_charge")
    if isinstance(charge, dict):
        # Cards and bank debits alike keep `last4` under their type's name
        # (docs.stripe.com/api/charges/object#charge_object-payment_method_details).
        method = charge.get("payment_method_details") or {}
        details["charge_id"] = charge.get("id") or ""
        details["last4"] = (method.get(method.get("type") or "card") or {}).get("last4") or ""
        details["paid_at"] = _from_timestamp(charge.get("created"))
    return details


def _needs_details(**lookup) -> bool:
    """False once the gift's charge was read: a redelivered event costs no Stripe call."""
    return not Gift.objects.filter(**lookup).exclude(stripe_charge_id="").exists()


def _locked_gift_from_metadata(metadata: dict | None) -> Gift | None:
    gift_id = str((metadata or {}).get("gift_id") or "")
    if not gift_id.isdigit():
        return None
    return Gift.objects.select_for_update().filter(pk=int(gift_id)).first()


def _mark_paid(
    gift: Gift,
    *,
    paid_at: datetime | None,
    details: dict,
    invoice_id: str | None = None,
    customer_id: str = "",
) -> bool:
    """Record payment facts on a locked gift; True when it became paid just now."""
    payment_intent_id = details.get("payment_intent_id")
    if payment_intent_id and not gift.stripe_payment_intent_id:
        gift.stripe_payment_intent_id = payment_intent_id
        transaction.on_commit(lambda: _replay_waiting(payment_intent_id))
    if invoice_id and not gift.stripe_invoice_id:
        gift.stripe_invoice_id = invoice_id
    gift.stripe_charge_id = gift.stripe_charge_id or details.get("charge_id", "")
    gift.card_last4 = gift.card_last4 or details.get("last4", "")
    gift.stripe_customer_id = (
        gift.stripe_customer_id or customer_id or details.get("customer_id", "")
    )
    became_paid = gift.status in UNPAID
    if became_paid:
        gift.status = Gift.Status.PAID
        gift.paid_at = details.get("paid_at") or paid_at or timezone.now()
        gift.error = ""
    gift.save()
    if became_paid:
        gift_id = gift.pk
        transaction.on_commit(lambda: _after_paid(gift_id))
    return became_paid


def _after_paid(gift_id: int) -> None:
    from donations import tasks

    tasks.receipt_send_task.delay(gift_id)
    tasks.honoree_notify_task.delay(gift_id)


def _replay_waiting(stripe_id: str) -> None:
    from donations import tasks

    waiting = StripeEvent.objects.filter(
        outcome=StripeEvent.Outcome.WAITING, waiting_for=stripe_id
    ).values_list("pk", flat=True)
    for event_id in waiting:
        tasks.stripe_event_process_task.delay(event_id)


def _plan_for(
    *,
    subscription_id: str,
    origin: Gift | None,
    customer_id: str = "",
    email: str = "",
    name: str = "",
    amount_cents: int = 0,
    frequency: str = "",
) -> RecurringPlan:
    """The locked plan of a Stripe subscription, created from its first gift if new."""
    defaults = {
        "stripe_customer_id": customer_id or (origin.stripe_customer_id if origin else ""),
        "donor_email": origin.donor_email if origin else email,
        "donor_name": origin.donor_name if origin else name,
        "frequency": origin.frequency if origin else (frequency or Frequency.MONTHLY),
        "amount_cents": origin.amount_cents if origin else amount_cents,
        "currency": origin.currency if origin else settings.DONATION_CURRENCY,
        "appeal_id": origin.appeal_id if origin else None,
    }
    plan, _ = RecurringPlan.objects.get_or_create(
        stripe_subscription_id=subscription_id, defaults=defaults
    )
    plan = RecurringPlan.objects.select_for_update().get(pk=plan.pk)
    if customer_id and not plan.stripe_customer_id:
        plan.stripe_customer_id = customer_id
        plan.save(update_fields=["stripe_customer_id"])
    return plan


def _gift_from_session(session: dict, metadata: dict) -> Gift:
    """Re-create a gift our database lost, from the Checkout Session Stripe kept."""
    details = session.get("customer_details") or {}
    return Gift.objects.create(
        status=Gift.Status.PENDING,
        frequency=metadata.get("frequency") or Frequency.ONE_TIME,
        amount_cents=session.get("amount_total") or 0,
        currency=session.get("currency") or settings.DONATION_CURRENCY,
        donor_email=details.get("email") or session.get("customer_email") or "",
        donor_name=details.get("name") or "",
        stripe_checkout_session_id=session["id"],
    )


def gift_apply_checkout_session(*, session: dict, event_type: str) -> Gift | None:
    """Apply a Checkout Session (completed, async succeeded/failed, expired) to its gift."""
    metadata = session.get("metadata") or {}
    if "gift_id" not in metadata:
        return None  # a session some other product of the account opened
    paid = session.get("status") == "complete" and session.get("payment_status") == "paid"
    payment_intent_id = _id(session.get("payment_intent"))
    invoice_id = _id(session.get("invoice"))
    details: dict = {}
    if paid and _needs_details(stripe_checkout_session_id=session["id"]):
        details = _payment_details(payment_intent_id=payment_intent_id, invoice_id=invoice_id)
    with transaction.atomic():
        gift = Gift.objects.select_for_update().filter(
            stripe_checkout_session_id=session["id"]
        ).first() or _locked_gift_from_metadata(metadata)
        if gift is None:
            gift = _gift_from_session(session, metadata)
        gift.stripe_checkout_session_id = gift.stripe_checkout_session_id or session["id"]
        customer_id = _id(session.get("customer")) or ""
        gift.stripe_customer_id = gift.stripe_customer_id or customer_id
        subscription_id = _id(session.get("subscription"))
        if subscription_id:
            gift.plan = _plan_for(
                subscription_id=subscription_id, origin=gift, customer_id=customer_id
            )
            if paid and gift.plan.status == RecurringPlan.Status.INCOMPLETE:
                gift.plan.status = RecurringPlan.Status.ACTIVE
                gift.plan.save(update_fields=["status"])
        if paid:
            _mark_paid(
                gift,
                paid_at=timezone.now(),
                details=details,
                invoice_id=invoice_id,
                customer_id=customer_id,
            )
        elif event_type == "checkout.session.async_payment_failed" and gift.status in UNPAID:
            gift.status = Gift.Status.FAILED
            gift.error = "The bank payment failed."
        elif session.get("status") == "expired" and gift.status == Gift.Status.PENDING:
            gift.status = Gift.Status.ABANDONED
        gift.save()
    return gift


def _invoice_subscription(invoice: dict) -> tuple[str | None, dict]:
    """The subscription id and its metadata, wherever this API version puts them.

    Since 2025-03-31 they are under `parent.subscription_details`; before, at the top.
    """
    parent = (invoice.get("parent") or {}).get("subscription_details") or {}
    legacy = invoice.get("subscription_details") or {}
    subscription_id = _id(parent.get("subscription")) or _id(invoice.get("subscription"))
    metadata = parent.get("metadata") or legacy.get("metadata") or {}
    if not metadata:
        for line in (invoice.get("lines") or {}).get("data") or []:
            if line.get("metadata"):
                metadata = line["metadata"]
                break
    return subscription_id, metadata


def _invoice_payment_intent(invoice: dict) -> str | None:
    if invoice.get("payment_intent"):
        return _id(invoice["payment_intent"])
    for payment in (invoice.get("payments") or {}).get("data") or []:
        found = _id((payment.get("payment") or {}).get("payment_intent"))
        if found:
            return found
    return None


def gift_apply_invoice_paid(*, invoice: dict) -> Gift | None:
    """Record a paid installment of a recurring gift: one gift per invoice."""
    subscription_id, metadata = _invoice_subscription(invoice)
    amount = invoice.get("amount_paid") or 0
    if not subscription_id or "gift_id" not in metadata or amount <= 0:
        return None
    details: dict = {}
    if _needs_details(stripe_invoice_id=invoice["id"]):
        details = _payment_details(
            payment_intent_id=_invoice_payment_intent(invoice), invoice_id=invoice["id"]
        )
    paid_at = _from_timestamp((invoice.get("status_transitions") or {}).get("paid_at"))
    customer_id = _id(invoice.get("customer")) or ""
    with transaction.atomic():
        origin = _locked_gift_from_metadata(metadata)
        plan = _plan_for(
            subscription_id=subscription_id,
            origin=origin,
            customer_id=customer_id,
            email=invoice.get("customer_email") or "",
            name=invoice.get("customer_name") or "",
            amount_cents=amount,
            frequency=metadata.get("frequency", ""),
        )
        gift = Gift.objects.select_for_update().filter(stripe_invoice_id=invoice["id"]).first()
        if (
            gift is None
            and origin is not None
            and not origin.stripe_invoice_id
            and (invoice.get("billing_reason") == "subscription_create" or origin.status in UNPAID)
        ):
            gift = origin  # the first installment is the gift the donor started
        if gift is None:
            gift = Gift(
                status=Gift.Status.PENDING,
                frequency=plan.frequency,
                amount_cents=amount,
                # The covered fee carries over while the amount is unchanged.
                fee_cents=origin.fee_cents if origin and origin.amount_cents == amount else 0,
                currency=invoice.get("currency") or plan.currency,
                donor_email=plan.donor_email,
                donor_name=plan.donor_name,
                anonymous=origin.anonymous if origin else False,
            )
        gift.plan = plan
        _mark_paid(
            gift,
            paid_at=paid_at,
            details=details,
            invoice_id=invoice["id"],
            customer_id=customer_id,
        )
        if plan.status != RecurringPlan.Status.CANCELED:
            plan.status = RecurringPlan.Status.ACTIVE
            plan.save(update_fields=["status"])
    return gift


def plan_apply_subscription(*, subscription: dict, event_created: int) -> RecurringPlan | None:
    """Apply a subscription's state (status, amount, cancellation) to its plan."""
    metadata = subscription.get("metadata") or {}
    if "gift_id" not in metadata:
        return None
    items = (subscription.get("items") or {}).get("data") or []
    amount = sum(
        ((item.get("price") or {}).get("unit_amount") or 0) * (item.get("quantity") or 1)
        for item in items
    )
    interval = next(
        (
            ((item.get("price") or {}).get("recurring") or {}).get("interval")
            for item in items
            if (item.get("price") or {}).get("recurring")
        ),
        None,
    )
    with transaction.atomic():
        origin = _locked_gift_from_metadata(metadata)
        plan = _plan_for(
            subscription_id=subscription["id"],
            origin=origin,
            customer_id=_id(subscription.get("customer")) or "",
            amount_cents=amount,
            frequency=FREQUENCY_OF_INTERVAL.get(interval or "", ""),
        )
        if origin is not None and origin.plan_id is None:
            origin.plan = plan
            origin.save(update_fields=["plan"])
        if event_created < plan.stripe_state_at or plan.status == RecurringPlan.Status.CANCELED:
            return plan  # older news, or a cancelled subscription (Stripe never revives one)
        plan.stripe_state_at = event_created
        status = subscription.get("status")
        if status in {"canceled", "incomplete_expired"}:
            plan.status = RecurringPlan.Status.CANCELED
            plan.canceled_at = (
                _from_timestamp(subscription.get("ended_at") or subscription.get("canceled_at"))
                or timezone.now()
            )
        elif status in {"past_due", "unpaid"}:
            plan.status = RecurringPlan.Status.PAST_DUE
        elif status in {"active", "trialing"}:
            plan.status = RecurringPlan.Status.ACTIVE
        if amount > 0:
            plan.amount_cents = amount
        if interval in FREQUENCY_OF_INTERVAL:
            plan.frequency = FREQUENCY_OF_INTERVAL[interval]
        plan.save()
    return plan


def plan_record_payment_failed(*, invoice: dict) -> RecurringPlan | None:
    """Mark the plan past due and email the donor once for this invoice."""
    subscription_id, metadata = _invoice_subscription(invoice)
    if not subscription_id or "gift_id" not in metadata:
        return None
    with transaction.atomic():
        origin = _locked_gift_from_metadata(metadata)
        plan = _plan_for(
            subscription_id=subscription_id,
            origin=origin,
            customer_id=_id(invoice.get("customer")) or "",
            email=invoice.get("customer_email") or "",
            amount_cents=invoice.get("amount_due") or 0,
            frequency=metadata.get("frequency", ""),
        )
        if Gift.objects.filter(stripe_invoice_id=invoice["id"], paid_at__isnull=False).exists():
            return plan  # a retry already paid this invoice: nothing to ask
        if plan.status != RecurringPlan.Status.CANCELED:
            plan.status = RecurringPlan.Status.PAST_DUE
            plan.save(update_fields=["status"])
        notice, created = PaymentFailureNotice.objects.get_or_create(
            stripe_invoice_id=invoice["id"], defaults={"plan": plan}
        )
        if created:
            from donations import tasks

            hosted = invoice.get("hosted_invoice_url") or ""
            transaction.on_commit(lambda: tasks.card_update_notice_task.delay(notice.pk, hosted))
    return plan


def gift_apply_charge_refunded(*, charge: dict) -> Gift | None:
    """Record how much of a gift Stripe has refunded (the total so far, so replays agree)."""
    payment_intent_id = _id(charge.get("payment_intent"))
    if not payment_intent_id:
        return None
    with transaction.atomic():
        gift = (
            Gift.objects.select_for_update()
            .filter(stripe_payment_intent_id=payment_intent_id)
            .first()
        )
        if gift is None:
            raise WaitingFor(payment_intent_id)
        refunded = min(charge.get("amount_refunded") or 0, gift.amount_cents)
        gift.refunded_cents = max(gift.refunded_cents, refunded)
        if gift.refunded_cents >= gift.amount_cents:
            gift.status = Gift.Status.REFUNDED
        elif gift.refunded_cents > 0:
            gift.status = Gift.Status.PARTIALLY_REFUNDED
        gift.save()
    return gift


def gift_flag_dispute(*, dispute: dict) -> Gift | None:
    """Flag a disputed gift for staff and tell them (docs.stripe.com/disputes)."""
    payment_intent_id = _id(dispute.get("payment_intent"))
    if not payment_intent_id:
        return None
    with transaction.atomic():
        gift = (
            Gift.objects.select_for_update()
            .filter(stripe_payment_intent_id=payment_intent_id)
            .first()
        )
        if gift is None:
            raise WaitingFor(payment_intent_id)
        if gift.disputed_at is None:
            gift.disputed_at = _from_timestamp(dispute.get("created")) or timezone.now()
            gift.save(update_fields=["disputed_at"])
            subject = f"Gift {gift.pk} is disputed ({dispute.get('reason') or 'no reason given'})"
            message = (
                f"The bank of {gift.donor_email} disputed a gift of "
                f"{format_cents(gift.amount_cents, gift.currency, exact=True)}. "
                "Answer the dispute in the Stripe dashboard before its deadline."
            )
            transaction.on_commit(lambda: mail_admins(subject, message, fail_silently=True))
    return gift


def gift_refund_request(*, gift_id: int) -> Gift:
    """Ask Stripe to refund what is left of a gift; the `charge.refunded` webhook records it."""
    gift = Gift.objects.get(pk=gift_id)
    if not gift.counts_as_given or not gift.stripe_payment_intent_id:
        raise RefundNotPossible(f"Gift {gift.pk} is {gift.get_status_display().lower()}.")
    remaining = gift.amount_cents - gift.refunded_cents
    stripe_api.refund_create(
        payment_intent=gift.stripe_payment_intent_id,
        amount=remaining,
        # The same refund asked twice (a double click) is one refund at Stripe.
        idempotency_key=f"gift-{gift.pk}-refund-{gift.refunded_cents}",
    )
    gift.refund_requested_at = timezone.now()
    Gift.objects.filter(pk=gift.pk).update(refund_requested_at=gift.refund_requested_at)
    return gift


def stripe_reconcile(*, since: timedelta) -> dict[str, int]:
    """Fill in every paid gift Stripe has since `since` ago that a lost webhook missed."""
    created_gte = int((timezone.now() - since).timestamp())
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


# --- emails ------------------------------------------------------------------------


def org_context() -> dict:
    """The organisation's footer, the thank-you's signer and the "manage my giving" link."""
    return {
        **mail.org_context(),
        "SIGNER_NAME": settings.THANK_YOU_SIGNER_NAME,
        "SIGNER_TITLE": settings.THANK_YOU_SIGNER_TITLE,
        "manage_url": absolute(reverse("donations:manage")),
    }


def _send(*, template: str, to: str, context: dict) -> bool:
    """Send donations/emails/<template> from the giving address; False if suppressed."""
    return mail.send(
        template=f"donations/emails/{template}",
        to=to,
        context={**org_context(), **context},
        from_email=settings.DONATION_FROM_EMAIL,
    )


def receipt_send(*, gift_id: int) -> bool:
    """Email the receipt of a paid gift, once."""
    with transaction.atomic():
        gift = (
            Gift.objects.select_for_update(of=("self",))
            .select_related("plan")
            .filter(pk=gift_id)
            .first()
        )
        if gift is None or gift.receipt_sent_at or gift.paid_at is None:
            return False
        sent = _send(template="receipt", to=gift.donor_email, context={"gift": gift})
        # A suppressed address is marked too: the receipt is not owed twice.
        gift.receipt_sent_at = timezone.now()
        gift.save(update_fields=["receipt_sent_at"])
    return sent


def honoree_notify(*, gift_id: int) -> bool:
    """Tell the person a gift honours or remembers about it (never the amount), once."""
    with transaction.atomic():
        gift = Gift.objects.select_for_update().filter(pk=gift_id).first()
        if (
            gift is None
            or not gift.dedication
            or not gift.honoree_email
            or gift.honoree_notified_at
            or gift.paid_at is None
        ):
            return False
        sent = _send(template="honoree", to=gift.honoree_email, context={"gift": gift})
        gift.honoree_notified_at = timezone.now()
        gift.save(update_fields=["honoree_notified_at"])
    return sent


def card_update_notice_send(*, notice_id: int, hosted_invoice_url: str = "") -> bool:
    """The friendly "update your card" email for a failed installment, once per invoice."""
    with transaction.atomic():
        notice = (
            PaymentFailureNotice.objects.select_for_update()
            .select_related("plan")
            .filter(pk=notice_id)
            .first()
        )
        if notice is None or notice.sent_at:
            return False
        sent = _send(
            template="card_update",
            to=notice.plan.donor_email,
            context={"plan": notice.plan, "hosted_invoice_url": hosted_invoice_url},
        )
        notice.sent_at = timezone.now()
        notice.save(update_fields=["sent_at"])
    return sent


def giving_statement_send(*, email: str, year: int) -> bool:
    """Email one donor's statement of `year`, once: a unique row per donor and year."""
    email = email.lower()
    with transaction.atomic():
        statement, _ = GivingStatement.objects.get_or_create(donor_email=email, year=year)
        statement = GivingStatement.objects.select_for_update().get(pk=statement.pk)
        if statement.sent_at:
            return False
        gifts = list(selectors.gifts_in_year(email, year))
        total = sum(gift.net_cents for gift in gifts)
        if not gifts or total <= 0:
            return False
        statement.total_cents = total
        statement.gift_count = len(gifts)
        _send(
            template="statement",
            to=email,
            context={"gifts": gifts, "year": year, "total_cents": total, "statement": statement},
        )
        statement.sent_at = timezone.now()
        statement.save()
    return True


def giving_statements_send(*, year: int) -> int:
    """Send every donor of `year` their statement; return how many were sent now."""
    return sum(
        giving_statement_send(email=email, year=year) for email in selectors.donors_for_year(year)
    )


# --- manage my giving --------------------------------------------------------------


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


def manage_link_send(*, email: str) -> bool:
    """Email a sign-in link to a donor we know; say nothing to an address we do not."""
    if not selectors.gifts_for_email(email).exists():
        return False
    link = absolute(
        reverse("donations:manage_open", kwargs={"token": manage_token_make(email=email)})
    )
    return _send(
        template="manage_link",
        to=email,
        context={"link": link, "minutes": settings.DONATION_MANAGE_LINK_MINUTES},
    )


def portal_url(*, email: str, return_url: str) -> str | None:
    """A Stripe customer portal session for the donor, or None when Stripe has no customer."""
    customer = selectors.customer_id_for_email(email)
    if not customer:
        return None
    return stripe_api.billing_portal_session_create(customer=customer, return_url=return_url)["url"]
