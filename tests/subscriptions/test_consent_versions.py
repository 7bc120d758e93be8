"""Consent texts: stored once by hash; a changed text is a new version, old records keep theirs."""

from __future__ import annotations

import hashlib

import pytest

from subscriptions import services
from subscriptions.models import ConsentRecord, ConsentText
from tests.subscriptions.helpers import signup

pytestmark = pytest.mark.django_db


def test_the_same_text_is_stored_once(client, daily):
    signup(client, "a@mail.example", daily)
    signup(client, "b@mail.example", daily)

    text = ConsentText.objects.get()
    assert text.sha256 == hashlib.sha256(text.text.encode()).hexdigest()
    assert ConsentRecord.objects.filter(consent_text=text).count() == 2


def test_changing_the_terms_makes_a_new_version_and_old_records_keep_theirs(
    client, daily, monkeypatch
):
    signup(client, "before@mail.example", daily)
    old = ConsentText.objects.get()
    original = services.consent_document
    monkeypatch.setattr(
        services.consent,
        "consent_document",
        lambda: original() + "\n\nA new clause on data retention.",
    )

    signup(client, "after@mail.example", daily)

    assert ConsentText.objects.count() == 2
    before = ConsentRecord.objects.get(subscriber__email="before@mail.example")
    after = ConsentRecord.objects.get(subscriber__email="after@mail.example")
    assert before.consent_text == old
    assert after.consent_text != old
    assert after.consent_text.text.endswith("A new clause on data retention.")


def test_the_version_shown_on_a_cached_form_is_the_one_recorded(client, daily, monkeypatch):
    shown = services.consent_text_current()
    original = services.consent_document
    monkeypatch.setattr(services.consent, "consent_document", lambda: original() + " Updated.")

    signup(client, "cached@mail.example", daily, consent_version=shown.sha256)

    assert ConsentRecord.objects.get().consent_text == shown


def test_a_made_up_version_records_the_current_text(client, daily):
    signup(client, "odd@mail.example", daily, consent_version="0" * 64)

    assert (
        ConsentRecord.objects.get().consent_text.sha256
        == hashlib.sha256(services.consent_document().encode()).hexdigest()
    )


def test_the_form_carries_the_current_version(client, daily):
    body = client.get("/newsletters/").content.decode()

    assert f'name="consent_version" value="{services.consent_text_current().sha256}"' in body
