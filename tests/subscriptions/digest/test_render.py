"""Rendering the email: inlined HTML and text, direction, merge fields, one render per set."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.signals import template_rendered
from django.utils import timezone
from PIL import Image

from donations.models import Placement
from subscriptions.models import Edition
from tests.donations.factories import AppealFactory, PaidGiftFactory
from tests.newsroom.factories import CategoryFactory
from tests.subscriptions.digest.helpers import news, plan_and_send, subscribe

pytestmark = pytest.mark.django_db


def photo() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), "#1f3a4d").save(buffer, "JPEG")
    return SimpleUploadedFile("plant.jpg", buffer.getvalue(), content_type="image/jpeg")


def test_the_email_has_inlined_html_and_text_with_address_and_links(
    newsletter, django_capture_on_commit_callbacks, settings
):
    news(
        headline="Desalination plant opens",
        top_story_rank=1,
        lead_photo=photo(),
        lead_photo_alt="Pipes at the plant",
    )
    subscribe(newsletter, name="Dana <Admin>")

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    [message] = mail.outbox
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert "<style" not in html  # inlined on each element
    assert 'style="' in html and "<table" in html
    assert re.search(r'<img [^>]*width="552"', html)
    assert 'alt="Pipes at the plant"' in html
    assert settings.ORG_ADDRESS in html and settings.ORG_ADDRESS in message.body
    assert "Good morning, Dana &lt;Admin&gt;" in html
    assert "Good morning, Dana <Admin>" in message.body
    assert "https://news.example/unsubscribe/" in html
    assert "https://news.example/preferences/" in html
    edition = Edition.objects.get()
    assert f"https://news.example{edition.get_absolute_url()}" in html
    assert 'dir="ltr"' in html


@pytest.mark.parametrize("language", ["ar", "he"])
def test_arabic_and_hebrew_readers_get_a_right_to_left_digest(
    newsletter, language, django_capture_on_commit_callbacks
):
    news(top_story_rank=1, language=language)
    subscribe(newsletter, language=language)

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    html = mail.outbox[0].alternatives[0][0]
    assert f'<html lang="{language}" dir="rtl">' in html


def test_the_merge_field_syntax_follows_the_esp(
    newsletter, esp, headlines, settings, django_capture_on_commit_callbacks
):
    settings.ESP_MERGE_FIELD_FORMAT = "%recipient.FIELD%"  # Mailgun
    subscribe(newsletter)

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    assert "%recipient.unsubscribe_url%" in mail.outbox[0].anymail_test_params["text_body"]


def test_an_edition_is_rendered_once_per_followed_set_not_per_reader(
    newsletter, esp, headlines, django_capture_on_commit_callbacks
):
    politics, culture = CategoryFactory(), CategoryFactory()
    news(category=politics)
    news(category=culture)
    for _ in range(8):
        subscribe(newsletter, follows=[politics])
    for _ in range(5):
        subscribe(newsletter, follows=[culture])
    renders: list[str] = []

    def count(sender, template, **kwargs):
        if template.name == "subscriptions/digest/email.html":
            renders.append(template.name)

    template_rendered.connect(count)
    try:
        plan_and_send(django_capture_on_commit_callbacks, send_now=True)
    finally:
        template_rendered.disconnect(count)

    assert sum(len(m.to) for m in mail.outbox) == 13
    assert len(mail.outbox) == 5  # 3+3+2 and 3+2
    assert len(renders) == 2


def test_a_reader_with_an_active_appeal_sees_it_and_a_recent_donor_does_not(
    newsletter, esp, headlines, django_capture_on_commit_callbacks
):
    AppealFactory(placement=Placement.NEWSLETTER, headline="Keep the desk open through winter")
    giver = subscribe(newsletter)
    reader = subscribe(newsletter)
    PaidGiftFactory(donor_email=giver.email, paid_at=timezone.now() - timedelta(days=3))

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    by_reader = {m.to[0]: m for m in mail.outbox}
    assert "Keep the desk open" in by_reader[reader.email].alternatives[0][0]
    assert "Keep the desk open" not in by_reader[giver.email].alternatives[0][0]


def test_a_subscriber_name_with_line_breaks_greets_on_one_line(
    newsletter, django_capture_on_commit_callbacks
):
    news(headline="Desalination plant opens", top_story_rank=1)
    subscribe(newsletter, name="Dana\r\nUnsubscribe here: evil.example\u202e")

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    [message] = mail.outbox
    for body in (message.body, message.alternatives[0][0]):
        assert "Good morning, Dana Unsubscribe here: evil.example" in body
        assert "\u202e" not in body and "Dana\r" not in body and "Dana\n" not in body
