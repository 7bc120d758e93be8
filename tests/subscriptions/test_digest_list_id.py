"""Every copy of an edition is an issue of its newsletter's mailing list (RFC 2919 List-Id)."""

from __future__ import annotations

import pytest
from django.core import mail
from django.utils import timezone

from subscriptions.digest.compose import edition_compose
from subscriptions.digest.staff import edition_send_test
from tests.subscriptions.digest_fixtures import (  # noqa: F401  (autouse fixtures)
    _digest_settings,
    news,
    newsletter_fixture,
    plan_and_send,
    subscribe,
)

pytestmark = pytest.mark.django_db
LIST_ID = '"Mideast Daily" <mideast-daily.news.example>'


@pytest.fixture(autouse=True)
def headline(db):
    news(headline="Lead story of the morning", top_story_rank=1)


def test_each_readers_copy_names_the_newsletters_list(
    newsletter, django_capture_on_commit_callbacks
):
    subscribe(newsletter)

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    [message] = mail.outbox
    assert message.extra_headers["List-Id"] == LIST_ID
    assert message.message()["List-Id"] == LIST_ID


def test_an_esp_batch_names_the_list_for_all_its_readers(
    newsletter, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    subscribe(newsletter)
    subscribe(newsletter)

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    [message] = mail.outbox
    assert message.anymail_test_params["is_batch_send"] is True
    assert message.anymail_test_params["extra_headers"]["List-Id"] == LIST_ID


def test_a_test_send_carries_the_list_id_readers_get(newsletter):
    edition = edition_compose(newsletter=newsletter, date=timezone.localdate())

    edition_send_test(edition=edition, to="desk@news.example")

    [message] = mail.outbox
    assert message.extra_headers["List-Id"] == LIST_ID
