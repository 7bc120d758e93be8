"""A donor's own data: anonymising the gifts and plans held under an address.

Gifts are tax records: the amount, dates, receipt number and Stripe ids stay; the
name and addresses are replaced by placeholders derived from the address's hash.
Nothing here calls Stripe: stopping a running plan is the donor's own choice.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from donations.models import Gift, GivingStatement, ManageLink, RecurringPlan
from donations.selectors import LIVE_PLAN_STATUSES
from newsroom import audit
from newsroom.security import email_hash

DELETED_NAME = "Deleted reader"


def deleted_email(email: str) -> str:
    """The placeholder address of a forgotten donor: the same for every record of `email`."""
    # .invalid is reserved (RFC 2606 section 2): nothing can ever be sent to it.
    return f"deleted-{email_hash(email)[:16]}@invalid"


@dataclass(frozen=True)
class Anonymised:
    gifts: int
    plans: int
    statements: int
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
                    "kept_live_plans": [plan.pk for plan in live],
                },
            )
    return Anonymised(
        gifts=gift_count, plans=plan_count, statements=statement_count, kept_plans=live
    )
