"""Fixtures of the digest tests: email in memory, empty render caches, a newsletter, an ESP."""

from __future__ import annotations

import pytest

from subscriptions.digest import compose, esp_smtp, render
from subscriptions.models import DeliveryBatch, Edition
from tests.subscriptions.digest.helpers import news, plan_only, subscribe
from tests.subscriptions.factories import NewsletterFactory


@pytest.fixture(autouse=True)
def _digest_settings(settings, monkeypatch):
    settings.SITE_URL = "https://news.example"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.ESP_BATCH_SIZE = 500
    settings.ESP_MERGE_FIELD_FORMAT = "{{FIELD}}"
    render._RENDERS.clear()
    compose._PARTS.clear()
    yield
    esp_smtp.close_connections()  # kept open to this test's SMTP server


@pytest.fixture
def newsletter(db):
    return NewsletterFactory(top_stories_count=2, section_cap=2)


@pytest.fixture
def esp(settings):
    """anymail's test ESP, which takes a batch of readers in one call, three to a batch."""
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    settings.ESP_BATCH_SIZE = 3


@pytest.fixture
def headlines(db):
    news(headline="Lead story of the morning", top_story_rank=1)


@pytest.fixture
def planned(newsletter, headlines):
    """Plan today's edition for `count` new readers, sending nothing: (edition, its one
    batch, the readers)."""

    def plan(count: int = 1) -> tuple[Edition, DeliveryBatch, list]:
        readers = [subscribe(newsletter) for _ in range(count)]
        [result] = plan_only(send_now=True)
        return result.edition, result.edition.batches.get(), readers

    return plan
