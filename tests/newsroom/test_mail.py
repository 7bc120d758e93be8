"""The one email builder: multipart, CSS inlined, the organisation's footer, suppression."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from donations.services import honoree_notify, receipt_send
from newsroom import mail
from subscriptions.models import Subscription, Suppression, email_hash
from subscriptions.services import confirmation_email_send
from tests.donations.factories import PaidGiftFactory
from tests.subscriptions.factories import SubscriptionFactory

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


def test_a_newsletters_list_id_is_its_slug_under_the_sites_host(settings):
    settings.SITE_URL = "https://news.example"
    assert mail.list_id(name="Mideast Daily", slug="mideast-daily") == (
        '"Mideast Daily" <mideast-daily.news.example>'
    )
    assert mail.list_id(name='The "Back\\Page"', slug="back-page") == (
        '"The \\"Back\\\\Page\\"" <back-page.news.example>'
    )


def test_a_list_id_with_a_non_ascii_name_is_encoded_on_one_line(settings):
    settings.SITE_URL = "https://news.example"
    value = mail.list_id(name="النشرة اليومية", slug="al-nashra")

    sent = mail.message(
        rendered=mail.RenderedEmail(subject="s", text="t", html="<p>h</p>"),
        to=["rana@mail.example"],
        list_id=value,
    ).message()

    assert value.isascii() and "\n" not in value
    parsed = message_from_bytes(sent.as_bytes(), policy=policy.default)
    assert parsed["List-Id"] == "النشرة اليومية <al-nashra.news.example>"


def test_a_receipt_carries_no_list_id(mailoutbox):
    gift = PaidGiftFactory(receipt_sent_at=None)
    assert receipt_send(gift_id=gift.pk) is True

    [message] = mailoutbox
    assert "List-Id" not in message.extra_headers
    assert message.message()["List-Id"] is None


def test_a_confirmation_reminder_carries_no_list_id(mailoutbox):
    # It asks about the reader's own pending subscriptions, maybe several: no one list's.
    pending = SubscriptionFactory(status=Subscription.Status.PENDING, confirmed_at=None)
    assert confirmation_email_send(subscriber_id=pending.subscriber_id, reminder=True) is True

    [message] = mailoutbox
    assert "List-Unsubscribe" in message.extra_headers
    assert "List-Id" not in message.extra_headers


def test_a_subject_is_plain_text_not_html(mailoutbox):
    gift = PaidGiftFactory(
        donor_name="Tom O'Neil & Co",
        dedication="honor",
        honoree_name="Yara Saleh",
        honoree_email="yara@mail.example",
        honoree_notified_at=None,
    )
    assert honoree_notify(gift_id=gift.pk) is True

    [message] = mailoutbox
    assert message.subject == "Tom O'Neil & Co made a gift in your honour"
