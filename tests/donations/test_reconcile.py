"""A webhook that never arrived is recovered from Stripe's own lists, without duplicates."""

from __future__ import annotations

import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from donations.models import Gift, PaymentFailureNotice, RecurringPlan, StripeEvent
from donations.services import checkout_params
from donations.tasks import reconcile_stripe_task
from tests.donations import stripe_payloads as p
from tests.donations.factories import AppealFactory, GiftFactory, PaidGiftFactory, PlanFactory
from tests.donations.stripe_http import StripeHTTP

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


# Stripe's event log, read by the real SDK from a local Stripe API (tests/donations/stripe_http).


@pytest.fixture
def stripe_http(settings):
    server = StripeHTTP().start()
    settings.STRIPE_API_BASE = server.base
    yield server
    server.stop()


def _reconcile(capture, *args: str) -> str:
    out = StringIO()
    with capture(execute=True):
        call_command("reconcile_stripe", *args, stdout=out)
    return out.getvalue()


def test_a_refund_the_webhook_missed_is_recovered_once_from_stripes_event_log(
    stripe_http, django_capture_on_commit_callbacks
):
    gift = PaidGiftFactory(amount_cents=3000, stripe_payment_intent_id="pi_refunded")
    others = [PaidGiftFactory(stripe_payment_intent_id=f"pi_other_{n}") for n in range(3)]
    now = int(time.time())
    stripe_http.events = [
        p.event(
            "charge.refunded",
            p.charge(payment_intent="pi_refunded", amount=3000, amount_refunded=3000),
            created=now - 60,
        ),
        *[
            p.event(
                "charge.refunded",
                p.charge(
                    payment_intent=other.stripe_payment_intent_id, amount=2500, amount_refunded=0
                ),
                created=now - 120 - n,
            )
            for n, other in enumerate(others)
        ],
        p.event("customer.created", {"id": "cus_not_ours", "object": "customer"}),
    ]

    printed = _reconcile(django_capture_on_commit_callbacks, "--since", "2d")

    gift.refresh_from_db()
    assert (gift.status, gift.refunded_cents) == (Gift.Status.REFUNDED, 3000)
    assert "Listed 4 Stripe event(s): stored 4 the site had missed, processed 4" in printed
    # Four events in pages of two: the SDK followed `has_more` with `starting_after`.
    pages = stripe_http.requested("/v1/events")
    assert len(pages) == 2 and "starting_after" in pages[1]
    asked = {
        value for key, values in pages[0].items() if key.startswith("types[") for value in values
    }
    assert {"charge.refunded", "charge.dispute.created", "invoice.payment_failed"} <= asked
    assert "customer.created" not in asked

    printed = _reconcile(django_capture_on_commit_callbacks, "--since", "2d")
    assert "stored 0 the site had missed, processed 0" in printed
    gift.refresh_from_db()
    assert (gift.status, gift.refunded_cents) == (Gift.Status.REFUNDED, 3000)
    assert StripeEvent.objects.count() == 4


def test_a_dispute_the_webhook_missed_is_recovered_once(
    stripe_http, settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.ADMINS = [("Development", "development@newsroom.example")]
    gift = PaidGiftFactory(stripe_payment_intent_id="pi_disputed")
    stripe_http.events = [
        p.event("charge.dispute.created", p.dispute(payment_intent="pi_disputed"))
    ]

    _reconcile(django_capture_on_commit_callbacks)
    _reconcile(django_capture_on_commit_callbacks)

    gift.refresh_from_db()
    assert gift.disputed_at is not None
    alerts = [m for m in mailoutbox if f"Gift {gift.pk} is disputed" in m.subject]
    assert len(alerts) == 1


def test_a_failed_renewal_the_webhook_missed_is_recovered_once(
    stripe_http, django_capture_on_commit_callbacks
):
    plan = PlanFactory(stripe_subscription_id="sub_failed")
    gift = PaidGiftFactory(frequency="monthly", plan=plan)
    failed = p.invoice(gift, invoice_id="in_failed", subscription="sub_failed", paid=False)
    stripe_http.events = [p.event("invoice.payment_failed", failed)]

    _reconcile(django_capture_on_commit_callbacks)
    _reconcile(django_capture_on_commit_callbacks)

    plan.refresh_from_db()
    assert plan.status == RecurringPlan.Status.PAST_DUE
    assert PaymentFailureNotice.objects.filter(stripe_invoice_id="in_failed").count() == 1


def test_a_cancelled_subscription_the_webhook_missed_is_recovered(
    stripe_http, django_capture_on_commit_callbacks
):
    plan = PlanFactory(stripe_subscription_id="sub_gone")
    gift = PaidGiftFactory(frequency="monthly", plan=plan)
    cancelled = p.subscription(
        gift, subscription_id="sub_gone", status="canceled", canceled_at=int(time.time())
    )
    stripe_http.events = [p.event("customer.subscription.deleted", cancelled)]

    _reconcile(django_capture_on_commit_callbacks)

    plan.refresh_from_db()
    assert plan.status == RecurringPlan.Status.CANCELED


def test_an_event_stored_but_never_processed_is_processed_by_reconcile(
    stripe_http, django_capture_on_commit_callbacks
):
    gift = PaidGiftFactory(amount_cents=3000, stripe_payment_intent_id="pi_stuck")
    event = p.event(
        "charge.refunded", p.charge(payment_intent="pi_stuck", amount=3000, amount_refunded=1000)
    )
    StripeEvent.objects.create(
        stripe_id=event["id"],
        type=event["type"],
        payload=event,
        outcome=StripeEvent.Outcome.RECEIVED,
    )
    stripe_http.events = [event]

    printed = _reconcile(django_capture_on_commit_callbacks)

    assert "stored 0 the site had missed, processed 1" in printed
    gift.refresh_from_db()
    assert (gift.status, gift.refunded_cents) == (Gift.Status.PARTIALLY_REFUNDED, 1000)


def test_a_gift_rebuilt_from_stripe_keeps_its_appeal_utm_and_dedication(
    stripe_http, django_capture_on_commit_callbacks
):
    appeal = AppealFactory()
    gift = GiftFactory(
        amount_cents=4200,
        appeal=appeal,
        placement="after_article",
        utm={"utm_source": "newsletter", "utm_campaign": "spring"},
        dedication=Gift.Dedication.MEMORY,
        honoree_name="Samir Haddad",
        honoree_email="family@mail.example",
    )
    session = p.checkout_session(gift, payment_intent="pi_rebuilt")
    # What checkout sent to Stripe, as Stripe keeps it on the session.
    session["metadata"] = checkout_params(gift=gift)["metadata"]
    gift.delete()
    stripe_http.events = [p.event("checkout.session.completed", session)]

    _reconcile(django_capture_on_commit_callbacks)

    rebuilt = Gift.objects.get()
    assert (rebuilt.status, rebuilt.amount_cents, rebuilt.appeal) == ("paid", 4200, appeal)
    assert rebuilt.utm == {"utm_source": "newsletter", "utm_campaign": "spring"}
    assert rebuilt.placement == "after_article"
    assert (rebuilt.dedication, rebuilt.honoree_name, rebuilt.honoree_email) == (
        "memory",
        "Samir Haddad",
        "family@mail.example",
    )


def test_a_pending_gift_is_found_by_its_client_reference_when_metadata_lacks_it(
    stripe_http, django_capture_on_commit_callbacks
):
    appeal = AppealFactory()
    gift = GiftFactory(appeal=appeal, utm={"utm_source": "x"}, stripe_checkout_session_id="")
    session = p.checkout_session(gift, payment_intent="pi_ref")
    session["id"] = "cs_never_saved"
    session["metadata"] = {"gift_id": "", "frequency": "one_time"}
    stripe_http.events = [p.event("checkout.session.completed", session)]

    _reconcile(django_capture_on_commit_callbacks)

    [paid] = Gift.objects.all()
    assert (paid.pk, paid.status, paid.appeal, paid.utm) == (
        gift.pk,
        "paid",
        appeal,
        {"utm_source": "x"},
    )


def test_a_yen_gift_is_recorded_in_whole_yen(
    stripe_http, mailoutbox, django_capture_on_commit_callbacks
):
    gift = GiftFactory(amount_cents=5000, currency="jpy")
    session = p.checkout_session(gift, payment_intent="pi_yen")
    session["currency"] = "jpy"
    gift.delete()
    stripe_http.events = [p.event("checkout.session.completed", session)]

    _reconcile(django_capture_on_commit_callbacks)

    recorded = Gift.objects.get()
    assert (recorded.amount_cents, recorded.currency) == (5000, "jpy")
    [receipt] = [m for m in mailoutbox if m.subject.startswith("Your receipt")]
    assert "5,000 JPY" in receipt.subject
    assert "50.00 JPY" not in receipt.body


def test_more_than_stripes_thirty_days_is_refused(stripe_http):
    with pytest.raises(CommandError, match="Stripe keeps events for 30 days only"):
        call_command("reconcile_stripe", "--since", "31d")
    assert stripe_http.requests == []
    call_command("reconcile_stripe", "--since", "30d", stdout=StringIO())
    assert stripe_http.requested("/v1/events")
