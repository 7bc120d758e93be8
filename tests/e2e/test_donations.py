"""A reader gives through the donate form in chromium and reaches (faked) Stripe Checkout."""

from __future__ import annotations

import re

import pytest

from donations import stripe_api
from donations.models import Gift
from donations.money import fee_cents
from tests.donations.fixtures import DOORWAY, FakeStripe

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHECKOUT_PATH = "/fake-stripe-checkout/"


@pytest.fixture
def fake_stripe(monkeypatch, settings, live_server) -> FakeStripe:
    settings.DONATION_MIN_CENTS = 500
    settings.DONATION_FEE_BASIS_POINTS = 290
    settings.DONATION_FEE_FIXED_CENTS = 30
    # Stripe's hosted page is not reachable from here, and Playwright does not route
    # requests that follow a redirect: the fake sends the browser to a path of the
    # live server instead, and the test checks the browser arrived there.
    fake = FakeStripe(checkout_url_base=live_server.url + CHECKOUT_PATH)
    for name in DOORWAY:
        monkeypatch.setattr(stripe_api, name, getattr(fake, name))
    return fake


def test_reader_gives_monthly_and_is_sent_to_stripe_checkout(browser_page, fake_stripe):
    page = browser_page
    page.goto("/donate/?frequency=monthly")
    submit = page.locator("button.donate-submit")
    assert submit.inner_text() == "Give $20 monthly"

    page.get_by_label("$35").check()
    assert submit.inner_text() == "Give $35 monthly"
    page.get_by_label(re.compile("Cover the processing fee")).check()
    total = 3500 + fee_cents(3500)
    assert submit.inner_text() == f"Give ${total // 100}.{total % 100:02d} monthly"

    page.get_by_label("Your name (optional)").fill("Huda Nasser")
    page.get_by_label("Your email").fill("huda@mail.example")
    page.get_by_text("Give in honour or in memory of someone").click()
    page.get_by_label("In memory of").check()
    page.get_by_label("Their name").fill("Karim Nasser")
    with page.expect_navigation(url=re.compile(CHECKOUT_PATH)):
        submit.click()

    assert page.url.endswith(f"{CHECKOUT_PATH}cs_test_fake_1")
    [call] = fake_stripe.named("checkout_session_create")
    assert call["params"]["mode"] == "subscription"
    gift = Gift.objects.get()
    assert (gift.amount_cents, gift.frequency, gift.status) == (total, "monthly", "pending")
    assert (gift.dedication, gift.honoree_name) == ("memory", "Karim Nasser")
    assert call["params"]["metadata"]["gift_id"] == str(gift.pk)


def test_reader_with_a_mistake_sees_what_to_fix_and_nothing_is_charged(browser_page, fake_stripe):
    page = browser_page
    page.goto("/donate/?frequency=one_time")
    page.get_by_label("Another amount", exact=True).first.check()
    page.locator("#id_custom_amount").fill("2")
    page.locator("button.donate-submit").click()

    alert = page.get_by_role("alert")
    assert "Please enter your email address" in alert.inner_text()
    assert "The smallest gift we can take online is $5." in alert.inner_text()
    assert page.locator("#id_custom_amount").input_value() == "2"
    assert fake_stripe.calls == []
    assert not Gift.objects.exists()
