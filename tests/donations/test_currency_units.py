"""Amounts are in each currency's smallest unit at Stripe: yen whole, dinars in thousandths."""

from __future__ import annotations

import pytest

from donations.money import currency_exponent, format_cents
from tests.donations.factories import GiftFactory


@pytest.mark.parametrize(
    ("currency", "exponent", "written"),
    [("jpy", 0, "5,000 JPY"), ("usd", 2, "$50"), ("kwd", 3, "5 KWD"), ("JOD", 3, "5 JOD")],
)
def test_each_kind_of_currency_is_written_from_its_smallest_unit(currency, exponent, written):
    assert currency_exponent(currency) == exponent
    assert format_cents(5000, currency) == written


def test_exact_amounts_show_as_many_decimals_as_the_currency_has():
    assert format_cents(5250, "bhd", exact=True) == "5.250 BHD"
    assert format_cents(5250, "usd", exact=True) == "$52.50"
    assert format_cents(5250, "krw", exact=True) == "5,250 KRW"


@pytest.mark.django_db
def test_a_yen_gift_names_its_amount_in_whole_yen():
    gift = GiftFactory(amount_cents=5000, currency="jpy", donor_email="kenji@mail.example")
    assert str(gift) == "5,000 JPY from kenji@mail.example"
