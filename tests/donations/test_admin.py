"""Staff in the admin: refunds through Stripe, CSV export, appeal results, event outcomes."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse

from donations.models import Gift, StripeEvent
from tests.donations import stripe_payloads as p
from tests.donations.factories import AppealFactory, GiftFactory, PaidGiftFactory
from tests.helpers import login_staff
from tests.newsroom.factories import ArticleFactory, StaffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    login_staff(client, StaffFactory())
    return client


def act(staff_client, action, gifts):
    return staff_client.post(
        reverse("admin:donations_gift_changelist"),
        {"action": action, "_selected_action": [g.pk for g in gifts]},
        follow=action != "export_csv",
    )


def test_refund_asks_stripe_and_waits_for_the_webhook(staff_client, fake_stripe, post_event):
    gift = PaidGiftFactory(amount_cents=5000, stripe_payment_intent_id="pi_r")
    response = act(staff_client, "refund", [gift])

    assert "Asked Stripe to refund 1 gift." in response.content.decode()
    [call] = fake_stripe.named("refund_create")
    assert call == {
        "payment_intent": "pi_r",
        "amount": 5000,
        "idempotency_key": f"gift-{gift.pk}-refund-0",
    }
    gift.refresh_from_db()
    assert gift.status == Gift.Status.PAID  # not until Stripe confirms
    assert gift.refund_requested_at is not None

    post_event(
        p.event(
            "charge.refunded", p.charge(payment_intent="pi_r", amount=5000, amount_refunded=5000)
        )
    )
    gift.refresh_from_db()
    assert (gift.status, gift.refunded_cents) == (Gift.Status.REFUNDED, 5000)


def test_refund_of_an_unpaid_gift_is_refused_and_stripe_is_not_called(staff_client, fake_stripe):
    gift = GiftFactory()
    response = act(staff_client, "refund", [gift])
    assert "is pending" in response.content.decode()
    assert fake_stripe.named("refund_create") == []


def test_double_click_on_refund_is_one_refund_at_stripe(staff_client, fake_stripe):
    gift = PaidGiftFactory(stripe_payment_intent_id="pi_r")
    act(staff_client, "refund", [gift])
    act(staff_client, "refund", [gift])
    keys = {call["idempotency_key"] for call in fake_stripe.named("refund_create")}
    assert keys == {f"gift-{gift.pk}-refund-0"}


def test_csv_export_lists_the_selected_gifts(staff_client):
    appeal = AppealFactory(name="Winter fund")
    gifts = [
        PaidGiftFactory(
            amount_cents=2500,
            donor_email="a@mail.example",
            appeal=appeal,
            utm={"utm_source": "newsletter"},
        ),
        PaidGiftFactory(amount_cents=10000, donor_email="b@mail.example", anonymous=True),
    ]
    response = act(staff_client, "export_csv", gifts)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    by_email = {row["donor_email"]: row for row in rows}
    assert by_email["a@mail.example"]["amount"] == "25.00"
    assert by_email["a@mail.example"]["appeal"] == "Winter fund"
    assert by_email["a@mail.example"]["utm_source"] == "newsletter"
    assert by_email["b@mail.example"]["anonymous"] == "yes"


def test_gift_search_finds_a_stripe_id(staff_client):
    PaidGiftFactory(stripe_payment_intent_id="pi_findme", donor_email="x@mail.example")
    PaidGiftFactory(stripe_payment_intent_id="pi_other", donor_email="y@mail.example")
    page = staff_client.get(
        reverse("admin:donations_gift_changelist"), {"q": "pi_findme"}
    ).content.decode()
    assert "x@mail.example" in page and "y@mail.example" not in page


def test_appeal_list_shows_counters_and_conversion(staff_client):
    appeal = AppealFactory(name="Spring drive")
    appeal.impressions, appeal.clicks = 400, 40
    appeal.save()
    PaidGiftFactory(appeal=appeal, amount_cents=5000)
    PaidGiftFactory(appeal=appeal, amount_cents=3000)
    page = staff_client.get(reverse("admin:donations_appeal_changelist")).content.decode()
    assert "Spring drive" in page
    assert "10.0%" in page  # clicks / impressions
    assert "0.50%" in page  # gifts / impressions
    assert "$80.00" in page


def test_events_show_their_outcome_and_error(staff_client):
    StripeEvent.objects.create(
        stripe_id="evt_bad",
        type="invoice.paid",
        payload={},
        outcome=StripeEvent.Outcome.FAILED,
        error="Traceback...\nKeyError: 'id'",
    )
    page = staff_client.get(reverse("admin:donations_stripeevent_changelist")).content.decode()
    assert "evt_bad" in page and "KeyError: &#x27;id&#x27;" in page


def test_admin_pages_render(staff_client):
    gift = PaidGiftFactory()
    for url in (
        reverse("admin:donations_gift_changelist"),
        reverse("admin:donations_gift_change", args=[gift.pk]),
        reverse("admin:donations_recurringplan_changelist"),
        reverse("admin:donations_appeal_add"),
        reverse("admin:donations_givingstatement_changelist"),
        reverse("admin:donations_paymentfailurenotice_changelist"),
    ):
        assert staff_client.get(url).status_code == 200, url


def test_appeal_amounts_are_checked_when_staff_save(staff_client):
    data = {
        "name": "Spring",
        "active": "on",
        "placement": "site_banner",
        "after_paragraph": 3,
        "priority": 100,
        "audience": "everyone",
        "starts_at_0": "2026-03-01",
        "starts_at_1": "08:00",
        "headline": "Spring",
        "body": "Give.",
        "cta_label": "Give",
        "image_alt": "",
        "default_frequency": "monthly",
        "amounts_one_time": "[2500, 5000]",
        "amounts_monthly": "[100]",
        "amounts_annual": '["ten"]',
        "goal_cents": "",
    }
    page = staff_client.post(reverse("admin:donations_appeal_add"), data).content.decode()
    assert "Each amount must be between 500 and 2500000 cents" in page
    assert "Write a list of amounts in cents" in page
    data.update(amounts_monthly="[1000, 2000]", amounts_annual="[10000]")
    response = staff_client.post(reverse("admin:donations_appeal_add"), data)
    assert response.status_code == 302
    from donations.models import Appeal

    assert Appeal.objects.get().amounts_monthly == [1000, 2000]


def test_deleting_appeals_in_bulk_takes_them_off_cached_pages_at_once(staff_client):
    appeals = [
        AppealFactory(headline="Spring ask", priority=200),
        AppealFactory(headline="Autumn ask"),
    ]
    article = ArticleFactory()
    reader = Client()
    assert "Spring ask" in reader.get(article.get_absolute_url()).content.decode()

    staff_client.post(
        reverse("admin:donations_appeal_changelist"),
        {"action": "delete_selected", "_selected_action": [a.pk for a in appeals], "post": "yes"},
    )

    page = reader.get(article.get_absolute_url()).content.decode()
    assert "Spring ask" not in page and "Autumn ask" not in page
