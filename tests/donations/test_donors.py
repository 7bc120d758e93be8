"""A donor's own data: the gifts and plans under an address, downloaded or anonymised."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from donations import selectors, services, stripe_api
from donations.models import Gift, GivingStatement, ManageLink, RecurringPlan, StripeEvent
from newsroom.models import AuditEntry
from newsroom.security import email_hash
from tests.donations import stripe_payloads as p
from tests.donations.factories import AppealFactory, GiftFactory, PaidGiftFactory, PlanFactory

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


def the_donors_story(gift: Gift) -> list[dict]:
    """Stripe's events about one gift, as delivered: paid, charged, partly refunded."""
    session = p.checkout_session(gift, payment_intent="pi_rana")
    session["customer_details"]["address"] = {"line1": "12 Rue Gouraud", "city": "Beirut"}
    return [
        p.event("checkout.session.completed", session),
        # A type the app does not handle is stored all the same.
        p.event(
            "charge.succeeded",
            {
                "id": "ch_for_pi_rana",
                "object": "charge",
                "payment_intent": "pi_rana",
                "amount": 5000,
                "customer": "cus_test_1",
                "receipt_email": EMAIL,
                "billing_details": {
                    "email": EMAIL,
                    "name": "Rana Khoury",
                    "phone": "+961 1 234 567",
                    "address": {"line1": "12 Rue Gouraud", "city": "Beirut"},
                },
                "payment_method_details": {"card": {"brand": "visa", "last4": "4242"}},
            },
        ),
        p.event(
            "charge.refunded", p.charge(payment_intent="pi_rana", amount=5000, amount_refunded=1000)
        ),
    ]


def test_anonymising_scrubs_the_donors_stored_stripe_events_and_keeps_the_bookkeeping(
    post_event, fake_stripe, mailoutbox
):
    gift = GiftFactory(donor_email=EMAIL, donor_name="Rana Khoury", amount_cents=5000)
    story = the_donors_story(gift)
    other = GiftFactory(donor_email="someone@mail.example", donor_name="Someone Else")
    for event in [*story, p.event("checkout.session.completed", p.checkout_session(other))]:
        assert post_event(event).status_code == 200

    result = services.donor_anonymise(email=EMAIL, actor=None, by="reader")

    # The refund's charge names no one: it is left as it was.
    assert result.stripe_events == 2
    donors = StripeEvent.objects.filter(stripe_id__in=[event["id"] for event in story])
    for stored in donors:
        text = json.dumps(stored.payload)
        # The phone and the card's digits as whole values: bare digits turn up in the
        # event's timestamp and ids (every "created" of 1 December 2026 holds 961).
        for personal in (EMAIL, "Rana", "Khoury", "Gouraud", "Beirut", "+961 1 234 567", '"4242"'):
            assert personal not in text, (stored.type, personal)
    by_type = {stored.type: stored for stored in donors}
    session = by_type["checkout.session.completed"].payload["data"]["object"]
    assert session["id"] == gift.stripe_checkout_session_id
    assert session["amount_total"] == 5000 and session["metadata"]["gift_id"] == str(gift.pk)
    assert session["customer_email"] == services.deleted_email(EMAIL)
    assert by_type["charge.refunded"].payload["data"]["object"]["amount_refunded"] == 1000
    assert by_type["checkout.session.completed"].outcome == StripeEvent.Outcome.PROCESSED
    assert by_type["charge.succeeded"].outcome == StripeEvent.Outcome.IGNORED
    others = StripeEvent.objects.exclude(pk__in=[stored.pk for stored in donors]).get()
    assert "someone@mail.example" in json.dumps(others.payload)
    entry = AuditEntry.objects.get(action=AuditEntry.Action.DONOR_ANONYMISE)
    assert entry.details["stripe_events"] == sorted(
        stored.pk for stored in donors if stored.type != "charge.refunded"
    )


def test_a_redelivered_event_after_anonymising_brings_back_no_name_and_counts_nothing_twice(
    post_event, fake_stripe, mailoutbox
):
    gift = GiftFactory(donor_email=EMAIL, donor_name="Rana Khoury", amount_cents=5000)
    story = the_donors_story(gift)
    for event in story:
        post_event(event)
    services.donor_anonymise(email=EMAIL, actor=None, by="reader")

    # Stripe sends each event again, with the name and address it had.
    assert [post_event(event).status_code for event in story] == [200, 200, 200]

    assert StripeEvent.objects.count() == 3
    for stored in StripeEvent.objects.all():
        assert EMAIL not in json.dumps(stored.payload)
        assert "Rana" not in json.dumps(stored.payload)
    gift.refresh_from_db()
    assert Gift.objects.count() == 1
    assert gift.donor_email == services.deleted_email(EMAIL)
    assert gift.donor_name == "Deleted reader"
    assert gift.amount_cents == 5000 and gift.refunded_cents == 1000
    assert len([m for m in mailoutbox if m.subject.startswith("Your receipt")]) == 1
    assert len(fake_stripe.named("payment_intent_retrieve")) == 1


def test_events_about_a_plan_kept_running_keep_the_donors_name(post_event, fake_stripe):
    plan = PlanFactory(donor_email=EMAIL, donor_name="Rana Khoury")
    installment = PaidGiftFactory(
        donor_email=EMAIL, plan=plan, frequency=plan.frequency, stripe_invoice_id="in_live_1"
    )
    one_time = GiftFactory(donor_email=EMAIL, donor_name="Rana Khoury")
    post_event(
        p.event(
            "invoice.paid",
            p.invoice(
                installment, invoice_id="in_live_1", subscription=plan.stripe_subscription_id
            ),
        )
    )
    post_event(p.event("checkout.session.completed", p.checkout_session(one_time)))

    services.donor_anonymise(email=EMAIL, actor=None, by="reader")

    kept = StripeEvent.objects.get(type="invoice.paid")
    assert kept.payload["data"]["object"]["customer_email"] == EMAIL
    scrubbed = StripeEvent.objects.get(type="checkout.session.completed")
    assert EMAIL not in json.dumps(scrubbed.payload)
