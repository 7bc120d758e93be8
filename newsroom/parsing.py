"""Integers from query strings and form values: the one parser, which never raises.

`str.isdigit()` is true for "²", which `int()` then refuses, and `int()` reads
Arabic-Indic digits as a number; every request value that becomes an int goes through
here instead, so each place decides whether it means to accept those digits.
"""

from __future__ import annotations

import re

from django.http import HttpRequest

# ASCII digits only, with an optional sign; \d would also match every Unicode digit.
INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
# Longer values overflow the 64-bit integer columns they are looked up in, so name nothing.
MAX_DIGITS = 18
# Arabic-Indic (U+0660-0669) and Eastern Arabic-Indic (U+06F0-06F9) digits, as readers
# of Arabic and Persian type amounts.
ARABIC_DIGITS = str.maketrans(
    {**{chr(0x0660 + i): str(i) for i in range(10)}, **{chr(0x06F0 + i): str(i) for i in range(10)}}
)


def parse_int(
    value: object,
    *,
    default: int | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    """The integer `value` spells in ASCII digits, or `default` when it spells none or is
    outside [minimum, maximum]."""
    if isinstance(value, bool) or value is None:
        return default
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if not INTEGER.fullmatch(text) or len(text.lstrip("+-")) > MAX_DIGITS:
            return default
        number = int(text)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        return default
    return number


def normalise_digits(value: str) -> str:
    """`value` with Arabic-Indic and Eastern Arabic-Indic digits written as ASCII ones."""
    return value.translate(ARABIC_DIGITS)


def parse_amount_int(
    value: object,
    *,
    default: int | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    """As parse_int, also reading Arabic-Indic digits: for amounts a reader types."""
    if isinstance(value, str):
        value = normalise_digits(value)
    return parse_int(value, default=default, minimum=minimum, maximum=maximum)


def page_number(request: HttpRequest) -> int:
    """The `?page=` a listing asks for; 1 for anything that is not a page number."""
    return parse_int(request.GET.get("page"), default=1, minimum=1)
