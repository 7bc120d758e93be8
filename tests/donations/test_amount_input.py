"""Numbers a donor or a link types into the donate pages: a clear answer, never a crash."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from donations.models import Gift
from donations.money import (
    AmountInvalid,
    currency_exponent,
    fee_cents,
    format_cents,
    parse_amount,
    plain_amount,
)
from tests.donations.factories import GiftFactory
from tests.donations.strategies import typed_amounts

pytestmark = pytest.mark.django_db

VALID = {"frequency": "one_time", "amount": "other", "email": "leila@mail.example"}


def give(client, custom_amount: str):
    return client.post("/donate/", {**VALID, "custom_amount": custom_amount})


@pytest.mark.parametrize("typed", ["9" * 29, "25,000,000,000,000,000,000", "25000.01", "9" * 40])
def test_a_huge_custom_amount_asks_the_donor_to_write_to_us(client, fake_stripe, typed):
    response = give(client, typed)

    assert response.status_code == 400
    assert "For a gift above $25,000, please write to us" in response.content.decode()
    assert not Gift.objects.exists()


@pytest.mark.parametrize(
    "typed", ["²", "NaN", "-NaN", "sNaN", "Infinity", "-inf", "-1e30", "9" * 50, "-5", "1,00,000"]
)
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


@pytest.mark.parametrize("typed", ["1e30", "1e999999999", "1E2", "2.5e1", "1e-2"])
def test_a_custom_amount_written_with_an_exponent_asks_for_plain_digits(client, fake_stripe, typed):
    response = give(client, typed)

    assert response.status_code == 400
    assert "Please write the amount out in digits, like 30.50" in response.content.decode()
    assert not Gift.objects.exists()


@pytest.mark.parametrize(
    ("typed", "cents"),
    [
        ("\u0665\u0660\u066b\u0662\u0665", 5025),  # fifty and a quarter, Arabic-Indic
        ("\u06f5\u06f0\u066b\u06f2\u06f5", 5025),  # the same in Eastern Arabic-Indic
        ("\u0661\u066c\u0662\u0665\u0660", 125000),  # 1,250 with the Arabic thousands separator
        ("1,250", 125000),
        ("1,250.75", 125075),
        ("1\u2009250", 125000),  # thin space
        ("1\u00a0250,50", 125050),  # no-break space, then a decimal comma
        ("1\u202f250", 125000),  # narrow no-break space
        ("12,5", 1250),  # a comma before other than three digits is a decimal comma
        ("1 250,5", 125050),
        ("12,50", 1250),
        ("$30", 3000),
        ("30 USD", 3000),
        ("30.", 3000),
        ("30.500", 3050),  # zeros past the cents change nothing
    ],
)
def test_a_custom_amount_is_read_with_the_separators_readers_type(
    client, fake_stripe, typed, cents
):
    response = give(client, typed)

    assert response.status_code == 303
    assert Gift.objects.get().amount_cents == cents


def test_an_amount_with_more_decimals_than_dollars_have_is_refused(client, fake_stripe):
    response = give(client, "12.345")

    assert response.status_code == 400
    assert "Please enter an amount in dollars and cents, like 30.50." in response.content.decode()
    assert not Gift.objects.exists()


# --- currencies with other minor units (Stripe's lists) -------------------------------------


@pytest.mark.parametrize(
    ("currency", "exponent"),
    [("usd", 2), ("EUR", 2), ("jpy", 0), ("KRW", 0), ("xof", 0), ("kwd", 3), ("BHD", 3)],
)
def test_each_currency_has_stripes_number_of_decimals(currency, exponent):
    assert currency_exponent(currency) == exponent


def test_the_donation_currency_setting_decides_the_decimals(settings):
    settings.DONATION_CURRENCY = "jpy"
    assert currency_exponent() == 0
    assert parse_amount("1,000") == 1000


def test_a_yen_amount_is_counted_in_whole_yen(client, fake_stripe, settings):
    settings.DONATION_CURRENCY = "jpy"

    response = give(client, "1,000")

    assert response.status_code == 303
    assert Gift.objects.get().amount_cents == 1000


def test_a_yen_amount_with_decimals_is_refused(client, fake_stripe, settings):
    settings.DONATION_CURRENCY = "jpy"

    response = give(client, "1000.5")

    assert response.status_code == 400
    assert "Please enter a whole amount, without decimals, like 3,000." in (
        response.content.decode()
    )


def test_a_dinar_amount_is_counted_in_fils(settings):
    settings.DONATION_CURRENCY = "kwd"

    assert parse_amount("12.340") == 12340
    assert parse_amount("12.34") == 12340
    assert parse_amount("1,012.5") == 1012500
    assert parse_amount("\u0661\u0662\u066b\u0663\u0664\u0660") == 12340


def test_a_dinar_gift_ending_in_zero_fils_goes_to_checkout(client, fake_stripe, settings):
    settings.DONATION_CURRENCY = "kwd"

    response = give(client, "12.340")

    assert response.status_code == 303
    assert Gift.objects.get().amount_cents == 12340


@pytest.mark.parametrize("typed", ["12.345", "12.341"])
def test_a_dinar_gift_not_ending_in_zero_fils_is_refused_as_stripe_requires(
    client, fake_stripe, settings, typed
):
    # docs.stripe.com/currencies#three-decimal: the last digit must be 0; refused, not
    # rounded, so the donor is never charged other than what they typed.
    settings.DONATION_CURRENCY = "kwd"

    response = give(client, typed)

    assert response.status_code == 400
    assert "Please enter an amount whose last decimal is 0, like 30.250" in (
        response.content.decode()
    )
    assert not Gift.objects.exists()


def test_a_dinar_amount_with_four_decimals_is_refused(settings):
    settings.DONATION_CURRENCY = "kwd"

    with pytest.raises(AmountInvalid, match="at most 3 decimals"):
        parse_amount("12.3456")


@pytest.mark.parametrize(
    ("currency", "cents", "short", "exact"),
    [
        ("usd", 2500, "$25", "$25.00"),
        ("usd", 2550, "$25.50", "$25.50"),
        ("jpy", 1000, "1,000 JPY", "1,000 JPY"),
        ("kwd", 12340, "12.340 KWD", "12.340 KWD"),
        ("kwd", 12000, "12 KWD", "12.000 KWD"),
    ],
)
def test_an_amount_is_written_with_its_currencys_decimals(currency, cents, short, exact):
    assert format_cents(cents, currency) == short
    assert format_cents(cents, currency, exact=True) == exact


def test_the_fee_a_dinar_donor_covers_is_chargeable_at_stripe(settings):
    settings.DONATION_CURRENCY = "kwd"

    for amount in (5_000, 12_340, 100_000):
        assert (amount + fee_cents(amount)) % 10 == 0


def test_the_fee_keeps_the_whole_gift_for_the_newsroom_in_every_currency(settings):
    for currency in ("usd", "jpy", "kwd"):
        settings.DONATION_CURRENCY = currency
        for amount in (500, 12_340, 2_500_000):
            total = amount + fee_cents(amount)
            kept = total - total * settings.DONATION_FEE_BASIS_POINTS / 10_000
            assert kept - settings.DONATION_FEE_FIXED_CENTS >= amount


# --- every way of writing an amount, generated ----------------------------------------------


@pytest.mark.parametrize("currency", ["usd", "jpy", "kwd"])
def test_every_well_formed_amount_reads_back_as_the_amount_written(currency):
    @hypothesis_settings(max_examples=150, deadline=None, database=None)
    @given(typed=typed_amounts(currency=currency))
    def reads_back(typed):
        minor, text = typed
        assert parse_amount(text, currency) == minor

    reads_back()


@pytest.mark.parametrize("currency", ["usd", "jpy", "kwd"])
def test_an_amount_written_by_the_site_reads_back_as_the_same_amount(currency):
    @hypothesis_settings(max_examples=100, deadline=None, database=None)
    @given(minor=st.integers(0, 10**9), exact=st.booleans())
    def reads_back(minor, exact):
        minor -= minor % (10 if currency == "kwd" else 1)
        assert parse_amount(format_cents(minor, currency, exact=exact), currency) == minor

    reads_back()


@hypothesis_settings(max_examples=150, deadline=None, database=None)
@given(text=st.text(max_size=60), currency=st.sampled_from(["usd", "jpy", "kwd"]))
def test_any_text_is_an_amount_or_a_message_never_a_crash(text, currency):
    try:
        minor = parse_amount(text, currency)
    except AmountInvalid as exc:
        assert str(exc).startswith("Please ")
    else:
        assert minor >= 0


@pytest.mark.parametrize(
    ("currency", "cents", "text"),
    [
        ("usd", 2550, "25.50"),
        ("usd", 2500, "25.00"),
        ("jpy", 1000, "1000"),
        ("kwd", 12340, "12.340"),
    ],
)
def test_an_amount_in_a_spreadsheet_has_its_currencys_decimals(currency, cents, text):
    assert plain_amount(cents, currency) == text


def test_a_yen_gift_is_named_in_whole_yen(settings):
    gift = GiftFactory(amount_cents=1000, currency="jpy", donor_email="kenji@mail.example")

    assert str(gift) == "1,000 JPY from kenji@mail.example"
