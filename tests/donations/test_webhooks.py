"""Stripe's webhook is the truth: signed, stored once, processed in a task, order-proof."""

from __future__ import annotations

import itertools
import json
import random
import time

import psycopg
import pytest
from django.db import OperationalError, close_old_connections, connection, connections
from django.urls import reverse

from donations.models import Gift, PaymentFailureNotice, RecurringPlan, StripeEvent
from tests.conftest import skip_or_fail
from tests.donations import stripe_payloads as p
from tests.donations.factories import GiftFactory, PaidGiftFactory
from tests.donations.fixtures import sign

pytestmark = pytest.mark.django_db


def receipts(mailoutbox, email):
    return [m for m in mailoutbox if m.to == [email] and m.subject.startswith("Your receipt")]


# --- signature ---------------------------------------------------------------------


def test_forged_signature_is_refused_and_nothing_is_stored(post_event, fake_stripe):
    gift = GiftFactory()
    event = p.event("checkout.session.completed", p.checkout_session(gift))
    payload = json.dumps(event)
    response = post_event(event, signature=sign(payload, secret="whsec_someone_else"))
    assert response.status_code == 400
    assert not StripeEvent.objects.exists()
    gift.refresh_from_db()
    assert gift.status == Gift.Status.PENDING


def test_stale_signature_is_refused(post_event, fake_stripe):
    gift = GiftFactory()
    event = p.event("checkout.session.completed", p.checkout_session(gift))
    stale = sign(json.dumps(event), timestamp=int(time.time()) - 3600)
    assert post_event(event, signature=stale).status_code == 400
    assert not StripeEvent.objects.exists()


def test_missing_signature_is_refused(post_event):
    assert post_event(p.event("invoice.paid", {"id": "in_1"}), signature="").status_code == 400


def test_signature_over_a_different_body_is_refused(client):
    event = p.event(
        "charge.refunded", p.charge(payment_intent="pi_x", amount=100, amount_refunded=100)
    )
    signature = sign(json.dumps(event))
    event["data"]["object"]["amount_refunded"] = 1
    response = client.post(
        "/webhooks/stripe/",
        json.dumps(event),
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature,
    )
    assert response.status_code == 400


def test_unhandled_event_type_answers_200_and_is_marked_ignored(post_event):
    response = post_event(p.event("customer.created", {"id": "cus_1", "object": "customer"}))
    assert response.status_code == 200
    assert StripeEvent.objects.get().outcome == StripeEvent.Outcome.IGNORED


# --- one-time gifts ----------------------------------------------------------------------


def test_checkout_completed_marks_the_gift_paid_and_sends_one_receipt(
    post_event, fake_stripe, mailoutbox
):
    gift = GiftFactory(amount_cents=5000)
    response = post_event(
        p.event("checkout.session.completed", p.checkout_session(gift, payment_intent="pi_1"))
    )

    assert response.status_code == 200
    gift.refresh_from_db()
    assert gift.status == Gift.Status.PAID
    assert gift.paid_at is not None
    assert gift.stripe_payment_intent_id == "pi_1"
    assert gift.card_last4 == "4242"
    assert gift.stripe_customer_id == "cus_test_1"
    assert len(receipts(mailoutbox, gift.donor_email)) == 1
    assert StripeEvent.objects.get().outcome == StripeEvent.Outcome.PROCESSED


def test_same_event_three_times_is_one_gift_and_one_receipt(post_event, fake_stripe, mailoutbox):
    gift = GiftFactory()
    event = p.event("checkout.session.completed", p.checkout_session(gift, payment_intent="pi_1"))
    codes = [post_event(event).status_code for _ in range(3)]

    assert codes == [200, 200, 200]
    assert Gift.objects.count() == 1
    assert StripeEvent.objects.count() == 1
    assert len(receipts(mailoutbox, gift.donor_email)) == 1
    assert len(fake_stripe.named("payment_intent_retrieve")) == 1


def test_distinct_events_about_one_payment_still_make_one_receipt(
    post_event, fake_stripe, mailoutbox
):
    gift = GiftFactory()
    session = p.checkout_session(gift, payment_intent="pi_1")
    for _ in range(3):  # Stripe may send the same change under new event ids
        post_event(p.event("checkout.session.completed", session))
    assert Gift.objects.filter(status=Gift.Status.PAID).count() == 1
    assert len(receipts(mailoutbox, gift.donor_email)) == 1


def test_delayed_payment_waits_then_succeeds(post_event, fake_stripe, mailoutbox):
    gift = GiftFactory()
    post_event(
        p.event(
            "checkout.session.completed",
            p.checkout_session(gift, payment_status="unpaid", payment_intent="pi_1"),
        )
    )
    gift.refresh_from_db()
    assert gift.status == Gift.Status.PENDING
    assert mailoutbox == []

    post_event(
        p.event(
            "checkout.session.async_payment_succeeded",
            p.checkout_session(gift, payment_intent="pi_1"),
        )
    )
    gift.refresh_from_db()
    assert gift.status == Gift.Status.PAID
    assert len(receipts(mailoutbox, gift.donor_email)) == 1


def test_delayed_payment_that_fails_marks_the_gift_failed(post_event, fake_stripe, mailoutbox):
    gift = GiftFactory()
    post_event(
        p.event(
            "checkout.session.async_payment_failed",
            p.checkout_session(gift, payment_status="unpaid"),
        )
    )
    gift.refresh_from_db()
    assert gift.status == Gift.Status.FAILED
    assert mailoutbox == []


def test_expired_session_abandons_the_pending_gift(post_event, fake_stripe):
    gift = GiftFactory()
    post_event(
        p.event(
            "checkout.session.expired",
            p.checkout_session(
                gift, status="expired", payment_status="unpaid", payment_intent=None
            ),
        )
    )
    gift.refresh_from_db()
    assert gift.status == Gift.Status.ABANDONED


def test_a_late_expiry_never_undoes_a_payment(post_event, fake_stripe):
    gift = GiftFactory()
    post_event(p.event("checkout.session.completed", p.checkout_session(gift)))
    post_event(
        p.event(
            "checkout.session.expired",
            p.checkout_session(gift, status="expired", payment_status="unpaid"),
        )
    )
    gift.refresh_from_db()
    assert gift.status == Gift.Status.PAID


def test_session_of_another_product_is_left_alone(post_event, fake_stripe):
    session = {
        "id": "cs_other",
        "object": "checkout.session",
        "status": "complete",
        "payment_status": "paid",
        "metadata": {},
    }
    assert post_event(p.event("checkout.session.completed", session)).status_code == 200
    assert not Gift.objects.exists()
    assert StripeEvent.objects.get().outcome == StripeEvent.Outcome.PROCESSED


def test_honoree_is_told_without_the_amount(post_event, fake_stripe, mailoutbox):
    gift = GiftFactory(
        amount_cents=7500,
        dedication="honor",
        honoree_name="Yara Saleh",
        honoree_email="yara@mail.example",
        donor_name="Omar Saleh",
    )
    post_event(p.event("checkout.session.completed", p.checkout_session(gift)))
    [note] = [m for m in mailoutbox if m.to == ["yara@mail.example"]]
    assert note.subject == "Omar Saleh made a gift in your honour"
    html = note.alternatives[0][0]
    for body in (note.body, html):
        assert "Yara Saleh" in body
        assert "$75" not in body and "75.00" not in body
    post_event(p.event("checkout.session.completed", p.checkout_session(gift)))
    assert len([m for m in mailoutbox if m.to == ["yara@mail.example"]]) == 1


# --- recurring gifts ---------------------------------------------------------------------


def test_monthly_gift_first_installment_and_renewals(post_event, fake_stripe, mailoutbox):
    gift = GiftFactory(frequency="monthly", amount_cents=2000)
    post_event(
        p.event(
            "checkout.session.completed",
            p.checkout_session(gift, subscription="sub_1", invoice="in_1"),
        )
    )
    post_event(
        p.event(
            "invoice.paid",
            p.invoice(
                gift, invoice_id="in_1", subscription="sub_1", billing_reason="subscription_create"
            ),
        )
    )
    post_event(p.event("invoice.paid", p.invoice(gift, invoice_id="in_2", subscription="sub_1")))
    post_event(p.event("invoice.paid", p.invoice(gift, invoice_id="in_3", subscription="sub_1")))

    plan = RecurringPlan.objects.get()
    assert plan.stripe_subscription_id == "sub_1"
    assert plan.status == RecurringPlan.Status.ACTIVE
    gifts = list(Gift.objects.order_by("pk"))
    assert [g.stripe_invoice_id for g in gifts] == ["in_1", "in_2", "in_3"]
    assert gifts[0].pk == gift.pk
    assert all(g.plan == plan and g.status == Gift.Status.PAID for g in gifts)
    assert all(g.amount_cents == 2000 for g in gifts)
    assert len(receipts(mailoutbox, gift.donor_email)) == 3


def test_invoice_paid_before_checkout_completed_gives_the_same_records(
    post_event, fake_stripe, mailoutbox
):
    gift = GiftFactory(frequency="monthly", amount_cents=2000)
    post_event(
        p.event(
            "invoice.paid",
            p.invoice(
                gift, invoice_id="in_1", subscription="sub_1", billing_reason="subscription_create"
            ),
        )
    )
    post_event(
        p.event(
            "checkout.session.completed",
            p.checkout_session(gift, subscription="sub_1", invoice="in_1"),
        )
    )

    assert Gift.objects.count() == 1
    gift.refresh_from_db()
    assert gift.status == Gift.Status.PAID
    assert gift.stripe_invoice_id == "in_1"
    assert gift.plan.stripe_subscription_id == "sub_1"
    assert len(receipts(mailoutbox, gift.donor_email)) == 1


def test_failed_renewal_marks_plan_past_due_and_asks_once_per_invoice(
    post_event, fake_stripe, mailoutbox
):
    gift = GiftFactory(frequency="monthly", amount_cents=2000)
    post_event(
        p.event(
            "checkout.session.completed",
            p.checkout_session(gift, subscription="sub_1", invoice="in_1"),
        )
    )
    failed = p.invoice(gift, invoice_id="in_2", subscription="sub_1", paid=False)
    post_event(p.event("invoice.payment_failed", failed))
    post_event(p.event("invoice.payment_failed", failed))  # Stripe's retry fails again

    plan = RecurringPlan.objects.get()
    assert plan.status == RecurringPlan.Status.PAST_DUE
    notes = [m for m in mailoutbox if "did not go through" in m.subject]
    assert len(notes) == 1
    assert "https://invoice.stripe.test/in_2" in notes[0].body
    assert "https://news.example/donate/manage/" in notes[0].body
    assert PaymentFailureNotice.objects.get().sent_at is not None

    post_event(
        p.event(
            "invoice.payment_failed",
            p.invoice(gift, invoice_id="in_3", subscription="sub_1", paid=False),
        )
    )
    assert len([m for m in mailoutbox if "did not go through" in m.subject]) == 2

    post_event(p.event("invoice.paid", p.invoice(gift, invoice_id="in_3", subscription="sub_1")))
    plan.refresh_from_db()
    assert plan.status == RecurringPlan.Status.ACTIVE


def test_subscription_updates_change_the_plan_and_an_old_update_cannot_undo_a_cancel(
    post_event, fake_stripe
):
    gift = GiftFactory(frequency="monthly", amount_cents=2000)
    now = int(time.time())
    post_event(
        p.event(
            "customer.subscription.updated",
            p.subscription(gift, subscription_id="sub_1", amount=3500),
            created=now - 100,
        )
    )
    plan = RecurringPlan.objects.get()
    assert plan.amount_cents == 3500 and plan.status == RecurringPlan.Status.ACTIVE

    post_event(
        p.event(
            "customer.subscription.deleted",
            p.subscription(
                gift, subscription_id="sub_1", status="canceled", amount=3500, canceled_at=now
            ),
            created=now,
        )
    )
    post_event(
        p.event(
            "customer.subscription.updated",
            p.subscription(gift, subscription_id="sub_1", status="active", amount=5000),
            created=now - 50,
        )
    )
    plan.refresh_from_db()
    assert plan.status == RecurringPlan.Status.CANCELED
    assert plan.canceled_at is not None
    assert plan.amount_cents == 3500


def test_older_subscription_update_arriving_late_is_ignored(post_event, fake_stripe):
    gift = GiftFactory(frequency="monthly")
    now = int(time.time())
    post_event(
        p.event(
            "customer.subscription.updated",
            p.subscription(gift, subscription_id="sub_1", amount=5000),
            created=now,
        )
    )
    post_event(
        p.event(
            "customer.subscription.updated",
            p.subscription(gift, subscription_id="sub_1", status="past_due", amount=2000),
            created=now - 60,
        )
    )
    plan = RecurringPlan.objects.get()
    assert (plan.amount_cents, plan.status) == (5000, RecurringPlan.Status.ACTIVE)


# --- refunds and disputes ------------------------------------------------------------------


def test_partial_then_full_refund(post_event, fake_stripe):
    gift = PaidGiftFactory(amount_cents=5000, stripe_payment_intent_id="pi_9")
    post_event(
        p.event(
            "charge.refunded", p.charge(payment_intent="pi_9", amount=5000, amount_refunded=2000)
        )
    )
    gift.refresh_from_db()
    assert (gift.status, gift.refunded_cents) == (Gift.Status.PARTIALLY_REFUNDED, 2000)

    post_event(
        p.event(
            "charge.refunded", p.charge(payment_intent="pi_9", amount=5000, amount_refunded=5000)
        )
    )
    gift.refresh_from_db()
    assert (gift.status, gift.refunded_cents) == (Gift.Status.REFUNDED, 5000)


def test_an_older_partial_refund_arriving_last_does_not_shrink_the_refund(post_event, fake_stripe):
    gift = PaidGiftFactory(amount_cents=5000, stripe_payment_intent_id="pi_9")
    post_event(
        p.event(
            "charge.refunded", p.charge(payment_intent="pi_9", amount=5000, amount_refunded=5000)
        )
    )
    post_event(
        p.event(
            "charge.refunded", p.charge(payment_intent="pi_9", amount=5000, amount_refunded=2000)
        )
    )
    gift.refresh_from_db()
    assert (gift.status, gift.refunded_cents) == (Gift.Status.REFUNDED, 5000)


def test_refund_before_the_gift_is_recorded_waits_and_then_applies(
    post_event, fake_stripe, mailoutbox
):
    gift = GiftFactory(amount_cents=5000)
    post_event(
        p.event(
            "charge.refunded", p.charge(payment_intent="pi_1", amount=5000, amount_refunded=5000)
        )
    )
    waiting = StripeEvent.objects.get()
    assert (waiting.outcome, waiting.waiting_for) == (StripeEvent.Outcome.WAITING, "pi_1")

    post_event(
        p.event("checkout.session.completed", p.checkout_session(gift, payment_intent="pi_1"))
    )
    gift.refresh_from_db()
    assert (gift.status, gift.refunded_cents) == (Gift.Status.REFUNDED, 5000)
    waiting.refresh_from_db()
    assert waiting.outcome == StripeEvent.Outcome.PROCESSED


def test_dispute_flags_the_gift_and_tells_staff(post_event, fake_stripe, mailoutbox, settings):
    settings.ADMINS = [("Development", "development@newsroom.example")]
    gift = PaidGiftFactory(stripe_payment_intent_id="pi_5")
    post_event(p.event("charge.dispute.created", p.dispute(payment_intent="pi_5")))
    gift.refresh_from_db()
    assert gift.disputed_at is not None
    [alert] = [m for m in mailoutbox if m.to == ["development@newsroom.example"]]
    assert f"Gift {gift.pk} is disputed" in alert.subject


# --- any order --------------------------------------------------------------------------------


def recurring_story(gift):
    """Everything Stripe says about a monthly gift: paid twice, the second refunded in part."""
    return [
        p.event(
            "checkout.session.completed",
            p.checkout_session(gift, subscription="sub_1", invoice="in_1"),
        ),
        p.event(
            "invoice.paid",
            p.invoice(
                gift, invoice_id="in_1", subscription="sub_1", billing_reason="subscription_create"
            ),
        ),
        p.event(
            "customer.subscription.updated",
            p.subscription(gift, subscription_id="sub_1", amount=2000),
            created=1_700_000_000,
        ),
        p.event("invoice.paid", p.invoice(gift, invoice_id="in_2", subscription="sub_1")),
        p.event(
            "charge.refunded",
            p.charge(payment_intent="pi_for_in_2", amount=2000, amount_refunded=500),
        ),
    ]


def snapshot():
    gifts = sorted(
        (
            g.stripe_invoice_id,
            g.status,
            g.amount_cents,
            g.refunded_cents,
            g.stripe_payment_intent_id,
            g.card_last4,
        )
        for g in Gift.objects.all()
    )
    plans = [
        (pl.stripe_subscription_id, pl.status, pl.amount_cents)
        for pl in RecurringPlan.objects.all()
    ]
    return gifts, plans


@pytest.mark.parametrize("seed", range(6))
def test_shuffled_and_repeated_events_give_the_same_records(
    post_event, fake_stripe, mailoutbox, seed
):
    gift = GiftFactory(frequency="monthly", amount_cents=2000)
    events = recurring_story(gift)
    deliveries = events + random.Random(seed).sample(events, 3)
    random.Random(seed).shuffle(deliveries)
    for event in deliveries:
        assert post_event(event).status_code == 200

    assert snapshot() == (
        [
            ("in_1", "paid", 2000, 0, "pi_for_in_1", "4242"),
            ("in_2", "partially_refunded", 2000, 500, "pi_for_in_2", "4242"),
        ],
        [("sub_1", "active", 2000)],
    )
    assert len(receipts(mailoutbox, gift.donor_email)) == 2
    assert not StripeEvent.objects.exclude(outcome=StripeEvent.Outcome.PROCESSED).exists()


def test_every_order_of_a_one_time_story_converges(post_event, fake_stripe, mailoutbox):
    for order in itertools.permutations(range(3)):
        Gift.objects.all().delete()
        StripeEvent.objects.all().delete()
        gift = GiftFactory(amount_cents=4000)
        story = [
            p.event("checkout.session.completed", p.checkout_session(gift, payment_intent="pi_7")),
            p.event(
                "charge.refunded",
                p.charge(payment_intent="pi_7", amount=4000, amount_refunded=1000),
            ),
            p.event("charge.dispute.created", p.dispute(payment_intent="pi_7")),
        ]
        for index in order:
            post_event(story[index])
        gift.refresh_from_db()
        assert (gift.status, gift.refunded_cents, gift.disputed_at is not None) == (
            Gift.Status.PARTIALLY_REFUNDED,
            1000,
            True,
        ), order


def test_a_failing_handler_is_recorded_and_retried_by_the_daily_reconcile(
    post_event, fake_stripe, mailoutbox
):
    from django.core.management import call_command

    gift = GiftFactory()
    fake_stripe.fail_with = RuntimeError("the card network said no")
    response = post_event(p.event("checkout.session.completed", p.checkout_session(gift)))
    assert response.status_code == 200  # the failure is the task's, recorded on the event
    stored = StripeEvent.objects.get()
    assert stored.outcome == StripeEvent.Outcome.FAILED
    assert "the card network said no" in stored.error
    gift.refresh_from_db()
    assert gift.status == Gift.Status.PENDING

    fake_stripe.fail_with = None
    call_command("reconcile_stripe", "--since", "1d")
    stored.refresh_from_db()
    gift.refresh_from_db()
    assert stored.outcome == StripeEvent.Outcome.PROCESSED and stored.error == ""
    assert gift.status == Gift.Status.PAID


# --- the endpoint ----------------------------------------------------------------------


def ignored_event(event_id: str = "evt_endpoint") -> dict:
    return p.event("customer.created", {"id": "cus_1", "object": "customer"}, event_id=event_id)


def test_the_webhook_is_answered_without_the_readers_middleware(post_event):
    response = post_event(ignored_event())
    assert response.status_code == 200
    # Set by XFrameOptionsMiddleware and the session's Vary for every page a person sees.
    assert not response.has_header("X-Frame-Options")
    assert "Cookie" not in response.get("Vary", "")
    # SecurityMiddleware, above it, still answers.
    assert response["X-Content-Type-Options"] == "nosniff"
    assert StripeEvent.objects.get().stripe_id == "evt_endpoint"


def test_the_event_is_stored_as_stripe_sent_it_and_applied(
    client, fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    # Stripe sends its events indented, and a donor's name in their own script.
    gift = GiftFactory(amount_cents=7500, donor_name="مريم حداد")
    event = p.event("checkout.session.completed", p.checkout_session(gift, payment_intent="pi_9"))
    body = json.dumps(event, indent=2, ensure_ascii=False)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/webhooks/stripe/",
            data=body.encode(),
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=sign(body),
        )

    assert response.status_code == 200
    stored = StripeEvent.objects.get()
    assert stored.payload == event
    assert stored.payload["data"]["object"]["customer_details"]["name"] == "مريم حداد"
    gift.refresh_from_db()
    assert (gift.status, stored.outcome) == (Gift.Status.PAID, StripeEvent.Outcome.PROCESSED)
    assert len(receipts(mailoutbox, gift.donor_email)) == 1


def test_the_webhook_answer_carries_no_page_policy(post_event):
    # A content security policy is for pages a browser shows; Stripe reads "ok".
    response = post_event(ignored_event())
    assert response.status_code == 200
    assert not response.has_header("Content-Security-Policy")
    assert not response.has_header("Content-Security-Policy-Report-Only")


def test_the_webhook_refuses_a_host_not_allowed(post_event):
    response = post_event(ignored_event(), HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert not StripeEvent.objects.exists()


def test_the_webhook_still_redirects_plain_http(post_event, settings):
    settings.SECURE_SSL_REDIRECT = True
    response = post_event(ignored_event())
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/webhooks/stripe/"
    assert not StripeEvent.objects.exists()


def test_the_webhook_has_one_url_whatever_the_language(post_event):
    response = post_event(ignored_event(), path="/ar/webhooks/stripe/")
    assert response.status_code == 404
    assert reverse("stripe_webhook") == "/webhooks/stripe/"


def test_a_database_error_answers_503_for_stripe_to_retry(post_event, monkeypatch):
    def unavailable(*, event, payload):
        raise OperationalError("the database system is starting up")

    monkeypatch.setattr("donations.services.stripe_event_accept", unavailable)
    response = post_event(ignored_event())
    assert response.status_code == 503
    assert response["Retry-After"]


@pytest.mark.django_db(transaction=True)
def test_accepting_an_event_checks_the_connection_only_after_a_failure(post_event, monkeypatch):
    checks = []
    is_usable = type(connections["default"]).is_usable
    monkeypatch.setattr(
        type(connections["default"]),
        "is_usable",
        lambda self: checks.append(self) or is_usable(self),
    )
    close_old_connections()  # as each request starts: the health check is due again

    assert post_event(ignored_event()).status_code == 200
    assert checks == []
    assert StripeEvent.objects.count() == 1


def drop_connection_from_the_server() -> None:
    """End this test's database session from another one, as a server restart would."""
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    other = connection.get_new_connection(connection.get_connection_params())
    try:
        other.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
    finally:
        other.close()
    close_old_connections()  # as each request starts: Django has not seen it go


@pytest.mark.django_db(transaction=True)
def test_an_event_on_a_connection_the_server_dropped_is_stored_once(post_event):
    if connection.vendor != "postgresql":
        skip_or_fail("dropping a connection needs a database server")
    drop_connection_from_the_server()

    assert post_event(ignored_event()).status_code == 200
    assert post_event(ignored_event()).status_code == 200
    assert StripeEvent.objects.filter(stripe_id="evt_endpoint").count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_event_while_the_database_is_away_answers_503_and_is_stored_on_retry(post_event):
    if connection.vendor != "postgresql":
        skip_or_fail("dropping a connection needs a database server")
    drop_connection_from_the_server()

    def refused(self, params):
        raise psycopg.OperationalError("connection refused")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(connections["default"]), "get_new_connection", refused)
        response = post_event(ignored_event())
    assert response.status_code == 503

    assert post_event(ignored_event()).status_code == 200
    assert StripeEvent.objects.filter(stripe_id="evt_endpoint").count() == 1


def prepared_event_statements() -> list[tuple[str, int]]:
    """This connection's prepared statements that store an event: (text, times run)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE %s",
            ["WITH new AS (INSERT INTO %donations_stripeevent%"],
        )
        return cursor.fetchall()


@pytest.mark.django_db(transaction=True)
def test_the_events_statement_is_prepared_once_per_connection(post_event):
    if connection.vendor != "postgresql":
        skip_or_fail("prepared statements are PostgreSQL's")
    for n in range(3):
        assert post_event(ignored_event(f"evt_prepared_{n}")).status_code == 200
    assert post_event(ignored_event("evt_prepared_0")).status_code == 200  # a redelivery

    # One statement, planned for the first event and run again for the others.
    [(_, runs)] = prepared_event_statements()
    assert runs == 4
    assert StripeEvent.objects.filter(stripe_id__startswith="evt_prepared_").count() == 3

    # A new connection prepares it again.
    drop_connection_from_the_server()
    assert post_event(ignored_event("evt_prepared_3")).status_code == 200
    assert post_event(ignored_event("evt_prepared_3")).status_code == 200
    [(_, runs)] = prepared_event_statements()
    assert runs == 2
    assert StripeEvent.objects.filter(stripe_id__startswith="evt_prepared_").count() == 4
