"""Confirming a subscription, or arriving from the digest, shows the subscribers' appeal."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from donations.models import Placement
from subscriptions.digest.compose import edition_compose
from subscriptions.digest.render import preview_html
from tests.donations.factories import AppealFactory
from tests.newsroom.factories import ArticleFactory
from tests.subscriptions.factories import SubscriberFactory
from tests.subscriptions.helpers import confirm_path, signup

pytestmark = pytest.mark.django_db


@pytest.fixture
def appeals():
    AppealFactory(
        placement=Placement.AFTER_ARTICLE,
        audience="subscribers",
        headline="Dear reader",
        ends_at=None,
    )
    AppealFactory(
        placement=Placement.AFTER_ARTICLE, audience="not_subscribers", headline="Get our news"
    )


def test_a_reader_who_confirms_sees_the_subscribers_appeal(client, daily, mailoutbox, appeals):
    article = ArticleFactory()
    before = client.get(article.get_absolute_url()).content.decode()
    assert "Get our news" in before and "Dear reader" not in before

    signup(client, "new@mail.example", daily)
    client.get(confirm_path(mailoutbox[0]))

    after = client.get(article.get_absolute_url()).content.decode()
    assert "Dear reader" in after
    assert "Get our news" not in after


def test_a_link_in_the_digest_marks_the_browser_as_a_subscriber(client, daily, appeals):
    article = ArticleFactory(published_at=timezone.now() - timedelta(hours=1))
    edition = edition_compose(newsletter=daily, date=timezone.localdate())
    html = preview_html(edition=edition, subscriber=SubscriberFactory())
    link = re.search(r'class="headline" href="([^"]+)"', html).group(1)
    url = urlsplit(unescape(link))
    assert url.path == article.get_absolute_url()
    assert re.fullmatch(r"rt=[\w:.-]+", url.query) and "@" not in url.query

    arrived = client.get(f"{url.path}?{url.query}")
    assert arrived.status_code == 302 and arrived["Location"] == article.get_absolute_url()
    assert "no-store" in arrived["Cache-Control"]

    page = client.get(arrived["Location"]).content.decode()
    assert "Dear reader" in page and "Get our news" not in page


def test_a_forged_reader_token_changes_nothing_and_still_leads_to_the_clean_page(client, appeals):
    article = ArticleFactory()
    arrived = client.get(article.get_absolute_url() + "?utm_source=x&rt=forged")
    assert arrived["Location"] == article.get_absolute_url() + "?utm_source=x"
    assert "reader_state" not in arrived.cookies
    assert "Get our news" in client.get(arrived["Location"]).content.decode()
