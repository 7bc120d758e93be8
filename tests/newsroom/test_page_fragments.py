"""Parts every page shares, kept between renderings: they must still be exact."""

from __future__ import annotations

import re

import pytest

from newsroom import services
from newsroom.models import Category
from subscriptions import services as subscription_services
from subscriptions.models import ConsentRecord
from tests.newsroom.factories import ArticleFactory
from tests.subscriptions.factories import NewsletterFactory
from tests.subscriptions.helpers import signup

pytestmark = pytest.mark.django_db


def shown_consent_version(response) -> str:
    return (
        re.search(rb'name="consent_version" value="([0-9a-f]{64})"', response.content)
        .group(1)
        .decode()
    )


def test_the_consent_wording_a_page_shows_is_recorded_even_after_it_changes(client, monkeypatch):
    daily = NewsletterFactory()
    article = ArticleFactory()
    client.get("/")  # the wording is stored the first time it is shown
    shown = shown_consent_version(client.get(article.get_absolute_url()))
    original = subscription_services.consent_document
    monkeypatch.setattr(
        subscription_services.consent, "consent_document", lambda: original() + " Amended."
    )

    signup(client, "reader@mail.example", daily, consent_version=shown)

    assert ConsentRecord.objects.get().consent_text.sha256 == shown


def test_a_changed_consent_wording_shows_at_once(client, monkeypatch, settings):
    NewsletterFactory()
    settings.PAGE_CACHE_SECONDS = 0
    before = shown_consent_version(client.get("/"))
    original = subscription_services.consent_document
    monkeypatch.setattr(
        subscription_services.consent, "consent_document", lambda: original() + " Amended."
    )

    after = shown_consent_version(client.get("/"))

    assert after != before
    assert after == subscription_services.consent_text_current().sha256


def test_a_new_category_is_in_the_navigation_at_once(client):
    ArticleFactory()
    assert b">Culture</a>" not in client.get("/").content

    services.section_save(obj=Category(name="Culture", slug="culture", order=9))

    assert b">Culture</a>" in client.get("/").content
    assert b">Culture</a>" in client.get("/browse/").content
