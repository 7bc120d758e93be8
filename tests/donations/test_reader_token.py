"""A gift through the webhook, then the receipt's link: the appeals the donor sees after."""

from __future__ import annotations

import re
from datetime import date, timedelta
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.utils import timezone

from donations import reader_state
from donations.models import Placement
from donations.selectors import appeal_for_newsletter
from tests.donations import stripe_payloads as p
from tests.donations.factories import AppealFactory, GiftFactory, PaidGiftFactory
from tests.newsroom.factories import ArticleFactory

pytestmark = pytest.mark.django_db


def receipt_link(mailoutbox, email: str) -> str:
    (receipt,) = [m for m in mailoutbox if m.to == [email] and m.subject.startswith("Your receipt")]
    url = urlsplit(re.search(r"Read today's stories on .*:\n(\S+)", receipt.body).group(1))
    return f"{url.path}?{url.query}"


def test_the_receipt_link_quiets_appeals_for_30_days_then_lapsed_after_13_months(
    client, post_event, fake_stripe, mailoutbox, time_machine
):
    AppealFactory(
        placement=Placement.AFTER_ARTICLE,
        audience="non_donors",
        headline="Never gave",
        ends_at=None,
    )
    AppealFactory(
        placement=Placement.AFTER_ARTICLE,
        audience="lapsed_donors",
        headline="Come back",
        ends_at=None,
    )
    article = ArticleFactory()
    assert "Never gave" in client.get(article.get_absolute_url()).content.decode()

    gift = GiftFactory(amount_cents=5000, donor_email="giver@mail.example")
    post_event(p.event("checkout.session.completed", p.checkout_session(gift, payment_intent="pi")))
    link = receipt_link(mailoutbox, "giver@mail.example")
    token = link.split("rt=")[1]
    # The token says what the receipt knows of the browser's reader: no address, no id.
    payload = signing.Signer(salt=reader_state.LINK_SALT).unsign_object(token)
    assert payload == {"g": timezone.localdate().isoformat()}

    arrived = client.get(link)
    assert arrived.status_code == 302 and arrived["Location"] == "/"
    page = client.get(article.get_absolute_url()).content.decode()
    assert "Never gave" not in page and "Come back" not in page

    time_machine.move_to(timezone.now() + timedelta(days=29))
    page = client.get(article.get_absolute_url()).content.decode()
    assert "Never gave" not in page and "Come back" not in page

    # Fourteen months on the cookie has expired; the reader comes back by the receipt's link.
    time_machine.move_to(timezone.now() + timedelta(days=14 * 31 - 29))
    client.cookies.clear()
    client.get(link)
    page = client.get(article.get_absolute_url()).content.decode()
    assert "Come back" in page and "Never gave" not in page


def test_a_reader_token_keeps_the_newest_gift_day(client):
    old = reader_state.token_make(last_gift=date(2020, 1, 5))
    new = reader_state.token_make(last_gift=date(2024, 6, 1), subscriber=True)
    client.get(reader_state.with_token("/", new))
    client.get(reader_state.with_token("/", old))
    request = type("R", (), {"COOKIES": {k: v.value for k, v in client.cookies.items()}})()
    state = reader_state.read(request)
    assert state.last_gift == date(2024, 6, 1) and state.subscriber


@pytest.mark.parametrize(
    ("last_gift", "today", "expected"),
    [
        (date(2024, 1, 15), date(2024, 12, 15), "recent"),
        (date(2024, 1, 15), date(2025, 2, 14), "recent"),  # a day short of 13 months
        (date(2024, 1, 15), date(2025, 2, 15), "lapsed"),
        (date(2024, 1, 31), date(2025, 2, 28), "lapsed"),  # the month's last day counts
        (date(2024, 1, 15), date(2027, 2, 14), "lapsed"),  # 36 months and 30 days
        # Over three years: asked as someone who never gave, not as a lapsed donor.
        (date(2024, 1, 15), date(2027, 2, 15), "none"),
        (None, date(2025, 1, 1), "none"),
    ],
)
def test_lapsed_means_a_last_gift_13_to_36_months_ago(last_gift, today, expected):
    assert reader_state.donor_class(last_gift, today) == expected


def test_a_gift_37_months_old_is_not_lapsed_on_pages_or_in_the_newsletter(client):
    AppealFactory(
        placement=Placement.AFTER_ARTICLE,
        audience="lapsed_donors",
        headline="Come back",
        ends_at=None,
    )
    AppealFactory(
        placement=Placement.AFTER_ARTICLE,
        audience="non_donors",
        headline="Never gave",
        ends_at=None,
    )
    AppealFactory(placement=Placement.NEWSLETTER, audience="lapsed_donors", priority=50)
    never = AppealFactory(placement=Placement.NEWSLETTER, audience="non_donors", priority=10)
    paid_at = timezone.now() - timedelta(days=37 * 31)
    PaidGiftFactory(donor_email="long-ago@mail.example", paid_at=paid_at)
    client.get(reader_state.with_token("/", reader_state.token_make(last_gift=paid_at.date())))

    page = client.get(ArticleFactory().get_absolute_url()).content.decode()
    assert "Never gave" in page and "Come back" not in page
    assert appeal_for_newsletter(email="long-ago@mail.example", subscriber=lambda: False) == never
