"""The shipped catalogues: every entry translated, and each compiled .mo matches its .po.

The .mo files are committed so that a machine with only Python runs the site; one
compiled before the last change to its .po would show readers the old words.
"""

from __future__ import annotations

import ast
import gettext
from pathlib import Path

import pytest

from tests.conftest import ROOT

CATALOGUES = sorted(ROOT.glob("*/locale/*/LC_MESSAGES/django.po"))


def _entries(path: Path) -> dict[str, str | tuple[str, ...]]:
    """The .po's translations, keyed as GNUTranslations keys its catalogue.

    A fuzzy entry counts as untranslated: msgfmt leaves it out of the .mo.
    """
    entries: dict[str, str | tuple[str, ...]] = {}
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        fields: dict[str, list[str]] = {}
        field = ""
        fuzzy = False
        for line in block.splitlines():
            if line.startswith("#,") and "fuzzy" in line:
                fuzzy = True
            elif line.startswith(("msgctxt ", "msgid", "msgstr")):
                field, _, value = line.partition(" ")
                fields[field] = [ast.literal_eval(value)]
            elif line.startswith('"') and field:
                fields[field].append(ast.literal_eval(line))
        msgid = "".join(fields.get("msgid", []))
        if not msgid:
            continue  # the header, or a block of comments
        if "msgctxt" in fields:
            msgid = "".join(fields["msgctxt"]) + "\x04" + msgid
        forms = sorted(key for key in fields if key.startswith("msgstr["))
        if fuzzy:
            entries[msgid] = ("",) if forms else ""
        elif forms:
            entries[msgid] = tuple("".join(fields[key]) for key in forms)
        else:
            entries[msgid] = "".join(fields.get("msgstr", []))
    return entries


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_entry_is_translated(po):
    untranslated = [
        msgid
        for msgid, text in _entries(po).items()
        if (not all(text) if isinstance(text, tuple) else not text)
    ]

    assert untranslated == []


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_compiled_catalogue_matches_its_source(po):
    with po.with_suffix(".mo").open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)._catalog

    for msgid, text in _entries(po).items():
        if isinstance(text, tuple):
            assert tuple(compiled.get((msgid, n)) for n in range(len(text))) == text, msgid
        else:
            assert compiled.get(msgid) == text, msgid


def test_the_newsroom_ships_arabic_and_hebrew():
    shipped = {po.relative_to(ROOT).parts[2] for po in CATALOGUES if po.parts[-5] == "newsroom"}

    assert {"ar", "he"} <= shipped
