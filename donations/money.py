"""Amounts in a currency's minor unit: how many decimals it has, how a reader's typed
amount is read, the fee a donor may cover, and how an amount is written."""

from __future__ import annotations

import re

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from newsroom.parsing import normalise_digits

SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "cad": "CA$", "aud": "A$", "ils": "₪"}
# Stripe's lists (docs.stripe.com/currencies#zero-decimal and #three-decimal); every other
# currency Stripe takes has two decimals.
ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga"}
    | {"pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
# Longer input is not an amount: room for "25,000,000.000" with a sign and spaces.
MAX_AMOUNT_CHARACTERS = 40

# The Arabic decimal separator, as readers of Arabic and Persian type it.
ARABIC_DECIMAL = "\u066b"
# Thousands separators: the comma, the Arabic one (U+066C), and the spaces that
# typesetting and French or Persian keyboards put between groups.
GROUP = ",\u066c \u00a0\u2009\u202f"
# Either plain digits or digits grouped by threes, then an optional decimal point. A
# comma is a thousands separator only when exactly three digits follow it ("1,000",
# "12,345"); "1,5", "12,50" and "1 250,50" are read as a decimal comma instead, as typed
# across Europe, and a group of two or four digits ("1,00,000") is not an amount.
_AMOUNT = re.compile(
    rf"(?P<whole>[0-9]+|[0-9]{{1,3}}(?:[{GROUP}][0-9]{{3}})+)(?:\.(?P<fraction>[0-9]*))?",
    re.ASCII,
)
_DECIMAL_COMMA = re.compile(
    r"(?P<whole>[0-9]+|[0-9]{1,3}(?:[\u066c \u00a0\u2009\u202f][0-9]{3})+)"
    r",(?P<fraction>[0-9]{1,2}|[0-9]{4,})",
    re.ASCII,
)
# Scientific notation: Decimal reads "1e30", a reader never means it.
_EXPONENT = re.compile(r"[0-9.,]*[0-9][eE][+-]?[0-9]+", re.ASCII)
# Languages whose readers write the currency after the amount (CLDR's currency patterns for
# Arabic and Hebrew, "25 $", with Latin digits as our pages use), a no-break space between.
SIGN_AFTER = frozenset({"ar", "he"})
# A currency sign the reader may type before or after the number (codes are stripped too).
_SIGNS = "$€£₪¥﷼"


class AmountInvalid(ValueError):
    """A typed amount that cannot be charged; the message says what to type instead."""


def currency_exponent(code: str | None = None) -> int:
    """How many decimals `code` (the donation currency when None) has at Stripe."""
    code = (code or settings.DONATION_CURRENCY).lower()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def minor_step(code: str | None = None) -> int:
    """The smallest amount, in minor units, Stripe charges in: three-decimal currencies
    must end in 0 (docs.stripe.com/currencies#three-decimal)."""
    return 10 if currency_exponent(code) == 3 else 1


def _example(code: str) -> str:
    return {0: "3,000", 2: "30.50", 3: "30.250"}[currency_exponent(code)]


def parse_amount(text: str, currency: str | None = None) -> int:
    """The amount in minor units that a reader's `text` spells in `currency`.

    Raises AmountInvalid for anything that is not a plain positive number (no exponent,
    NaN or infinity), has more decimals than the currency, or is not a multiple of the
    currency's step. Range checks are the caller's: it knows the limits.
    """
    currency = (currency or settings.DONATION_CURRENCY).lower()
    exponent = currency_exponent(currency)
    like = {"example": _example(currency)}
    numbers = _("Please enter an amount in numbers, like %(example)s.") % like
    raw = normalise_digits(str(text)).replace(ARABIC_DECIMAL, ".").strip()
    if len(raw) > MAX_AMOUNT_CHARACTERS:
        raise AmountInvalid(numbers)
    for affix in (currency, currency.upper()):
        raw = raw.removeprefix(affix).removesuffix(affix)
    raw = raw.strip().strip(_SIGNS).strip()
    match = _AMOUNT.fullmatch(raw) or _DECIMAL_COMMA.fullmatch(raw)
    if match is None and _EXPONENT.fullmatch(raw):
        raise AmountInvalid(
            _("Please write the amount out in digits, like %(example)s, not as a power of ten.")
            % like
        )
    if match is None:
        raise AmountInvalid(numbers)
    whole = int(re.sub(f"[{GROUP}]", "", match["whole"]))
    fraction = (match["fraction"] or "").rstrip("0")
    if len(fraction) > exponent:
        raise AmountInvalid(_too_precise(currency))
    minor = whole * 10**exponent + int(fraction.ljust(exponent, "0") or 0)
    if minor % minor_step(currency):
        raise AmountInvalid(
            _(
                "Please enter an amount whose last decimal is 0, like %(example)s: "
                "our payment processor takes no smaller unit."
            )
            % like
        )
    return minor


def _too_precise(currency: str) -> str:
    exponent = currency_exponent(currency)
    like = {"example": _example(currency), "decimals": exponent}
    if exponent == 0:
        return _("Please enter a whole amount, without decimals, like %(example)s.") % like
    if currency in ("usd", "cad", "aud"):
        return _("Please enter an amount in dollars and cents, like %(example)s.") % like
    return _("Please enter an amount with at most %(decimals)s decimals, like %(example)s.") % like


def fee_cents(amount_cents: int, currency: str | None = None) -> int:
    """What to add to `amount_cents` so that, after Stripe's fee, the newsroom keeps all of it.

    The fee is taken from the total, so the total is (amount + fixed) / (1 - rate),
    rounded up to the currency's smallest chargeable unit
    (docs.stripe.com/payments/checkout/pay-what-you-want).
    """
    basis = 10_000 - settings.DONATION_FEE_BASIS_POINTS
    numerator = (amount_cents + settings.DONATION_FEE_FIXED_CENTS) * 10_000
    step = minor_step(currency)
    total = -(-numerator // (basis * step)) * step  # ceiling division, exact in integers
    return total - amount_cents


def fee_description() -> str:
    percent = settings.DONATION_FEE_BASIS_POINTS / 100
    return f"{percent:g}% + {format_cents(settings.DONATION_FEE_FIXED_CENTS, exact=True)}"


def plain_amount(cents: int, currency: str | None = None) -> str:
    """An amount in minor units as a bare decimal for spreadsheets: 25.00, 1000, 12.340."""
    exponent = currency_exponent(currency)
    whole, rest = divmod(int(cents), 10**exponent)
    return f"{whole}.{rest:0{exponent}d}" if exponent else str(whole)


def format_cents(
    cents: int, currency: str | None = None, *, exact: bool = False, language: str | None = None
) -> str:
    """An amount in minor units as readers of `language` (the active one when None) write
    it: $25 for whole amounts, $25.50 otherwise (or always with the currency's decimals
    when `exact`); ¥1,000 has none; in Arabic and Hebrew the sign follows: 25 $."""
    currency = (currency or settings.DONATION_CURRENCY).lower()
    exponent = currency_exponent(currency)
    symbol = SYMBOLS.get(currency)
    whole, rest = divmod(int(cents), 10**exponent)
    number = f"{whole:,}"
    if exponent and (rest or exact):
        number += f".{rest:0{exponent}d}"
    language = (language or translation.get_language() or settings.LANGUAGE_CODE).split("-")[0]
    if language in SIGN_AFTER:
        return f"{number}\u00a0{symbol or currency.upper()}"
    return f"{symbol}{number}" if symbol else f"{number} {currency.upper()}"
