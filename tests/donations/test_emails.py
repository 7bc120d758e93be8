"""Receipts and January statements: what they say, and that each is sent once."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.core.management import call_command

from donations import services
from donations.models import Gift, GivingStatement
from donations.tasks import giving_statements_send_task
from subscriptions.models import Suppression, email_hash
from tests.donations.factories import PaidGiftFactory

pytestmark = pytest.mark.django_db


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_receipt_has_everything_a_tax_receipt_needs(mailoutbox):
    gift = PaidGiftFactory(
        amount_cents=5181,
        fee_cents=181,
        frequency="monthly",
        card_last4="1881",
        receipt_sent_at=None,
        donor_name="Leila Mansour",
        paid_at=at("2026-03-04T10:00:00+00:00"),
    )
    assert services.receipt_send(gift_id=gift.pk) is True

    [mail] = mailoutbox
    html = mail.alternatives[0][0]
    assert mail.subject == "Your receipt: $51.81 to The Levant Ledger"
    assert mail.to == [gift.donor_email]
    for body in (mail.body, html):
        assert "Levant Ledger Media Foundation, Inc." in body
        assert "1200 Harbour Street, Suite 4, Portland, ME 04101, USA" in body
        assert "EIN 00-0000000" in body
        assert "$51.81" in body
        assert "4 March 2026" in body
        assert "Monthly gift" in body
        assert "card ending in 1881" in body
        assert "No goods or services were provided in exchange for this contribution." in body
        assert "https://news.example/donate/manage/" in body
    assert mail.alternatives[0][1] == "text/html"


def test_receipt_is_sent_once(mailoutbox):
    gift = PaidGiftFactory(receipt_sent_at=None)
    assert services.receipt_send(gift_id=gift.pk) is True
    assert services.receipt_send(gift_id=gift.pk) is False
    assert len(mailoutbox) == 1


def test_no_receipt_for_an_unpaid_gift(mailoutbox):
    gift = PaidGiftFactory(receipt_sent_at=None, status=Gift.Status.PENDING, paid_at=None)
    assert services.receipt_send(gift_id=gift.pk) is False
    assert mailoutbox == []


def test_suppressed_address_gets_no_receipt(mailoutbox):
    gift = PaidGiftFactory(receipt_sent_at=None)
    Suppression.objects.create(email_sha256=email_hash(gift.donor_email), reason="hard_bounce")
    services.receipt_send(gift_id=gift.pk)
    assert mailoutbox == []


def test_statement_lists_last_years_gifts_without_refunds(mailoutbox):
    email = "rana@mail.example"
    PaidGiftFactory(donor_email=email, amount_cents=2000, paid_at=at("2026-02-01T12:00:00+00:00"))
    PaidGiftFactory(
        donor_email="Rana@Mail.example",
        amount_cents=3000,
        refunded_cents=1000,
        status=Gift.Status.PARTIALLY_REFUNDED,
        paid_at=at("2026-07-01T12:00:00+00:00"),
    )
    PaidGiftFactory(
        donor_email=email,
        amount_cents=9900,
        refunded_cents=9900,
        status=Gift.Status.REFUNDED,
        paid_at=at("2026-08-01T12:00:00+00:00"),
    )
    PaidGiftFactory(donor_email=email, amount_cents=7000, paid_at=at("2025-12-01T12:00:00+00:00"))
    PaidGiftFactory(donor_email=email, amount_cents=7000, paid_at=at("2027-01-02T12:00:00+00:00"))

    call_command("send_giving_statements", "--year", "2026")

    [mail] = mailoutbox
    assert mail.to == [email]
    assert mail.subject == "Your 2026 giving statement from The Levant Ledger"
    html = mail.alternatives[0][0]
    for body in (mail.body, html):
        assert "$40.00" in body  # 20 + (30 - 10 refunded)
        assert "$99.00" not in body
        assert "$70.00" not in body
        assert "No goods or services were provided" in body
        assert "EIN 00-0000000" in body
    statement = GivingStatement.objects.get()
    assert (statement.total_cents, statement.gift_count, statement.year) == (4000, 2, 2026)


def test_statements_go_once_per_donor_and_year(mailoutbox, time_machine):
    PaidGiftFactory(donor_email="a@mail.example", paid_at=at("2026-05-01T12:00:00+00:00"))
    PaidGiftFactory(donor_email="a@mail.example", paid_at=at("2026-06-01T12:00:00+00:00"))
    PaidGiftFactory(donor_email="b@mail.example", paid_at=at("2026-06-01T12:00:00+00:00"))
    time_machine.move_to(at("2027-01-05T09:00:00+00:00"))

    assert giving_statements_send_task.delay().get() == 2
    assert giving_statements_send_task.delay().get() == 0
    call_command("send_giving_statements", "--year", "2026")
    assert sorted(m.to[0] for m in mailoutbox) == ["a@mail.example", "b@mail.example"]
    assert GivingStatement.objects.count() == 2


def test_a_donor_whose_only_gift_was_refunded_gets_no_statement(mailoutbox):
    PaidGiftFactory(
        status=Gift.Status.REFUNDED, refunded_cents=2500, paid_at=at("2026-05-01T12:00:00+00:00")
    )
    assert services.giving_statements_send(year=2026) == 0
    assert mailoutbox == []


def test_statement_year_must_be_sensible():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="give a year between 2000"):
        call_command("send_giving_statements", "--year", "1850")
