"""A donor's own data: anonymising the gifts and plans held under an address.

Gifts are tax records: the amount, dates, receipt number and Stripe ids stay; the
name and addresses are replaced by placeholders derived from the address's hash, in
the gifts and plans and in the Stripe events stored about them.
Nothing here calls Stripe: stopping a running plan is the donor's own choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Q

from donations.models import Gift, GivingStatement, ManageLink, RecurringPlan, StripeEvent
from donations.selectors import LIVE_PLAN_STATUSES
from newsroom import audit
from newsroom.security import email_hash

DELETED_NAME = "Deleted reader"


def deleted_email(email: str) -> str:
    """The placeholder address of a forgotten donor: the same for every record of `email`."""
    # .invalid is reserved (RFC 2606 section 2): nothing can ever be sent to it.
    return f"deleted-{email_hash(email)[:16]}@invalid"


# Keys that carry a person in Stripe's objects (docs.stripe.com/api: Checkout Session
# customer_details, Invoice customer_*, Charge billing_details, Customer, PaymentMethod
# card) and in the metadata our checkout sends (checkout.gift_metadata: the honoree).
# Emails and names become the gift's placeholders, so an event still to be processed
# writes those; the rest is emptied. Ids, amounts, currencies, types and dates stay.
_EMAIL_KEYS = frozenset({"email", "customer_email", "receipt_email"})
_NAME_KEYS = frozenset({"name", "customer_name"})
_EMPTIED_KEYS = frozenset(
    {
        "honoree_email",
        "honoree_name",
        "address",
        "customer_address",
        "shipping",
        "customer_shipping",
        "shipping_details",
        "phone",
        "customer_phone",
        "last4",
        "exp_month",
        "exp_year",
        "fingerprint",
    }
)


def _scrubbed(value: Any, *, placeholder: str) -> Any:
    """`value` (a Stripe payload or part of one) without the person's fields."""
    if isinstance(value, list):
        return [_scrubbed(item, placeholder=placeholder) for item in value]
    if not isinstance(value, dict):
        return value
    scrubbed = {}
    for key, item in value.items():
        if key in _EMAIL_KEYS and isinstance(item, str) and item:
            scrubbed[key] = placeholder
        elif key in _NAME_KEYS and isinstance(item, str) and item:
            scrubbed[key] = DELETED_NAME
        elif key in _EMPTIED_KEYS and item:
            scrubbed[key] = "" if isinstance(item, str) else None
        else:
            scrubbed[key] = _scrubbed(item, placeholder=placeholder)
    return scrubbed


def _stripe_events_scrub(
    *, gift_ids: list[int], plan_ids: list[int], whole_customer: bool, placeholder: str
) -> list[int]:
    """Scrub the stored events about these gifts and plans; returns the events changed.

    An event is about them when its object is one of their Stripe objects, or points at
    their payment (refunds, disputes), or, when no plan of theirs is kept running, at
    their Stripe customer (one no other gift or plan names). Events about a plan kept
    running stay as they are, as the plan does. A redelivery never rewrites a stored
    payload (stripe_event_store inserts only).
    """
    gifts = Gift.objects.filter(pk__in=gift_ids)
    plans = RecurringPlan.objects.filter(pk__in=plan_ids)
    payments = {
        value
        for row in gifts.values_list("stripe_payment_intent_id", "stripe_charge_id")
        for value in row
        if value
    }
    objects = payments | {
        value
        for row in gifts.values_list("stripe_checkout_session_id", "stripe_invoice_id")
        for value in row
        if value
    }
    objects |= {value for value in plans.values_list("stripe_subscription_id", flat=True) if value}
    customers = set()
    if whole_customer:
        customers = {
            value
            for query in (gifts, plans)
            for value in query.values_list("stripe_customer_id", flat=True)
            if value
        }
        # A customer some other gift or plan names is not only this donor's.
        customers -= set(
            Gift.objects.filter(stripe_customer_id__in=customers)
            .exclude(pk__in=gift_ids)
            .values_list("stripe_customer_id", flat=True)
        )
        customers -= set(
            RecurringPlan.objects.filter(stripe_customer_id__in=customers)
            .exclude(pk__in=plan_ids)
            .values_list("stripe_customer_id", flat=True)
        )
        objects |= customers
    if not objects:
        return []
    about = (
        Q(payload__data__object__id__in=sorted(objects))
        | Q(payload__data__object__payment_intent__in=sorted(payments))
        | Q(payload__data__object__charge__in=sorted(payments))
    )
    if customers:
        about |= Q(payload__data__object__customer__in=sorted(customers))
    changed = []
    for event in StripeEvent.objects.select_for_update().filter(about).only("pk", "payload"):
        payload = _scrubbed(event.payload, placeholder=placeholder)
        if payload != event.payload:
            StripeEvent.objects.filter(pk=event.pk).update(payload=payload)
            changed.append(event.pk)
    return sorted(changed)


@dataclass(frozen=True)
class Anonymised:
    gifts: int
    plans: int
    statements: int
    stripe_events: int
    # Plans still running at Stripe, kept under the address until the donor cancels them.
    kept_plans: list[RecurringPlan]


def donor_anonymise(*, email: str, actor: audit.Actor | None, by: str) -> Anonymised:
    """Replace the donor's name and address on their gifts, plans and statements.

    A plan still running at Stripe, and its installments, are left untouched: its
    receipts, its card reminders and the "manage my giving" link that cancels it
    all need the address, and cancelling it is the donor's act, never a side effect.
    """
    placeholder = deleted_email(email)
    with transaction.atomic():
        live = list(
            RecurringPlan.objects.select_for_update().filter(
                donor_email__iexact=email, status__in=LIVE_PLAN_STATUSES
            )
        )
        plans = RecurringPlan.objects.filter(donor_email__iexact=email).exclude(
            status__in=LIVE_PLAN_STATUSES
        )
        gifts = Gift.objects.filter(donor_email__iexact=email).exclude(plan__in=live)
        gift_ids = sorted(gifts.values_list("pk", flat=True))
        plan_ids = sorted(plans.values_list("pk", flat=True))
        event_ids = _stripe_events_scrub(
            gift_ids=gift_ids, plan_ids=plan_ids, whole_customer=not live, placeholder=placeholder
        )
        gift_count = Gift.objects.filter(pk__in=gift_ids).update(
            donor_email=placeholder,
            donor_name=DELETED_NAME,
            honoree_name="",
            honoree_email="",
            card_last4="",
        )
        plan_count = RecurringPlan.objects.filter(pk__in=plan_ids).update(
            donor_email=placeholder, donor_name=DELETED_NAME
        )
        statements = GivingStatement.objects.filter(donor_email__iexact=email)
        statement_ids = sorted(statements.values_list("pk", flat=True))
        statement_count = statements.update(donor_email=placeholder)
        if not live:
            # Sign-in links name the address; with no plan left to manage they go.
            ManageLink.objects.filter(email__iexact=email).delete()
        if gift_count or plan_count or statement_count or live:
            audit.audit_record(
                action=audit.Action.DONOR_ANONYMISE,
                actor=actor,
                object_type="donations.donor",
                object_id=email_hash(email)[:64],
                object_repr=placeholder,
                details={
                    "by": by,
                    "email_sha256": email_hash(email),
                    "gifts": gift_ids,
                    "plans": plan_ids,
                    "statements": statement_ids,
                    "stripe_events": event_ids,
                    "kept_live_plans": [plan.pk for plan in live],
                },
            )
    return Anonymised(
        gifts=gift_count,
        plans=plan_count,
        statements=statement_count,
        stripe_events=len(event_ids),
        kept_plans=live,
    )
