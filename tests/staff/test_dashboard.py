"""The admin's front page: each figure against known data, who sees what, and its cost."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from donations.models import Frequency, Gift, PaymentFailureNotice, RecurringPlan
from staff import dashboard
from subscriptions.models import ConsentRecord, Delivery, Edition, Subscription, TrackingEvent
from tests.donations.factories import AppealFactory, GiftFactory, PaidGiftFactory, PlanFactory
from tests.newsroom.factories import StaffFactory
from tests.subscriptions.factories import NewsletterFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

# 12:00 in Jerusalem (the newsroom's TIME_ZONE, UTC+2 in November).
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
TODAY = date(2026, 11, 20)


@pytest.fixture(autouse=True)
def _newsroom_time_zone(settings):
    settings.TIME_ZONE = "Asia/Jerusalem"


# --- gifts and revenue -------------------------------------------------------------------


def test_gifts_per_day_split_one_time_from_recurring_in_the_newsroom_time_zone():
    PaidGiftFactory(amount_cents=5000, paid_at=NOW - timedelta(hours=1))
    PaidGiftFactory(
        amount_cents=2000, frequency=Frequency.MONTHLY, paid_at=NOW - timedelta(hours=2)
    )
    PaidGiftFactory(
        amount_cents=10000, frequency=Frequency.ANNUAL, paid_at=NOW - timedelta(hours=3)
    )
    # 23:30 UTC on the 18th is 01:30 on the 19th in Jerusalem.
    PaidGiftFactory(amount_cents=1000, paid_at=datetime(2026, 11, 18, 23, 30, tzinfo=UTC))
    # Partly refunded: counts, net of the refund.
    PaidGiftFactory(
        amount_cents=3000,
        refunded_cents=1000,
        status=Gift.Status.PARTIALLY_REFUNDED,
        paid_at=datetime(2026, 11, 19, 8, 0, tzinfo=UTC),
    )
    # Not counted: refunded in full, never paid, or older than 90 days.
    PaidGiftFactory(
        status=Gift.Status.REFUNDED, refunded_cents=2500, paid_at=NOW - timedelta(hours=1)
    )
    GiftFactory()
    PaidGiftFactory(paid_at=NOW - timedelta(days=95))

    days = dashboard.gifts_by_day(now=NOW)

    assert len(days) == 90
    assert (days[0].day, days[-1].day) == (TODAY - timedelta(days=89), TODAY)
    by_day = {d.day: d for d in days}
    today = by_day[TODAY]
    assert (today.one_time, today.recurring) == (1, 2)
    assert (today.one_time_cents, today.recurring_cents) == (5000, 12000)
    yesterday = by_day[date(2026, 11, 19)]
    assert (yesterday.one_time, yesterday.one_time_cents, yesterday.recurring) == (2, 3000, 0)
    assert by_day[date(2026, 11, 18)].gifts == 0
    assert sum(d.gifts for d in days) == 5


def test_monthly_recurring_revenue_counts_annual_plans_as_a_twelfth():
    PlanFactory(amount_cents=2000, donor_email="layla@mail.example")
    PlanFactory(amount_cents=1000, donor_email="Omar@mail.example")
    PlanFactory(amount_cents=12000, frequency=Frequency.ANNUAL, donor_email="omar@mail.example")
    PlanFactory(amount_cents=9900, status=RecurringPlan.Status.CANCELED)
    PlanFactory(amount_cents=9900, status=RecurringPlan.Status.INCOMPLETE)

    summary = dashboard.recurring_summary()

    assert summary.mrr_cents == 2000 + 1000 + 1000
    assert summary.active_plans == 3
    assert summary.active_donors == 2  # Omar's two plans are one donor, whatever the case
    assert summary.failed_renewals == 0


def test_failed_renewals_are_past_due_plans_newest_failure_first():
    older = PlanFactory(
        amount_cents=1500, status=RecurringPlan.Status.PAST_DUE, donor_email="a@mail.example"
    )
    newer = PlanFactory(
        amount_cents=24000,
        frequency=Frequency.ANNUAL,
        status=RecurringPlan.Status.PAST_DUE,
        donor_email="b@mail.example",
    )
    PaymentFailureNotice.objects.create(stripe_invoice_id="in_1", plan=older)
    PaymentFailureNotice.objects.filter(stripe_invoice_id="in_1").update(
        created_at=NOW - timedelta(days=3)
    )
    PaymentFailureNotice.objects.create(stripe_invoice_id="in_2", plan=newer)
    PlanFactory(amount_cents=5000)  # active: not at risk

    summary = dashboard.recurring_summary()

    assert summary.failed_renewals == 2
    assert summary.failed_renewals_monthly_cents == 1500 + 2000
    assert [plan["donor_email"] for plan in summary.failed] == ["b@mail.example", "a@mail.example"]
    assert summary.mrr_cents == 5000


# --- appeals -----------------------------------------------------------------------------


def test_each_appeal_funnel_with_conversion_and_revenue_per_thousand_impressions():
    spring = AppealFactory(name="Spring drive", starts_at=NOW - timedelta(days=10), ends_at=None)
    spring.impressions, spring.clicks, spring.checkouts_started = 2000, 100, 40
    spring.save()
    for cents in (5000, 5000, 6000):
        PaidGiftFactory(appeal=spring, amount_cents=cents)
    PaidGiftFactory(
        appeal=spring, amount_cents=5000, refunded_cents=1000, status=Gift.Status.PARTIALLY_REFUNDED
    )
    PaidGiftFactory(
        appeal=spring, amount_cents=9000, refunded_cents=9000, status=Gift.Status.REFUNDED
    )
    GiftFactory(appeal=spring)  # still at Checkout
    quiet = AppealFactory(name="New banner", starts_at=NOW - timedelta(days=1))
    AppealFactory(
        name="Last year's drive",
        starts_at=NOW - timedelta(days=400),
        ends_at=NOW - timedelta(days=300),
    )

    funnels = {f.name: f for f in dashboard.appeal_funnels(now=NOW)}

    assert set(funnels) == {"Spring drive", "New banner"}
    f = funnels["Spring drive"]
    assert (f.impressions, f.clicks, f.checkouts, f.gifts, f.cents) == (2000, 100, 40, 4, 20000)
    assert f.conversion == pytest.approx(4 / 2000)
    assert f.rpm_cents == pytest.approx(20000 * 1000 / 2000)
    assert (f.click_rate, f.checkout_rate, f.completion_rate) == (0.05, 0.4, 0.1)
    assert funnels["New banner"].conversion is None and quiet.pk == funnels["New banner"].pk


# --- subscribers -------------------------------------------------------------------------


def _subscription(newsletter, *, created, confirmed=None, unsubscribed=None):
    subscription = SubscriptionFactory(
        newsletter=newsletter,
        subscriber=SubscriberFactory(),
        status=(
            Subscription.Status.UNSUBSCRIBED
            if unsubscribed
            else Subscription.Status.ACTIVE
            if confirmed
            else Subscription.Status.PENDING
        ),
        confirmed_at=confirmed,
        unsubscribed_at=unsubscribed,
    )
    Subscription.objects.filter(pk=subscription.pk).update(created_at=created)
    return subscription


def test_subscribers_per_newsletter_each_week_and_confirmation_of_new_signups():
    daily = NewsletterFactory(name="Mideast Daily", slug="daily")
    NewsletterFactory(name="Weekend Reads", slug="weekend")
    # Confirmed on 31 October at 12:00 local time, still subscribed.
    _subscription(
        daily, created=NOW - timedelta(days=20, hours=1), confirmed=NOW - timedelta(days=20)
    )
    # Confirmed in September, left on 10 November.
    _subscription(
        daily,
        created=NOW - timedelta(days=61),
        confirmed=NOW - timedelta(days=60),
        unsubscribed=NOW - timedelta(days=10),
    )
    # Signed up three days ago and never confirmed.
    _subscription(daily, created=NOW - timedelta(days=3))
    # Signed up five days ago, confirmed the next day.
    _subscription(daily, created=NOW - timedelta(days=5), confirmed=NOW - timedelta(days=4))

    ends, growth = dashboard.newsletter_growth(now=NOW)

    assert len(ends) == 12
    assert [f"{end:%Y-%m-%d %H:%M}" for end in ends[-4:]] == [
        "2026-10-31 00:00",
        "2026-11-07 00:00",
        "2026-11-14 00:00",
        "2026-11-21 00:00",
    ]
    by_name = {g.name: g for g in growth}
    assert by_name["Mideast Daily"].counts[-4:] == [1, 2, 1, 2]
    assert by_name["Mideast Daily"].counts[0] == 0
    assert (by_name["Mideast Daily"].signups, by_name["Mideast Daily"].confirmed) == (3, 2)
    assert by_name["Mideast Daily"].confirmation_rate == pytest.approx(2 / 3)
    assert by_name["Weekend Reads"].counts == [0] * 12
    assert by_name["Weekend Reads"].confirmation_rate is None


# --- editions ----------------------------------------------------------------------------


def _edition(newsletter, day: date, composed_at: datetime) -> Edition:
    edition = Edition.objects.create(
        newsletter=newsletter, date=day, cutoff_end=composed_at, state="sent"
    )
    Edition.objects.filter(pk=edition.pk).update(composed_at=composed_at)
    return edition


def _event(edition, event_type: str, recipient: str, n: int) -> None:
    TrackingEvent.objects.create(
        esp_event_id=f"{edition.pk}-{event_type}-{recipient}-{n}",
        event_type=event_type,
        recipient=recipient,
        edition=edition,
        occurred_at=NOW,
    )


def _unsubscribe(newsletter, at: datetime) -> None:
    record = ConsentRecord.objects.create(
        subscriber=SubscriberFactory(),
        newsletter=newsletter,
        action=ConsentRecord.Action.UNSUBSCRIBE,
    )
    ConsentRecord.objects.filter(pk=record.pk).update(at=at)


def test_last_editions_count_deliveries_readers_and_unsubscribes_between_editions():
    daily = NewsletterFactory()
    other = NewsletterFactory(name="Weekend Reads", slug="weekend")
    first = _edition(daily, date(2026, 11, 19), datetime(2026, 11, 19, 3, 0, tzinfo=UTC))
    second = _edition(daily, date(2026, 11, 20), datetime(2026, 11, 20, 3, 0, tzinfo=UTC))
    for state in ("sent", "sent", "sent", "in_doubt", "failed", "queued"):
        Delivery.objects.create(edition=first, subscriber=SubscriberFactory(), state=state)
    Delivery.objects.create(edition=second, subscriber=SubscriberFactory(), state="sent")
    _event(first, "opened", "r1@mail.example", 1)
    _event(first, "opened", "r1@mail.example", 2)  # the same reader opening twice
    _event(first, "opened", "r2@mail.example", 1)
    _event(first, "clicked", "r1@mail.example", 1)
    _event(first, "bounced", "r3@mail.example", 1)
    _event(first, "complained", "r2@mail.example", 1)
    _event(second, "opened", "r1@mail.example", 1)
    _unsubscribe(daily, datetime(2026, 11, 19, 9, 0, tzinfo=UTC))  # after the first edition
    _unsubscribe(daily, datetime(2026, 11, 19, 20, 0, tzinfo=UTC))
    _unsubscribe(daily, datetime(2026, 11, 20, 6, 0, tzinfo=UTC))  # after the second
    _unsubscribe(daily, datetime(2026, 11, 18, 6, 0, tzinfo=UTC))  # before either
    _unsubscribe(other, datetime(2026, 11, 19, 9, 0, tzinfo=UTC))  # another newsletter

    editions = dashboard.last_editions(now=NOW)

    assert [e.pk for e in editions] == [second.pk, first.pk]
    latest, earlier = editions
    assert (earlier.sent, earlier.in_doubt, earlier.failed, earlier.waiting) == (3, 1, 1, 1)
    assert (earlier.opened, earlier.clicked, earlier.bounced, earlier.complained) == (2, 1, 1, 1)
    assert earlier.unsubscribed == 2
    assert (latest.sent, latest.opened, latest.unsubscribed) == (1, 1, 1)
    assert earlier.open_rate == pytest.approx(2 / 3)


def test_only_the_ten_latest_editions_are_shown():
    daily = NewsletterFactory()
    for offset in range(12):
        _edition(daily, TODAY - timedelta(days=offset), NOW - timedelta(days=offset))
    editions = dashboard.last_editions(now=NOW)
    assert [e.date for e in editions] == [TODAY - timedelta(days=n) for n in range(10)]


# --- the page ----------------------------------------------------------------------------


def _seed(size: int) -> None:
    """Data of every kind the dashboard reads, `size` of each."""
    daily = NewsletterFactory()
    appeals = [AppealFactory() for _ in range(3)]
    for n in range(size):
        PaidGiftFactory(
            appeal=appeals[n % 3],
            paid_at=NOW - timedelta(days=n % 80),
            frequency=[Frequency.ONE_TIME, Frequency.MONTHLY][n % 2],
        )
        plan = PlanFactory(
            status=[RecurringPlan.Status.ACTIVE, RecurringPlan.Status.PAST_DUE][n % 2]
        )
        if n % 2:
            PaymentFailureNotice.objects.create(stripe_invoice_id=f"in_{size}_{n}", plan=plan)
        subscription = SubscriptionFactory(newsletter=daily)
        edition, _ = Edition.objects.get_or_create(
            newsletter=daily, date=TODAY - timedelta(days=n % 12), defaults={"cutoff_end": NOW}
        )
        Delivery.objects.create(edition=edition, subscriber=subscription.subscriber, state="sent")
        _event(edition, "opened", subscription.subscriber.email, n)


def _index_queries(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert "Gifts and revenue" in response.content.decode()
    return len(captured.captured_queries)


def test_the_dashboard_costs_the_same_queries_for_little_and_much_data(
    administrator, django_assert_max_num_queries
):
    _seed(3)
    superuser = StaffFactory()
    with django_assert_max_num_queries(dashboard.MAX_QUERIES):
        dashboard.dashboard_for(superuser, now=NOW)
    small = _index_queries(administrator)

    _seed(40)
    with django_assert_max_num_queries(dashboard.MAX_QUERIES):
        figures = dashboard.dashboard_for(superuser, now=NOW)
    assert sum(d.gifts for d in figures["gift_days"]) == 43
    assert len(figures["editions"]) == 10
    assert _index_queries(administrator) == small


def _sections(client) -> set[str]:
    page = client.get(reverse("admin:index")).content.decode()
    return set(re.findall(r'<h2 id="(dash-[a-z]+)"', page))


def test_each_role_sees_only_its_own_sections(
    editor, fundraiser, audience_editor, administrator, sign_in
):
    assert _sections(fundraiser) == {"dash-money", "dash-appeals", "dash-languages"}
    assert _sections(audience_editor) == {"dash-audience", "dash-editions", "dash-languages"}
    everything = {
        "dash-money",
        "dash-appeals",
        "dash-audience",
        "dash-editions",
        "dash-languages",
    }
    assert _sections(administrator) == everything
    assert _sections(sign_in("superuser")) == everything
    page = editor.get(reverse("admin:index")).content.decode()
    assert _sections(editor) == set()
    assert "Gifts and revenue" not in page and "Articles" in page  # the app list stays


def test_charts_are_inline_svg_with_a_title_a_description_and_a_table(administrator):
    _seed(5)
    page = administrator.get(reverse("admin:index")).content.decode()

    charts = re.findall(r'<svg class="dash-chart" role="img"[^>]*aria-labelledby="([^"]+)"', page)
    assert len(charts) == 7
    for labelled_by in charts:
        title_id, desc_id = labelled_by.split()
        assert f'<title id="{title_id}">' in page and f'<desc id="{desc_id}">' in page
    for table in ("gift-days", "failed-renewals", "appeals", "subscribers", "signups", "editions"):
        match = re.search(rf'<table class="dash-table" id="table-{table}">\s*<caption>', page)
        assert match, table
    assert '<th scope="col">Conversion rate (gifts / impressions)</th>' in page
    assert "Conversion rate is gifts divided by impressions" in page
    assert "<script" not in page.split('id="dashboard"')[1].split("</section>")[0]
    assert "newsroom/dashboard.css" in page


def test_the_page_prints_the_figures_it_charts(administrator):
    PaidGiftFactory(amount_cents=5000, paid_at=NOW)
    PlanFactory(amount_cents=2000)
    PlanFactory(amount_cents=24000, frequency=Frequency.ANNUAL)
    page = administrator.get(reverse("admin:index")).content.decode()
    assert "<dd>$40</dd>" in page  # $20 + $240 / 12
    assert re.search(r"Active recurring donors</dt><dd>2</dd>", page)


def test_the_dashboard_links_to_the_exports_its_reader_may_use(fundraiser, audience_editor):
    donors, subscribers = (
        reverse("admin:donations_gift_export_donors"),
        reverse("admin:subscriptions_subscriber_export"),
    )
    page = fundraiser.get(reverse("admin:index")).content.decode()
    assert donors in page and subscribers not in page
    page = audience_editor.get(reverse("admin:index")).content.decode()
    assert subscribers in page and donors not in page


def test_names_in_charts_and_tables_are_escaped(administrator):
    appeal = AppealFactory(name='<img src=x onerror="alert(1)">', starts_at=NOW)
    appeal.impressions = 10
    appeal.save()
    page = administrator.get(reverse("admin:index")).content.decode()
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page


def test_large_counts_in_the_tables_are_grouped_by_thousands(administrator):
    appeal = AppealFactory(name="Year-end match", starts_at=NOW)
    appeal.impressions, appeal.clicks = 1_234_567, 12_345
    appeal.save()
    page = administrator.get(reverse("admin:index")).content.decode()
    assert "<td>1,234,567</td><td>12,345</td>" in page


# --- per language ------------------------------------------------------------------------


def test_gifts_subscribers_and_edition_copies_are_counted_per_language():
    PaidGiftFactory(language="ar", amount_cents=2500, paid_at=NOW - timedelta(days=1))
    PaidGiftFactory(language="ar", amount_cents=1000, paid_at=NOW - timedelta(days=2))
    PaidGiftFactory(language="he", amount_cents=5000, paid_at=NOW - timedelta(days=1))
    PaidGiftFactory(language="he", amount_cents=7000, paid_at=NOW - timedelta(days=200))
    daily = NewsletterFactory()
    readers = {
        language: [SubscriberFactory(language=language) for _ in range(count)]
        for language, count in (("en", 1), ("ar", 3), ("he", 2))
    }
    for reader in [r for group in readers.values() for r in group]:
        SubscriptionFactory(subscriber=reader, newsletter=daily)
    edition = _edition(daily, TODAY, NOW)
    for reader in readers["ar"]:
        Delivery.objects.create(edition=edition, subscriber=reader, state="sent")
    Delivery.objects.create(edition=edition, subscriber=readers["he"][0], state="failed")

    rows = {
        row.code: row
        for row in dashboard.by_language(
            shown={"money": True, "audience": True, "editions": True}, now=NOW
        )
    }

    assert (rows["ar"].gifts, rows["ar"].cents) == (2, 3500)
    assert (rows["he"].gifts, rows["he"].cents) == (1, 5000)
    assert [rows[code].subscribers for code in ("en", "ar", "he")] == [1, 3, 2]
    assert [rows[code].copies for code in ("en", "ar", "he")] == [0, 3, 0]


def test_the_dashboard_shows_the_figures_per_language(administrator):
    PaidGiftFactory(language="he", amount_cents=5000)

    page = administrator.get(reverse("admin:index")).content.decode()

    assert 'id="table-languages"' in page
    assert '<th scope="row" lang="he">עברית</th><td>1</td>' in page
