"""Amounts in cents: the fee a donor may cover and how an amount is written."""

from __future__ import annotations

from django.conf import settings

SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "cad": "CA$", "aud": "A$", "ils": "₪"}

# Stripe counts these in whole units or thousandths, not hundredths
# (docs.stripe.com/currencies#zero-decimal, #three-decimal).
ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga"}
    | {"pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})


def currency_exponent(code: str) -> int:
    """How many decimal places the currency's smallest unit has at Stripe (0, 2 or 3)."""
    code = (code or "").lower()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


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
    """$25 for whole amounts, $25.50 otherwise (or always with cents when `exact`).

    `cents` is in the currency's smallest unit: 5000 JPY is 5,000 JPY, 5000 KWD is 5.000 KWD.
    """
    currency = (currency or settings.DONATION_CURRENCY).lower()
    symbol = SYMBOLS.get(currency)
    exponent = currency_exponent(currency)
    whole, rest = divmod(int(cents), 10**exponent)
    if exponent == 0 or (rest == 0 and not exact):
        number = f"{whole:,}"
    else:
        number = f"{whole:,}.{rest:0{exponent}d}"
    return f"{symbol}{number}" if symbol else f"{number} {currency.upper()}"
