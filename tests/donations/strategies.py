"""Hypothesis strategies for amounts as readers type them, shared by the amount and form tests."""

from __future__ import annotations

from hypothesis import strategies as st

from donations.money import currency_exponent, minor_step

DIGITS = {
    "ascii": "0123456789",
    "arabic-indic": "".join(chr(0x0660 + i) for i in range(10)),
    "eastern arabic-indic": "".join(chr(0x06F0 + i) for i in range(10)),
}
# Thousands separators readers put between groups of three, and the two decimal marks.
GROUPS = ["", ",", "\u066c", "\u2009", "\u00a0", "\u202f", " "]
DECIMALS = [".", "\u066b"]


def spell(minor: int, *, currency: str, digits: str, group: str, decimal: str, exact: bool) -> str:
    """`minor` units of `currency` written as a reader would: the digit system, grouping
    and decimal mark given; decimals shown when there are any (always when `exact`)."""
    exponent = currency_exponent(currency)
    whole, rest = divmod(minor, 10**exponent)
    text = f"{whole:,}".replace(",", group)
    if exponent and (rest or exact):
        text += decimal + f"{rest:0{exponent}d}"
    return text.translate(str.maketrans("0123456789", DIGITS[digits]))


@st.composite
def typed_amounts(draw, *, currency: str, largest: int = 10**12) -> tuple[int, str]:
    """A well-formed amount in minor units and the text a reader types for it."""
    step = minor_step(currency)
    minor = draw(st.integers(0, largest // step)) * step
    text = spell(
        minor,
        currency=currency,
        digits=draw(st.sampled_from(sorted(DIGITS))),
        group=draw(st.sampled_from(GROUPS)),
        decimal=draw(st.sampled_from(DECIMALS)),
        exact=draw(st.booleans()),
    )
    return minor, text


# Text that is not an amount a reader means: what a form must refuse with a message.
HOSTILE_AMOUNTS = st.sampled_from(
    [
        "NaN",
        "-NaN",
        "sNaN",
        "Infinity",
        "-inf",
        "1e30",
        "1E-2",
        "9" * 29,
        "9" * 400,
        "-5",
        "0",
        "0.001",
        "12.345",
        "1,00,000",
        "1.000,50",
        "²",
        "½",
        "\u0661e\u0663",
        "\x00",
        "\u202e5",
        "5\u200b",
        "$",
        "",
        " ",
    ]
)
