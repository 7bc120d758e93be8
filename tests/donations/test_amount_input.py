"""Numbers a donor or a link types into the donate pages: a clear answer, never a crash."""

from __future__ import annotations

import pytest

from donations.models import Gift
from tests.donations.factories import GiftFactory

pytestmark = pytest.mark.django_db

VALID = {"frequency": "one_time", "amount": "other", "email": "leila@mail.example"}


def give(client, custom_amount: str):
    return client.post("/donate/", {**VALID, "custom_amount": custom_amount})


@pytest.mark.parametrize("typed", ["1e30", "9" * 29, "25,000,000,000,000,000,000", "1e999999999"])
def test_a_huge_custom_amount_asks_the_donor_to_write_to_us(client, fake_stripe, typed):
    response = give(client, typed)

    assert response.status_code == 400
    assert "For a gift above $25,000, please write to us" in response.content.decode()
    assert not Gift.objects.exists()


@pytest.mark.parametrize("typed", ["²", "NaN", "-1e30", "9" * 50])
def test_a_custom_amount_that_is_not_a_number_asks_for_numbers(client, fake_stripe, typed):
    response = give(client, typed)

    assert response.status_code == 400
    assert "Please enter an amount in numbers" in response.content.decode()
    assert not Gift.objects.exists()


@pytest.mark.parametrize("typed", ["\u0663\u0660", "\u06f3\u06f0"])
def test_a_custom_amount_in_arabic_indic_digits_is_read_as_the_donor_means(
    client, fake_stripe, typed
):
    response = give(client, typed)

    assert response.status_code == 303
    assert Gift.objects.get().amount_cents == 3000


@pytest.mark.parametrize("query", ["appeal=%C2%B2", "amount=%C2%B2", "article=%C2%B2"])
def test_the_donate_page_ignores_a_superscript_digit_in_its_link(client, query):
    assert client.get(f"/donate/?{query}").status_code == 200


def test_the_thanks_page_ignores_a_superscript_check_count(client):
    gift = GiftFactory(stripe_checkout_session_id="cs_test_superscript")
    response = client.get(f"/donate/thanks/?session_id={gift.stripe_checkout_session_id}&check=²")

    assert response.status_code == 200
    assert "check=1" in response.content.decode()
