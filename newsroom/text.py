"""Free text typed by readers, made safe to print on one line of an email."""

from __future__ import annotations

import unicodedata

# Bidi embeddings, overrides and isolates can make a line read in another order than it is
# stored (Trojan Source, CVE-2021-42574); ZWJ and ZWNJ stay: Arabic and Persian names need them.
_BIDI_CONTROLS = {*range(0x202A, 0x202F), *range(0x2066, 0x206A)}
_LINE_SEPARATORS = {0x2028, 0x2029}


def _replacement(char: str) -> str | None:
    if ord(char) in _BIDI_CONTROLS:
        return ""
    if ord(char) in _LINE_SEPARATORS or unicodedata.category(char) == "Cc":
        return " "
    return None


_TABLE = {
    code: _replacement(chr(code))
    for code in (*range(0x00, 0x20), *range(0x7F, 0xA0), *_BIDI_CONTROLS, *_LINE_SEPARATORS)
}


def clean_line(value: str | None) -> str:
    """`value` on one line: control and bidi characters out, runs of whitespace made one space."""
    return " ".join((value or "").translate(_TABLE).split())
