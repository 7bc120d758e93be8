"""Gifts and plans as Stripe reports them: payments, installments, refunds, disputes.

Stripe is the truth about money (docs.stripe.com/webhooks): a gift becomes paid,
refunded or disputed only from what Stripe reports, through a webhook or through
`stripe_reconcile` (services.reconcile). Every function that applies a Stripe object is
idempotent and does not depend on the order events arrive in: it finds our rows by Stripe ids (all
unique in the database), only moves a gift forward, and an event about a payment we
have not recorded yet waits (`WaitingFor`) and is replayed when that payment appears.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.core.mail import mail_admins
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from donations import stripe_api
from donations.models import (
    Appeal,
    Frequency,
    Gift,
    PaymentFailureNotice,
    Placement,
    RecurringPlan,
    StripeEvent,
)
from donations.money import format_cents
from newsroom.models import Article
from newsroom.outbox import outbox_enqueue
from newsroom.parsing import parse_int

UNPAID = (Gift.Status.PENDING, Gift.Status.FAILED, Gift.Status.ABANDONED)
FREQUENCY_OF_INTERVAL = {"month": Frequency.MONTHLY, "year": Frequency.ANNUAL}


class RefundNotPossible(Exception):
    """The gift cannot be refunded (not paid, already refunded, or no Stripe payment)."""


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
    gift_id = parse_int((metadata or {}).get("gift_id"), minimum=1)
    if gift_id is None:
        return None
    return Gift.objects.select_for_update().filter(pk=gift_id).first()


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
        _replay_waiting(payment_intent_id)
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
        _after_paid(gift.pk)
    return became_paid


def _after_paid(gift_id: int) -> None:
    # Through the outbox, in the gift's transaction: a broker that is down when the gift
    # is recorded delays the receipt, it never loses it.
    outbox_enqueue(task="donations.receipt_send", kwargs={"gift_id": gift_id})
    outbox_enqueue(task="donations.honoree_notify", kwargs={"gift_id": gift_id})


def _replay_waiting(stripe_id: str) -> None:
    waiting = StripeEvent.objects.filter(
        outcome=StripeEvent.Outcome.WAITING, waiting_for=stripe_id
    ).values_list("pk", flat=True)
    for event_id in waiting:
        outbox_enqueue(task="donations.stripe_event_process", kwargs={"event_id": event_id})


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
        "language": origin.language if origin else settings.LANGUAGE_CODE,
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
    """Re-create a gift our database lost, from the Checkout Session Stripe kept.

    The session's metadata carries what the donor chose besides the amount
    (`checkout.gift_metadata`), so the rebuilt gift keeps its appeal, UTM and dedication.
    """
    details = session.get("customer_details") or {}
    appeal_id = parse_int(metadata.get("appeal_id"), minimum=1)
    article_id = parse_int(metadata.get("article_id"), minimum=1)
    dedication = metadata.get("dedication") or ""
    if dedication not in Gift.Dedication.values:
        dedication = ""
    placement = metadata.get("placement") or ""
    language = metadata.get("language") or ""
    return Gift.objects.create(
        language=language if language in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE,
        status=Gift.Status.PENDING,
        frequency=metadata.get("frequency") or Frequency.ONE_TIME,
        amount_cents=session.get("amount_total") or 0,
        currency=session.get("currency") or settings.DONATION_CURRENCY,
        donor_email=details.get("email") or session.get("customer_email") or "",
        donor_name=details.get("name") or "",
        dedication=dedication,
        honoree_name=metadata.get("honoree_name", "") if dedication else "",
        honoree_email=metadata.get("honoree_email", "") if dedication else "",
        # An appeal or article deleted since checkout is left out, as SET_NULL would.
        appeal_id=appeal_id if Appeal.objects.filter(pk=appeal_id).exists() else None,
        article_id=article_id if Article.objects.filter(pk=article_id).exists() else None,
        placement=placement if placement in Placement.values else "",
        utm={key: value for key, value in metadata.items() if key.startswith("utm_") and value},
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
        # The pending gift made at checkout: by session id, else by the id we sent twice.
        gift = (
            Gift.objects.select_for_update()
            .filter(stripe_checkout_session_id=session["id"])
            .first()
            or _locked_gift_from_metadata(metadata)
            or _locked_gift_from_metadata({"gift_id": session.get("client_reference_id")})
        )
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
            outbox_enqueue(
                task="donations.card_update_notice_send",
                kwargs={
                    "notice_id": notice.pk,
                    "hosted_invoice_url": invoice.get("hosted_invoice_url") or "",
                },
            )
    return plan


def _gift_paid_by_locked(payment_intent_id: str) -> Gift:
    """The gift this PaymentIntent paid, locked; WaitingFor until that payment is recorded."""
    gift = (
        Gift.objects.select_for_update().filter(stripe_payment_intent_id=payment_intent_id).first()
    )
    if gift is None:
        raise WaitingFor(payment_intent_id)
    return gift


def gift_apply_charge_refunded(*, charge: dict) -> Gift | None:
    """Record how much of a gift Stripe has refunded (the total so far, so replays agree)."""
    payment_intent_id = _id(charge.get("payment_intent"))
    if not payment_intent_id:
        return None
    with transaction.atomic():
        gift = _gift_paid_by_locked(payment_intent_id)
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
        gift = _gift_paid_by_locked(payment_intent_id)
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
        raise RefundNotPossible(
            gettext("Gift {gift} is {status}.").format(
                gift=gift.pk, status=gift.get_status_display().lower()
            )
        )
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
