"""The seam with giving: the appeals the digest shows, and its block in the email."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from donations.models import Placement
from subscriptions.appeals import appeal_html, newsletter_appeals
from tests.donations.factories import AppealFactory

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
