"""Appeals: which one a reader sees, dismissing, quiet after a gift, counters, the newsletter."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.cache import cache
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import timezone

from donations import reader_state
from donations.models import Placement
from donations.selectors import reader_state_key
from donations.services import appeal_save
from donations.tasks import appeal_counters_flush_task
from tests.donations.factories import AppealFactory, PaidGiftFactory
from tests.newsroom.factories import ArticleFactory
from tests.newsroom.test_caching import in_another_worker
from tests.subscriptions.factories import SubscriberFactory

pytestmark = pytest.mark.django_db


def render_slot(
    placement: str, *, cookie: str | None = None, paragraph: int | None = None, article=None
) -> str:
    request = RequestFactory().get("/news/some-story/")
    if cookie:
        request.COOKIES[reader_state.COOKIE_NAME] = cookie
    template = Template(
        "{% load donations_tags %}{% appeal_slot placement article=article paragraph=paragraph %}"
    )
    return template.render(
        Context(
            {"request": request, "placement": placement, "paragraph": paragraph, "article": article}
        )
    )


def cookie_of(response) -> str:
    return response.cookies[reader_state.COOKIE_NAME].value


def state_cookie(**kwargs) -> str:
    return reader_state.ReaderState(**kwargs).dumps()


def test_slot_shows_the_highest_priority_running_appeal():
    AppealFactory(headline="Lower", priority=10)
    AppealFactory(headline="Higher", priority=90)
    AppealFactory(
        headline="Over",
        priority=999,
        ends_at=timezone.now() - timedelta(minutes=1),
        starts_at=timezone.now() - timedelta(days=3),
    )
    AppealFactory(
        headline="Not yet",
        priority=999,
        starts_at=timezone.now() + timedelta(days=1),
        ends_at=timezone.now() + timedelta(days=3),
    )
    AppealFactory(headline="Stopped", priority=999, active=False)
    AppealFactory(headline="Elsewhere", priority=999, placement=Placement.AFTER_ARTICLE)
    html = render_slot("site_banner")
    assert "Higher" in html
    assert all(word not in html for word in ("Lower", "Over", "Not yet", "Stopped", "Elsewhere"))


def test_in_article_appeal_appears_after_its_paragraph_only():
    AppealFactory(placement=Placement.IN_ARTICLE, after_paragraph=2, headline="Mid-story ask")
    assert render_slot("in_article", paragraph=1) == ""
    assert "Mid-story ask" in render_slot("in_article", paragraph=2)
    assert render_slot("in_article", paragraph=3) == ""


def test_appeal_carries_a_working_form_a_beacon_and_a_dismiss_button():
    appeal = AppealFactory(
        placement=Placement.AFTER_ARTICLE, amounts_monthly=[1000, 2500], goal_cents=100_000
    )
    article = ArticleFactory()
    html = render_slot("after_article", article=article)
    assert f'action="/donate/a/{appeal.pk}/go/"' in html
    assert f'name="article" value="{article.pk}"' in html
    assert 'name="amount" value="2500"' in html
    assert f'src="/donate/a/{appeal.pk}/seen.gif?p=after_article"' in html
    assert f'action="/donate/a/{appeal.pk}/dismiss/"' in html
    assert "raised of our $1,000 goal" in html
    assert "csrfmiddlewaretoken" not in html


def test_goal_progress_counts_gifts_during_the_appeal():
    appeal = AppealFactory(goal_cents=100_000)
    PaidGiftFactory(amount_cents=30_000)
    PaidGiftFactory(amount_cents=20_000, refunded_cents=20_000, status="refunded")
    PaidGiftFactory(amount_cents=50_000, paid_at=appeal.starts_at - timedelta(days=2))
    assert "$300 raised of our $1,000 goal" in render_slot("site_banner")


def test_dismissed_appeal_stays_hidden_for_the_configured_days(client, settings, time_machine):
    settings.APPEAL_DISMISS_DAYS = 7
    appeal = AppealFactory(headline="Please give")
    AppealFactory(headline="Second appeal", priority=1)
    response = client.post(f"/donate/a/{appeal.pk}/dismiss/", {"next": "/news/story/"})
    assert response.status_code == 303 and response["Location"] == "/news/story/"
    cookie = cookie_of(response)

    html = render_slot("site_banner", cookie=cookie)
    assert "Please give" not in html and "Second appeal" in html
    time_machine.move_to(timezone.now() + timedelta(days=8))
    assert "Please give" in render_slot("site_banner", cookie=cookie)


def test_dismiss_never_redirects_off_site(client):
    appeal = AppealFactory()
    response = client.post(f"/donate/a/{appeal.pk}/dismiss/", {"next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_a_reader_who_just_gave_sees_no_appeal_for_30_days(time_machine):
    AppealFactory(headline="Please give", ends_at=None)
    cookie = state_cookie(last_gift=timezone.localdate())
    assert render_slot("site_banner", cookie=cookie) == ""
    time_machine.move_to(timezone.now() + timedelta(days=31))
    assert "Please give" in render_slot("site_banner", cookie=cookie)


def test_forged_cookie_is_ignored():
    AppealFactory(headline="Please give")
    assert "Please give" in render_slot("site_banner", cookie="forged:value")


@pytest.mark.parametrize(
    ("audience", "state", "shown"),
    [
        ("non_donors", {}, True),
        ("non_donors", {"last_gift_days_ago": 100}, False),
        ("lapsed_donors", {"last_gift_days_ago": 100}, False),
        ("lapsed_donors", {"last_gift_days_ago": 400}, True),
        ("lapsed_donors", {}, False),
        ("subscribers", {"subscriber": True}, True),
        ("subscribers", {}, False),
        ("not_subscribers", {}, True),
        ("not_subscribers", {"subscriber": True}, False),
    ],
)
def test_audience_rules_on_pages(audience, state, shown):
    AppealFactory(headline="Targeted", audience=audience)
    days = state.pop("last_gift_days_ago", None)
    if days is not None:
        state["last_gift"] = timezone.localdate() - timedelta(days=days)
    html = render_slot("site_banner", cookie=state_cookie(**state))
    assert ("Targeted" in html) is shown


def test_reader_state_key_is_empty_without_a_cookie_and_follows_the_state():
    factory = RequestFactory()
    plain = factory.get("/")
    assert reader_state_key(plain) == ""

    def key_for(cookie: str) -> str:
        request = factory.get("/")
        request.COOKIES[reader_state.COOKIE_NAME] = cookie
        return reader_state_key(request)

    today = timezone.localdate()
    dismissed = key_for(state_cookie(dismissed={3: today + timedelta(days=2)}))
    assert dismissed and len(dismissed) <= 16
    assert dismissed == key_for(state_cookie(dismissed={3: today + timedelta(days=5)}))
    assert dismissed != key_for(state_cookie(dismissed={4: today + timedelta(days=2)}))
    assert key_for(state_cookie(dismissed={3: today - timedelta(days=1)})) == ""
    assert key_for(state_cookie(last_gift=today)) not in ("", dismissed)
    assert key_for("forged") == ""


def test_thanks_page_starts_the_quiet_days(client, fake_stripe):
    AppealFactory(headline="Please give")
    client.post("/donate/", {"frequency": "one_time", "amount": "2500", "email": "s@mail.example"})
    from donations.models import Gift

    session_id = Gift.objects.get().stripe_checkout_session_id
    response = client.get(f"/donate/thanks/?session_id={session_id}")
    assert render_slot("site_banner", cookie=cookie_of(response)) == ""


def _state_after_thanks(client, email: str) -> reader_state.ReaderState:
    from donations.models import Gift

    client.post("/donate/", {"frequency": "one_time", "amount": "2500", "email": email})
    session_id = Gift.objects.get().stripe_checkout_session_id
    response = client.get(f"/donate/thanks/?session_id={session_id}")
    request = RequestFactory().get("/")
    request.COOKIES[reader_state.COOKIE_NAME] = cookie_of(response)
    return reader_state.read(request)


def test_thanks_page_remembers_a_donor_who_gets_the_newsletter(client, fake_stripe):
    SubscriberFactory(email="s@mail.example")
    assert _state_after_thanks(client, "s@mail.example").subscriber is True


def test_thanks_page_does_not_count_an_unconfirmed_subscriber(client, fake_stripe):
    SubscriberFactory(email="s@mail.example", confirmed_at=None)
    assert _state_after_thanks(client, "s@mail.example").subscriber is False


def test_impressions_and_clicks_are_counted_in_the_cache_and_flushed(client):
    appeal = AppealFactory()
    for _ in range(3):
        response = client.get(f"/donate/a/{appeal.pk}/seen.gif?p=site_banner")
        assert response["Content-Type"] == "image/gif"
        assert "no-store" in response["Cache-Control"]
    response = client.get(
        f"/donate/a/{appeal.pk}/go/?placement=site_banner&amount=2500&frequency=monthly&article=7"
    )
    assert response.status_code == 302
    assert response["Location"].startswith("/donate/?")
    for part in (
        f"appeal={appeal.pk}",
        "placement=site_banner",
        "amount=2500",
        "frequency=monthly",
        "article=7",
    ):
        assert part in response["Location"]

    appeal.refresh_from_db()
    assert (appeal.impressions, appeal.clicks) == (0, 0)  # no database write per view
    assert appeal_counters_flush_task.delay().get() == 4
    appeal.refresh_from_db()
    assert (appeal.impressions, appeal.clicks) == (3, 1)
    assert appeal_counters_flush_task.delay().get() == 0
    client.get(f"/donate/a/{appeal.pk}/seen.gif")
    appeal_counters_flush_task.delay()
    appeal.refresh_from_db()
    assert appeal.impressions == 4


def test_a_started_checkout_is_counted_for_its_appeal(client, fake_stripe):
    appeal = AppealFactory()
    client.post(
        "/donate/",
        {"frequency": "one_time", "amount": "2500", "email": "s@mail.example", "appeal": appeal.pk},
    )
    appeal_counters_flush_task.delay()
    appeal.refresh_from_db()
    assert appeal.checkouts_started == 1


def test_donate_page_uses_the_appeal_it_came_from(client):
    appeal = AppealFactory(
        headline="Winter appeal", amounts_one_time=[1500, 4500], default_frequency="one_time"
    )
    page = client.get(f"/donate/?appeal={appeal.pk}&amount=4500").content.decode()
    assert "Winter appeal" in page
    assert 'value="4500" data-cents="4500" data-label="$45" data-fee="$1.66" checked' in page
    assert "Give once" in page


def test_donate_page_hero_appeal(client):
    AppealFactory(placement=Placement.DONATE_PAGE_HERO, headline="Hero copy")
    assert "Hero copy" in client.get("/donate/").content.decode()


def test_newsletter_appeal_template_renders_absolute_links():
    from django.template.loader import render_to_string

    appeal = AppealFactory(placement=Placement.NEWSLETTER, headline="Keep the mornings coming")
    html = render_to_string("donations/emails/newsletter_appeal.html", {"appeal": appeal})
    assert "Keep the mornings coming" in html
    assert f'href="https://news.example/donate/a/{appeal.pk}/go/?placement=newsletter' in html
    assert "utm_source=newsletter" in html
    assert f'src="https://news.example/donate/a/{appeal.pk}/seen.gif?p=newsletter"' in html


def test_active_appeals_are_cached_and_cleared_when_staff_save(client):
    AppealFactory(headline="First")
    assert "First" in render_slot("site_banner")
    AppealFactory(headline="Newer", priority=500)
    assert "Newer" not in render_slot("site_banner")  # a minute's cache
    from donations.services import appeal_cache_clear

    appeal_cache_clear()
    assert "Newer" in render_slot("site_banner")
    cache.clear()


def test_a_list_cached_by_another_request_before_the_commit_is_dropped_at_the_commit(
    django_capture_on_commit_callbacks,
):
    key = f"donations:active:{Placement.SITE_BANNER}"
    with django_capture_on_commit_callbacks(execute=True):
        appeal_save(appeal=AppealFactory.build(headline="Started"))
        # Another request, reading the rows as they were before this commit, caches them.
        cache.set(key, "the list before the appeal")
    assert cache.get(key) is None
    assert "Started" in render_slot("site_banner")
    cache.clear()


def test_article_pages_stay_cached_and_honour_each_readers_dismissal(client):
    from django.test import Client

    banner = AppealFactory(headline="Banner ask")
    AppealFactory(placement=Placement.IN_ARTICLE, after_paragraph=1, headline="Mid-story ask")
    article = ArticleFactory()
    first = client.get(article.get_absolute_url())
    page = first.content.decode()
    assert "Banner ask" in page and "Mid-story ask" in page
    assert not first.cookies
    assert "public" in first["Cache-Control"]

    dismissed = client.post(f"/donate/a/{banner.pk}/dismiss/", {"next": article.get_absolute_url()})
    assert dismissed.status_code == 303
    after = client.get(article.get_absolute_url()).content.decode()
    assert "Banner ask" not in after and "Mid-story ask" in after
    assert "Banner ask" in Client().get(article.get_absolute_url()).content.decode()


@pytest.fixture
def frozen_clock():
    with time_machine.travel(timezone.now(), tick=False) as clock:
        yield clock


def test_an_appeal_saved_in_another_worker_shows_here_within_the_bound(
    monkeypatch, settings, frozen_clock
):
    settings.PAGE_CACHE_LOCAL_SECONDS = 1
    AppealFactory(headline="First")
    assert "First" in render_slot("site_banner")

    with in_another_worker(monkeypatch):
        appeal_save(appeal=AppealFactory.build(headline="Newer", priority=500))

    frozen_clock.shift(0.9)
    assert "Newer" not in render_slot("site_banner")
    frozen_clock.shift(0.1)
    assert "Newer" in render_slot("site_banner")


def test_a_kept_appeal_starts_and_ends_at_its_exact_times(settings, frozen_clock):
    settings.PAGE_CACHE_LOCAL_SECONDS = 1
    now = timezone.now()
    AppealFactory(
        headline="Evening ask",
        starts_at=now + timedelta(seconds=0.5),
        ends_at=now + timedelta(seconds=0.8),
    )
    assert "Evening ask" not in render_slot("site_banner")

    frozen_clock.shift(0.5)
    assert "Evening ask" in render_slot("site_banner")
    frozen_clock.shift(0.3)
    assert "Evening ask" not in render_slot("site_banner")


def test_a_dismissal_ends_at_local_midnight_exactly(settings):
    zone = ZoneInfo(settings.TIME_ZONE)
    last_hidden_day = datetime(2026, 3, 10, tzinfo=zone)
    with time_machine.travel(last_hidden_day.replace(hour=12), tick=False) as clock:
        appeal = AppealFactory(headline="Please give")
        cookie = state_cookie(dismissed={appeal.pk: last_hidden_day.date()})
        clock.move_to(last_hidden_day.replace(hour=23, minute=59, second=59, microsecond=999_000))
        assert "Please give" not in render_slot("site_banner", cookie=cookie)

        clock.shift(0.001)
        assert "Please give" in render_slot("site_banner", cookie=cookie)
        # A clock set back is followed too.
        clock.shift(-1)
        assert "Please give" not in render_slot("site_banner", cookie=cookie)


def test_cached_pages_show_an_appeal_from_its_start_to_its_end_exactly(client, frozen_clock):
    now = timezone.now()
    AppealFactory(
        headline="Evening ask",
        starts_at=now + timedelta(seconds=10),
        ends_at=now + timedelta(seconds=20),
    )
    url = ArticleFactory().get_absolute_url()

    def shown() -> bool:
        response = client.get(url)
        assert "public" in response["Cache-Control"]
        return "Evening ask" in response.content.decode()

    assert not shown()
    frozen_clock.shift(9.9)
    assert not shown()
    frozen_clock.shift(0.1)
    assert shown()
    frozen_clock.shift(9.9)
    assert shown()
    frozen_clock.shift(0.1)
    assert not shown()
