"""Names typed by donors reach emails on one line, without control or bidi characters."""

from __future__ import annotations

import pytest

from donations import services
from donations.models import Gift, PaymentFailureNotice
from tests.donations.factories import PaidGiftFactory, PlanFactory
from tests.donations.test_checkout import give

pytestmark = pytest.mark.django_db

# A header break, a line break, a right-to-left override and an isolate: none may be printed.
DIRTY = "Rana\r\nBcc: all@mail.example\u202e\u2066\u2028"
CONTROLS = ("\r", "\n", "\u202e", "\u2066", "\u2028", "\x85")


def printed(message) -> list[str]:
    """Every place a name can land in an email: subject, headers, text and HTML."""
    return [message.subject, *message.extra_headers.values(), message.alternatives[0][0]]


def test_the_donate_form_keeps_each_name_on_one_line(client, fake_stripe):
    give(
        client,
        name=DIRTY,
        dedication="honor",
        honoree_name="Yara\n\nSaleh\u202d",
        honoree_email="yara@mail.example",
    )
    gift = Gift.objects.get()
    assert gift.donor_name == "Rana Bcc: all@mail.example"
    assert gift.honoree_name == "Yara Saleh"


def test_the_donate_form_keeps_the_joiners_arabic_and_persian_names_need(client, fake_stripe):
    give(client, name="\u0645\u0647\u200c\u0633\u0627 \u200dX")
    assert Gift.objects.get().donor_name == "\u0645\u0647\u200c\u0633\u0627 \u200dX"


def test_a_stored_name_with_line_breaks_prints_on_one_line_in_the_receipt(mailoutbox):
    gift = PaidGiftFactory(
        receipt_sent_at=None,
        donor_name=DIRTY,
        dedication="memory",
        honoree_name="Samir\r\nHaddad\u2067",
    )
    assert services.receipt_send(gift_id=gift.pk) is True

    [message] = mailoutbox
    assert "Thank you, Rana Bcc: all@mail.example." in message.body
    assert "Dedication: In memory of Samir Haddad\n" in message.body
    for text in printed(message):
        assert not any(char in text for char in CONTROLS if char != "\n")
    assert "Rana\n" not in message.body and "Samir\n" not in message.body


def test_a_stored_name_with_line_breaks_prints_on_one_line_in_the_honoree_note(mailoutbox):
    gift = PaidGiftFactory(
        donor_name=DIRTY,
        dedication="honor",
        honoree_name="Yara\u202e\nSaleh",
        honoree_email="yara@mail.example",
    )
    assert services.honoree_notify(gift_id=gift.pk) is True

    [message] = mailoutbox
    assert message.subject == "Rana Bcc: all@mail.example made a gift in your honour"
    assert message.body.startswith("Dear Yara Saleh,\n")
    for text in printed(message):
        assert not any(char in text for char in CONTROLS if char != "\n")
    assert "Rana\n" not in message.body and "Yara\n" not in message.body


def test_a_plan_name_from_stripe_prints_on_one_line_in_the_card_notice(mailoutbox):
    plan = PlanFactory(donor_name="Omar\r\n\u2066Saleh")
    notice = PaymentFailureNotice.objects.create(stripe_invoice_id="in_names", plan=plan)
    assert services.card_update_notice_send(notice_id=notice.pk) is True

    [message] = mailoutbox
    assert message.body.startswith("Hello Omar Saleh,")
    for text in printed(message):
        assert "\u2066" not in text and "\r" not in text
