"""The one integer parser for request values: ASCII digits only, never an exception."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from newsroom.parsing import page_number, parse_amount_int, parse_int

HOSTILE = ["²", "\u0661\u0662", "1e30", "NaN", "9" * 40, "", " ", "1.5", "0x10", "1_000", "\x00"]


@pytest.mark.parametrize("value", HOSTILE)
def test_anything_but_ascii_digits_gives_the_default(value):
    assert parse_int(value) is None
    assert parse_int(value, default=7) == 7


def test_ascii_digits_give_their_number():
    assert parse_int("42") == 42
    assert parse_int(" 42 ") == 42
    assert parse_int("-1") == -1
    assert parse_int(12) == 12


def test_none_and_booleans_give_the_default():
    assert parse_int(None, default=3) == 3
    assert parse_int(True, default=3) == 3


def test_values_outside_the_bounds_give_the_default():
    assert parse_int("-1", default=0, minimum=0) == 0
    assert parse_int("13", default=0, maximum=12) == 0
    assert parse_int("12", default=0, minimum=0, maximum=12) == 12


def test_amounts_read_arabic_indic_and_eastern_arabic_indic_digits():
    assert parse_amount_int("\u0662\u0665\u0660\u0660") == 2500
    assert parse_amount_int("\u06f2\u06f5\u06f0\u06f0") == 2500
    assert parse_amount_int("2500") == 2500
    assert parse_amount_int("²") is None


def test_a_page_number_is_one_unless_the_query_asks_for_a_real_page():
    factory = RequestFactory()
    assert page_number(factory.get("/", {"page": "3"})) == 3
    for value in ["²", "\u0661\u0662", "-1", "0", "9" * 40, "NaN", "1e30"]:
        assert page_number(factory.get("/", {"page": value})) == 1
    assert page_number(factory.get("/")) == 1
