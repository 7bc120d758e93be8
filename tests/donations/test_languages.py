"""Giving in the donor's language: Checkout, the portal and every email in the page's language."""

from __future__ import annotations

import pytest

from donations import services
from donations.models import Gift
from tests.donations import stripe_payloads as p
from tests.donations.factories import PaidGiftFactory
from tests.donations.stripe_http import StripeHTTP

pytestmark = pytest.mark.django_db

GIFT = {"frequency": "one_time", "amount": "5000", "email": "noa@mail.example", "name": "נועה"}


@pytest.fixture
def stripe_http(settings):
    """The real SDK against a local Stripe API that refuses locales Stripe lacks."""
    server = StripeHTTP().start()
    settings.STRIPE_API_BASE = server.base
    yield server
    server.stop()


def test_a_gift_from_the_hebrew_page_opens_checkout_for_a_hebrew_reader(client, stripe_http):
    response = client.post("/he/donate/", GIFT)

    assert response.status_code == 303
    assert Gift.objects.get().language == "he"
    [session] = stripe_http.posted_to("/v1/checkout/sessions")
    # Stripe's hosted Checkout has no Hebrew (a session asking for it is refused): the
    # donor's browser language, and the gift's own wording in Hebrew.
    assert session["locale"] == ["auto"]
    assert session["line_items[0][price_data][product_data][name]"] == ["תרומה ל-The Levant Ledger"]
    assert session["success_url"][0].startswith("https://news.example/he/donate/thanks/")
    assert session["cancel_url"] == ["https://news.example/he/donate/cancelled/"]
    assert session["metadata[language]"] == ["he"]


def test_a_gift_from_the_english_page_opens_checkout_in_english(client, stripe_http):
    client.post("/donate/", GIFT)

    [session] = stripe_http.posted_to("/v1/checkout/sessions")
    assert session["locale"] == ["en"]
    assert Gift.objects.get().language == "en"


def test_the_hebrew_donor_gets_a_hebrew_receipt_right_to_left(
    client, stripe_http, post_event, mailoutbox
):
    client.post("/he/donate/", GIFT)
    gift = Gift.objects.get()

    post_event(p.event("checkout.session.completed", p.checkout_session(gift)))

    [receipt] = mailoutbox
    html = receipt.alternatives[0][0]
    assert receipt.subject == "הקבלה שלך: 50.00 $ ל-The Levant Ledger"  # one line, plain spaces
    assert '<html lang="he" dir="rtl">' in html
    assert 'dir="rtl"' in html.split("<table", 1)[1].split(">", 1)[0]
    assert "קבלה על תרומתך" in html and "קבלה על תרומתך" in receipt.body
    assert "Receipt for your gift" not in receipt.body
    assert "https://news.example/he/donate/manage/" in receipt.body


def test_a_receipt_names_the_day_with_the_languages_month(mailoutbox):
    gift = PaidGiftFactory(
        language="ar", amount_cents=5000, receipt_sent_at=None, paid_at="2026-03-04T10:00:00Z"
    )

    services.receipt_send(gift_id=gift.pk)

    [receipt] = mailoutbox
    assert "4 مارس 2026" in receipt.body
    assert "50.00\u00a0$" in receipt.body


def test_the_customer_portal_opens_in_the_pages_language_where_stripe_has_it(client, stripe_http):
    PaidGiftFactory(donor_email="rana@mail.example", stripe_customer_id="cus_rana")
    token = services.manage_token_make(email="rana@mail.example")
    client.post(f"/donate/manage/open/{token}/")

    english = client.post("/donate/manage/portal/")
    hebrew = client.post("/he/donate/manage/portal/")

    assert english.status_code == hebrew.status_code == 303
    portals = stripe_http.posted_to("/v1/billing_portal/sessions")
    assert [form["locale"] for form in portals] == [["en"], ["auto"]]
    assert portals[1]["return_url"] == ["https://news.example/he/donate/manage/giving/"]
