"""Amounts in cents: the fee a donor may cover and how an amount is written."""

from __future__ import annotations

from django.conf import settings

SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "cad": "CA$", "aud": "A$", "ils": "₪"}


def fee_cents(amount_cents: int) -> int:
    """What to add to `amount_cents` so that, after Stripe's fee, the newsroom keeps all of it.

    The fee is taken from the total, so the total is (amount + fixed) / (1 - rate),
    rounded up to the cent (docs.stripe.com/payments/checkout/pay-what-you-want).
    """
    basis = 10_000 - settings.DONATION_FEE_BASIS_POINTS
    numerator = (amount_cents + settings.DONATION_FEE_FIXED_CENTS) * 10_000
    total = -(-numerator // basis)  # ceiling division, exact in integers
    return total - amount_cents


def fee_description() -> str:
    percent = settings.DONATION_FEE_BASIS_POINTS / 100
    return f"{percent:g}% + {format_cents(settings.DONATION_FEE_FIXED_CENTS, exact=True)}"


def format_cents(cents: int, currency: str | None = None, *, exact: bool = False) -> str:
    """$25 for whole amounts, $25.50 otherwise (or always with cents when `exact`)."""
    currency = (currency or settings.DONATION_CURRENCY).lower()
    symbol = SYMBOLS.get(currency)
    whole, rest = divmod(int(cents), 100)
    number = f"{whole:,}" if rest == 0 and not exact else f"{whole:,}.{rest:02d}"
    return f"{symbol}{number}" if symbol else f"{number} {currency.upper()}"
