"""One line of reader-typed text: what is dropped, what is kept."""

from __future__ import annotations

from newsroom.text import clean_line


def test_line_breaks_tabs_and_other_control_characters_become_one_space():
    assert clean_line("Rana\r\n\tKhoury\x0b\x0c\x1b[31m\x85\x7f ") == "Rana Khoury [31m"


def test_bidi_overrides_and_isolates_are_dropped():
    assert clean_line("abc\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069def") == "abcdef"


def test_unicode_line_and_paragraph_separators_become_one_space():
    assert clean_line("Yara\u2028Saleh\u2029") == "Yara Saleh"


def test_the_joiners_arabic_and_persian_names_need_are_kept():
    name = "\u0645\u06cc\u200c\u0631\u0648\u062f \u200d"
    assert clean_line(name) == name.strip()


def test_nothing_becomes_an_empty_string():
    assert clean_line(None) == ""
    assert clean_line(" \r\n ") == ""
