"""`seed_demo` gives the dashboard ninety days of believable figures, once, without Stripe."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from donations.models import Appeal, Frequency, Gift, PaymentFailureNotice, RecurringPlan
from staff import dashboard
from subscriptions.digest.plan import digest_plan
from subscriptions.models import (
    ConsentRecord,
    Delivery,
    DeliveryBatch,
    Edition,
    Follow,
    Subscriber,
    Subscription,
    Suppression,
    TrackingEvent,
)

pytestmark = pytest.mark.django_db

DEMO_MODELS = (
    Appeal,
    Gift,
    RecurringPlan,
    PaymentFailureNotice,
    Subscriber,
    Subscription,
    ConsentRecord,
    Follow,
    Edition,
    DeliveryBatch,
    Delivery,
    TrackingEvent,
    Suppression,
)


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def snapshot() -> dict:
    counts = {model.__name__: model.objects.count() for model in DEMO_MODELS}
    counts["appeal counters"] = sorted(
        Appeal.objects.values_list("name", "impressions", "clicks", "checkouts_started")
    )
    return counts


def test_every_dashboard_section_shows_money_and_readers_after_seeding(fake_stripe):
    seed()

    days = dashboard.gifts_by_day()
    assert sum(d.one_time for d in days) > 500 and sum(d.recurring for d in days) > 100
    assert sum(d.one_time_cents for d in days) > 0 and sum(d.recurring_cents for d in days) > 0
    assert sum(1 for d in days if d.gifts) >= 85  # gifts on nearly every one of the 90 days

    recurring = dashboard.recurring_summary()
    assert recurring.mrr_cents > 0 and recurring.annual_cents > 0
    assert recurring.active_donors == recurring.active_plans > 100
    assert recurring.failed_renewals == 2 and recurring.failed_renewals_monthly_cents > 0
    assert all(row["failed_at"] for row in recurring.failed)

    funnels = dashboard.appeal_funnels()
    assert len(funnels) == Appeal.objects.count() == 6
    for funnel in funnels:
        assert funnel.impressions > funnel.clicks > funnel.checkouts >= funnel.gifts > 0, (
            funnel.name
        )
        assert funnel.cents > 0 and funnel.conversion and funnel.rpm_cents

    _ends, growth = dashboard.newsletter_growth()
    (daily,) = growth
    assert daily.counts[0] > 300 and daily.counts[-1] > daily.counts[0]
    assert daily.signups > daily.confirmed > 0 and 0.6 < daily.confirmation_rate < 0.95

    editions = dashboard.last_editions()
    assert [e.state for e in editions] == ["sent", "sent"]
    for edition in editions:
        assert edition.sent > 500 and edition.sent > edition.opened > edition.clicked > 0
    assert sum(e.bounced for e in editions) > 0 and sum(e.unsubscribed for e in editions) > 0

    # Refunds and failed renewals as Stripe would have left them, and not one Stripe call.
    assert Gift.objects.filter(status=Gift.Status.REFUNDED).count() == 2
    assert Gift.objects.filter(status=Gift.Status.PARTIALLY_REFUNDED).count() == 1
    assert (
        PaymentFailureNotice.objects.filter(plan__status=RecurringPlan.Status.PAST_DUE).count() == 2
    )
    assert RecurringPlan.objects.filter(frequency=Frequency.ANNUAL).exists()
    assert fake_stripe.calls == []
    assert mail.outbox == []


def test_the_dashboard_page_prints_the_demo_figures(administrator, fake_stripe):
    seed()

    page = administrator.get(reverse("admin:index")).content.decode()

    amounts = [int(a.replace(",", "")) for a in re.findall(r"\$([0-9,]+)", page)]
    assert max(amounts) > 10_000
    assert "Mideast Daily" in page and "Winter fund: reporters on the ground" in page


def test_seeding_again_adds_and_changes_nothing(fake_stripe):
    seed()
    before = snapshot()
    figures = (dashboard.gifts_by_day(), dashboard.recurring_summary(), dashboard.last_editions())

    output = seed()

    assert snapshot() == before
    assert (
        dashboard.gifts_by_day(),
        dashboard.recurring_summary(),
        dashboard.last_editions(),
    ) == figures
    assert (
        "Giving history: already there" in output and "Readership history: already there" in output
    )


def test_the_digest_planner_owes_no_seeded_reader_a_past_edition(fake_stripe):
    seed()
    past = list(Edition.objects.values_list("pk", flat=True))
    delivered = Delivery.objects.filter(edition__in=past).count()

    # Whatever the hour: each past edition is still "due" in some zone at some of these.
    for hours_ago in range(0, 54, 3):
        digest_plan(now=timezone.now() - timedelta(hours=hours_ago), enqueue=False)

    assert Delivery.objects.filter(edition__in=past).count() == delivered


def test_the_login_it_prints_says_how_to_set_up_the_authenticator_app():
    output = seed()

    assert "authenticator app (TOTP)" in output and "leave the code empty" in output
    assert "one-time set-up link to editor@newsroom.example" in output
    assert "recovery codes" in output
    assert reverse("staff_otp_setup") not in output


def test_once_the_app_is_set_up_the_login_it_prints_asks_for_its_code():
    seed()
    from django.contrib.auth import get_user_model

    TOTPDevice.objects.create(user=get_user_model().objects.get(username="editor"), confirmed=True)

    output = seed()

    assert "current code of the authenticator" in output and "recovery codes" in output
    assert "TOTPDevice.objects.filter(user__username='editor').delete()" in output
    assert reverse("staff_otp_setup") not in output


def test_the_demo_has_readers_and_gifts_in_each_language(fake_stripe):
    seed()

    for language in ("en", "ar", "he"):
        assert Subscriber.objects.filter(language=language, confirmed_at__isnull=False).exists()
        assert Gift.objects.filter(language=language, status=Gift.Status.PAID).exists()
    rows = dashboard.by_language(shown={"money": True, "audience": True, "editions": False})
    assert all(row.subscribers and row.gifts for row in rows)
