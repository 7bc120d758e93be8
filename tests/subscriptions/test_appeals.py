"""The seam with giving: which appeal the digest shows each reader, and its block in the email."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from donations.models import Appeal, Placement
from subscriptions.appeals import appeal_for_newsletter, appeal_html, newsletter_appeals
from tests.donations.factories import AppealFactory, PaidGiftFactory
from tests.subscriptions.factories import SubscriberFactory

pytestmark = pytest.mark.django_db


def test_newsletter_appeals_are_those_running_in_the_newsletter_highest_priority_first():
    low = AppealFactory(placement=Placement.NEWSLETTER, priority=10)
    high = AppealFactory(placement=Placement.NEWSLETTER, priority=90)
    AppealFactory(placement=Placement.SITE_BANNER, priority=500)
    AppealFactory(
        placement=Placement.NEWSLETTER,
        priority=999,
        starts_at=timezone.now() + timedelta(days=1),
        ends_at=timezone.now() + timedelta(days=3),
    )
    assert newsletter_appeals() == [high, low]


def test_appeal_html_is_the_block_with_absolute_links(site_url):
    appeal = AppealFactory(placement=Placement.NEWSLETTER, headline="Keep the mornings coming")
    html = appeal_html(appeal=appeal)
    assert "Keep the mornings coming" in html
    assert f'href="{site_url}/donate/a/{appeal.pk}/go/?placement=newsletter' in html


def test_newsletter_appeal_by_email():
    appeal = AppealFactory(placement=Placement.NEWSLETTER, audience=Appeal.Audience.SUBSCRIBERS)
    SubscriberFactory(email="sub@mail.example")
    SubscriberFactory(email="unconfirmed@mail.example", confirmed_at=None)
    assert appeal_for_newsletter(email="sub@mail.example") == appeal
    assert appeal_for_newsletter(email="unconfirmed@mail.example") is None


def test_no_newsletter_appeal_for_30_days_after_a_gift():
    AppealFactory(placement=Placement.NEWSLETTER)
    PaidGiftFactory(donor_email="Giver@mail.example", paid_at=timezone.now() - timedelta(days=3))
    PaidGiftFactory(donor_email="old@mail.example", paid_at=timezone.now() - timedelta(days=45))
    assert appeal_for_newsletter(email="giver@mail.example") is None
    assert appeal_for_newsletter(email="old@mail.example") is not None


def test_newsletter_lapsed_and_non_donor_audiences():
    lapsed = AppealFactory(placement=Placement.NEWSLETTER, audience="lapsed_donors", priority=50)
    never = AppealFactory(placement=Placement.NEWSLETTER, audience="non_donors", priority=40)
    PaidGiftFactory(donor_email="lapsed@mail.example", paid_at=timezone.now() - timedelta(days=500))
    PaidGiftFactory(donor_email="recent@mail.example", paid_at=timezone.now() - timedelta(days=60))
    assert appeal_for_newsletter(email="lapsed@mail.example") == lapsed
    assert appeal_for_newsletter(email="new@mail.example") == never
    assert appeal_for_newsletter(email="recent@mail.example") is None
