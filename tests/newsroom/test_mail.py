"""The one email builder: multipart, CSS inlined, the organisation's footer, suppression."""

from __future__ import annotations

import pytest

from newsroom import mail
from subscriptions.models import Suppression, email_hash

pytestmark = pytest.mark.django_db

MANAGE_LINK = "donations/emails/manage_link"
CONTEXT = {"link": "https://news.example/donate/manage/open/t/", "minutes": 60}


def test_style_rules_are_put_on_their_elements():
    html = mail.inline_css("<html><head><style>p { color: red }</style></head><p>Hi</p></html>")
    assert '<p style="color: red;">Hi</p>' in html
    assert "<style>" not in html


def test_an_email_is_text_and_html_with_the_organisations_footer(mailoutbox, settings):
    assert mail.send(template=MANAGE_LINK, to="rana@mail.example", context=CONTEXT) is True

    [message] = mailoutbox
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert message.subject == "Your sign-in link for The Levant Ledger"
    assert CONTEXT["link"] in message.body and CONTEXT["link"] in html
    assert f"{settings.ORG_LEGAL_NAME} · {settings.ORG_ADDRESS}" in html
    assert message.from_email == settings.DEFAULT_FROM_EMAIL
    assert "List-Unsubscribe" not in message.extra_headers


def test_a_suppressed_address_is_sent_nothing(mailoutbox):
    Suppression.objects.create(
        email_sha256=email_hash("gone@mail.example"), reason=Suppression.Reason.COMPLAINT
    )
    assert mail.send(template=MANAGE_LINK, to="gone@mail.example", context=CONTEXT) is False
    assert mailoutbox == []


def test_the_suppression_list_is_the_one_the_setting_names(mailoutbox, settings):
    settings.EMAIL_SUPPRESSION_CHECK = "tests.newsroom.test_mail.nobody_may_be_emailed"
    assert mail.send(template=MANAGE_LINK, to="rana@mail.example", context=CONTEXT) is False
    assert mailoutbox == []


def nobody_may_be_emailed(emails: list[str]) -> set[str]:
    return set(emails)
