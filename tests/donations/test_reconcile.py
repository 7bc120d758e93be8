"""A webhook that never arrived is recovered from Stripe's own lists, without duplicates."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from donations.models import Gift, RecurringPlan
from donations.tasks import reconcile_stripe_task
from tests.donations import stripe_payloads as p
from tests.donations.factories import GiftFactory

pytestmark = pytest.mark.django_db


def test_lost_checkout_webhook_is_recovered_once(
    fake_stripe, mailoutbox, capsys, django_capture_on_commit_callbacks
):
    gift = GiftFactory(amount_cents=3000)
    fake_stripe.sessions = [
        p.checkout_session(gift, payment_intent="pi_lost"),
        {
            "id": "cs_open",
            "status": "open",
            "payment_status": "unpaid",
            "metadata": {"gift_id": "999"},
        },
    ]
    with django_capture_on_commit_callbacks(execute=True):
        call_command("reconcile_stripe", "--since", "2d")
    assert "recovered 1 gift(s)" in capsys.readouterr().out
    gift.refresh_from_db()
    assert gift.status == Gift.Status.PAID
    assert gift.stripe_payment_intent_id == "pi_lost"

    with django_capture_on_commit_callbacks(execute=True):
        call_command("reconcile_stripe", "--since", "2d")
    assert "recovered 0 gift(s)" in capsys.readouterr().out
    assert Gift.objects.count() == 1
    assert len([m for m in mailoutbox if m.subject.startswith("Your receipt")]) == 1


def test_lost_renewal_invoice_is_recovered_as_its_own_gift(
    fake_stripe, django_capture_on_commit_callbacks
):
    gift = GiftFactory(frequency="monthly", amount_cents=2000)
    fake_stripe.sessions = [p.checkout_session(gift, subscription="sub_1", invoice="in_1")]
    fake_stripe.invoices = [
        p.invoice(
            gift, invoice_id="in_1", subscription="sub_1", billing_reason="subscription_create"
        ),
        p.invoice(gift, invoice_id="in_2", subscription="sub_1"),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        counts = reconcile_stripe_task.delay().get()
    assert counts["recovered"] == 2
    assert sorted(Gift.objects.values_list("stripe_invoice_id", flat=True)) == ["in_1", "in_2"]
    assert RecurringPlan.objects.get().gifts.count() == 2

    with django_capture_on_commit_callbacks(execute=True):
        counts = reconcile_stripe_task.delay().get()
    assert counts["recovered"] == 0
    assert Gift.objects.count() == 2


def test_since_is_read_as_a_window(fake_stripe):
    call_command("reconcile_stripe", "--since", "12h")
    [listed] = fake_stripe.named("checkout_sessions_list")
    import time

    assert abs(listed["created_gte"] - (time.time() - 12 * 3600)) < 60


def test_a_gift_our_database_lost_is_recreated_from_stripe(
    fake_stripe, django_capture_on_commit_callbacks
):
    gift = GiftFactory(amount_cents=4200)
    session = p.checkout_session(gift, payment_intent="pi_x")
    gift.delete()
    fake_stripe.sessions = [session]
    with django_capture_on_commit_callbacks(execute=True):
        call_command("reconcile_stripe")
    recovered = Gift.objects.get()
    assert (recovered.amount_cents, recovered.status, recovered.donor_email) == (
        4200,
        "paid",
        session["customer_details"]["email"],
    )
