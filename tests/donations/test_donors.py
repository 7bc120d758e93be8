"""A donor's own data: the gifts and plans under an address, downloaded or anonymised."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from donations import selectors, services, stripe_api
from donations.models import Gift, GivingStatement, ManageLink, RecurringPlan
from newsroom.models import AuditEntry
from newsroom.security import email_hash
from tests.donations.factories import AppealFactory, PaidGiftFactory, PlanFactory

pytestmark = pytest.mark.django_db

EMAIL = "rana@mail.example"


@pytest.fixture
def no_stripe(fake_stripe, monkeypatch):
    """The doorway records its calls; the SDK client beneath it may not even be built."""

    def refuse():
        raise AssertionError("Stripe was called")

    monkeypatch.setattr(stripe_api, "_client", refuse)
    return fake_stripe


def ended_plan_with_gift(email: str = EMAIL) -> tuple[RecurringPlan, Gift]:
    plan = PlanFactory(
        donor_email=email,
        donor_name="Rana Khoury",
        status=RecurringPlan.Status.CANCELED,
        canceled_at=timezone.now(),
    )
    gift = PaidGiftFactory(
        donor_email=email,
        frequency=plan.frequency,
        amount_cents=plan.amount_cents,
        plan=plan,
        stripe_checkout_session_id="",
        stripe_invoice_id="in_ended_1",
    )
    return plan, gift


def test_the_export_holds_the_gifts_and_plans_of_that_address_only():
    appeal = AppealFactory(name="Spring drive")
    gift = PaidGiftFactory(
        donor_email="Rana@Mail.Example",
        amount_cents=5000,
        appeal=appeal,
        dedication=Gift.Dedication.MEMORY,
        honoree_name="Salim Khoury",
    )
    plan, installment = ended_plan_with_gift()
    PaidGiftFactory(donor_email="someone@mail.example")
    PlanFactory(donor_email="someone@mail.example")

    data = selectors.gifts_export(email=EMAIL)

    assert [g["receipt_number"] for g in data["gifts"]] == [gift.pk, installment.pk]
    first = data["gifts"][0]
    assert first["amount_minor_units"] == 5000 and first["currency"] == "USD"
    assert first["frequency"] == "one_time" and first["status"] == "paid"
    assert first["appeal"] == "Spring drive"
    assert first["dedication"] == "memory" and first["honoree_name"] == "Salim Khoury"
    assert first["date"] == gift.paid_at.isoformat()
    assert [p["plan"] for p in data["plans"]] == [plan.pk]
    assert data["plans"][0]["status"] == "canceled"
    assert data["plans"][0]["frequency"] == "monthly"


def test_anonymising_removes_name_and_address_and_keeps_amounts_and_receipt_numbers(no_stripe):
    gift = PaidGiftFactory(
        donor_email=EMAIL,
        amount_cents=5000,
        dedication=Gift.Dedication.HONOR,
        honoree_name="Salim Khoury",
        honoree_email="salim@mail.example",
        stripe_charge_id="ch_kept",
    )
    plan, installment = ended_plan_with_gift()
    GivingStatement.objects.create(donor_email=EMAIL, year=2025, total_cents=7000, gift_count=2)
    ManageLink.objects.create(
        token_hash="a" * 64, email=EMAIL, expires_at=timezone.now() + timedelta(hours=1)
    )
    other = PaidGiftFactory(donor_email="someone@mail.example")

    result = services.donor_anonymise(email="RANA@mail.example", actor=None, by="reader")

    assert (result.gifts, result.plans, result.statements) == (2, 1, 1)
    placeholder = services.deleted_email(EMAIL)
    assert placeholder == f"deleted-{email_hash(EMAIL)[:16]}@invalid"
    gift.refresh_from_db()
    assert gift.donor_email == placeholder and gift.donor_name == "Deleted reader"
    assert gift.honoree_name == "" and gift.honoree_email == ""
    assert gift.amount_cents == 5000 and gift.paid_at is not None
    assert gift.stripe_charge_id == "ch_kept" and gift.dedication == Gift.Dedication.HONOR
    installment.refresh_from_db()
    assert installment.donor_email == placeholder and installment.plan_id == plan.pk
    plan.refresh_from_db()
    assert plan.donor_email == placeholder and plan.donor_name == "Deleted reader"
    assert plan.stripe_subscription_id.startswith("sub_factory_")
    statement = GivingStatement.objects.get()
    assert statement.donor_email == placeholder and statement.total_cents == 7000
    assert not ManageLink.objects.exists()
    assert not Gift.objects.filter(donor_email__iexact=EMAIL).exists()
    assert not Gift.objects.filter(donor_name="Rana Khoury").exclude(pk=other.pk).exists()
    other.refresh_from_db()
    assert other.donor_email == "someone@mail.example"
    assert no_stripe.calls == []


def test_anonymising_writes_the_audit_trail_without_the_address(no_stripe):
    gift = PaidGiftFactory(donor_email=EMAIL)

    services.donor_anonymise(email=EMAIL, actor=None, by="reader")

    entry = AuditEntry.objects.get(action=AuditEntry.Action.DONOR_ANONYMISE)
    assert entry.details["email_sha256"] == email_hash(EMAIL)
    assert entry.details["gifts"] == [gift.pk] and entry.details["by"] == "reader"
    assert EMAIL not in str(entry.details) + entry.object_repr + entry.object_id


def test_a_running_plan_and_its_installments_are_left_for_the_donor_to_cancel(no_stripe):
    plan = PlanFactory(donor_email=EMAIL, donor_name="Rana Khoury")
    installment = PaidGiftFactory(
        donor_email=EMAIL, plan=plan, frequency=plan.frequency, stripe_invoice_id="in_live_1"
    )
    one_time = PaidGiftFactory(donor_email=EMAIL)
    ManageLink.objects.create(
        token_hash="b" * 64, email=EMAIL, expires_at=timezone.now() + timedelta(hours=1)
    )

    result = services.donor_anonymise(email=EMAIL, actor=None, by="reader")

    assert result.kept_plans == [plan]
    plan.refresh_from_db()
    installment.refresh_from_db()
    one_time.refresh_from_db()
    assert plan.status == RecurringPlan.Status.ACTIVE and plan.donor_email == EMAIL
    assert installment.donor_email == EMAIL
    assert one_time.donor_email == services.deleted_email(EMAIL)
    # The donor can still sign in to "manage my giving" and cancel it there.
    assert ManageLink.objects.exists()
    assert selectors.customer_id_for_email(EMAIL) == "cus_factory"
    entry = AuditEntry.objects.get(action=AuditEntry.Action.DONOR_ANONYMISE)
    assert entry.details["kept_live_plans"] == [plan.pk]
    assert no_stripe.calls == []


def test_an_address_with_no_gifts_leaves_no_audit_entry(no_stripe):
    result = services.donor_anonymise(email=EMAIL, actor=None, by="reader")

    assert (result.gifts, result.plans, result.statements) == (0, 0, 0)
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.DONOR_ANONYMISE).exists()
