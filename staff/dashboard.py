"""The figures on the admin's front page, each aggregated in the database.

Every figure is one query (GROUP BY and conditional aggregation), whatever the number
of gifts, plans, subscriptions or deliveries: the whole dashboard is at most
`MAX_QUERIES` queries. Days are counted in the newsroom's TIME_ZONE.

Definitions, as the page states them:
- a gift counts on the day it was paid, unless it was fully refunded; revenue is what
  was charged (fee included) less refunds;
- recurring gifts are the installments of monthly and annual plans;
- monthly recurring revenue is the sum of active monthly plans plus active annual
  plans divided by twelve; a failed renewal is a plan whose last charge failed and
  that waits for the donor's new card (Stripe's "past due");
- conversion rate is gifts / impressions; revenue per thousand impressions is
  revenue / impressions x 1000;
- a newsletter's subscribers at a date are the subscriptions confirmed before it and
  not ended by then;
- an edition's unsubscribes are the readers who left its newsletter between the time
  it was composed and the time the next edition was (by any route: our link, the
  one-click header, or the ESP);
- per language: gifts by the language of the page they were given on, subscribers by
  the language they read in, and copies of the last editions by their readers' language.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db.models import Aggregate, Count, Exists, F, Max, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Lower, TruncDate
from django.utils import timezone

from donations.models import Appeal, Frequency, Gift, RecurringPlan
from donations.selectors import GIVEN_STATUSES
from subscriptions.digest.ledger import (
    copies_sent_by_language,
    editions_readers_by_state,
    readers_in_doubt,
)
from subscriptions.digest.staff import progress
from subscriptions.models import (
    ConsentRecord,
    Edition,
    Newsletter,
    Subscriber,
    Subscription,
    TrackingEvent,
)

DAYS = 90
WEEKS = 12
SIGNUP_DAYS = 30
APPEALS = 12
EDITIONS = 10
FAILED_RENEWALS_SHOWN = 10
# Queries the whole dashboard may make, whatever the size of the data (three of them
# split the figures by language, two count what is in doubt). Readers of editions are
# counted from batches, then from the readers' own rows: two queries each.
MAX_QUERIES = 17

NET = F("amount_cents") - F("refunded_cents")
ONE_TIME = Q(frequency=Frequency.ONE_TIME)


def newsroom_tz() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=newsroom_tz())


# --- money ---------------------------------------------------------------------------


@dataclass
class GiftDay:
    day: date
    one_time: int = 0
    recurring: int = 0
    one_time_cents: int = 0
    recurring_cents: int = 0

    @property
    def gifts(self) -> int:
        return self.one_time + self.recurring

    @property
    def cents(self) -> int:
        return self.one_time_cents + self.recurring_cents


def gifts_by_day(*, now: datetime | None = None, days: int = DAYS) -> list[GiftDay]:
    """Gifts and revenue for each of the last `days` days (today included), oldest first."""
    tz = newsroom_tz()
    today = timezone.localdate(now or timezone.now(), tz)
    first = today - timedelta(days=days - 1)
    rows = (
        Gift.objects.filter(status__in=GIVEN_STATUSES, paid_at__gte=_midnight(first))
        .annotate(day=TruncDate("paid_at", tzinfo=tz))
        .values("day")
        .annotate(
            one_time=Count("pk", filter=ONE_TIME),
            recurring=Count("pk", filter=~ONE_TIME),
            one_time_cents=Sum(NET, filter=ONE_TIME),
            recurring_cents=Sum(NET, filter=~ONE_TIME),
        )
        .order_by("day")
    )
    found = {row["day"]: row for row in rows}
    result = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        row = found.get(day)
        if row is None:
            result.append(GiftDay(day=day))
        else:
            result.append(
                GiftDay(
                    day=day,
                    one_time=row["one_time"],
                    recurring=row["recurring"],
                    one_time_cents=row["one_time_cents"] or 0,
                    recurring_cents=row["recurring_cents"] or 0,
                )
            )
    return result


@dataclass
class Recurring:
    monthly_cents: int
    annual_cents: int
    active_donors: int
    active_plans: int
    failed_renewals: int
    failed_renewals_monthly_cents: int
    failed: list[dict] = field(default_factory=list)

    @property
    def mrr_cents(self) -> int:
        """Monthly recurring revenue: monthly plans plus annual plans / 12, in cents."""
        return self.monthly_cents + round(self.annual_cents / 12)


def recurring_summary() -> Recurring:
    """Monthly recurring revenue, active recurring donors, and renewals awaiting a card."""
    active = Q(status=RecurringPlan.Status.ACTIVE)
    past_due = Q(status=RecurringPlan.Status.PAST_DUE)
    monthly, annual = Q(frequency=Frequency.MONTHLY), Q(frequency=Frequency.ANNUAL)
    totals = RecurringPlan.objects.aggregate(
        monthly=Sum("amount_cents", filter=active & monthly),
        annual=Sum("amount_cents", filter=active & annual),
        donors=Count(Lower("donor_email"), filter=active, distinct=True),
        plans=Count("pk", filter=active),
        failed=Count("pk", filter=past_due),
        failed_monthly=Sum("amount_cents", filter=past_due & monthly),
        failed_annual=Sum("amount_cents", filter=past_due & annual),
    )
    failed = list(
        RecurringPlan.objects.filter(past_due)
        .annotate(failed_at=Max("failure_notices__created_at"))
        .order_by(F("failed_at").desc(nulls_last=True), "-pk")
        .values("pk", "donor_email", "donor_name", "frequency", "amount_cents", "failed_at")[
            :FAILED_RENEWALS_SHOWN
        ]
    )
    return Recurring(
        monthly_cents=totals["monthly"] or 0,
        annual_cents=totals["annual"] or 0,
        active_donors=totals["donors"],
        active_plans=totals["plans"],
        failed_renewals=totals["failed"],
        failed_renewals_monthly_cents=(totals["failed_monthly"] or 0)
        + round((totals["failed_annual"] or 0) / 12),
        failed=failed,
    )


# --- appeals -------------------------------------------------------------------------


@dataclass
class Funnel:
    pk: int
    name: str
    active: bool
    impressions: int
    clicks: int
    checkouts: int
    gifts: int
    cents: int

    @property
    def conversion(self) -> float | None:
        """Gifts / impressions."""
        return self.gifts / self.impressions if self.impressions else None

    @property
    def rpm_cents(self) -> float | None:
        """Revenue per thousand impressions, in cents."""
        return self.cents * 1000 / self.impressions if self.impressions else None

    @staticmethod
    def _rate(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    @property
    def click_rate(self) -> float | None:
        return self._rate(self.clicks, self.impressions)

    @property
    def checkout_rate(self) -> float | None:
        return self._rate(self.checkouts, self.clicks)

    @property
    def completion_rate(self) -> float | None:
        return self._rate(self.gifts, self.checkouts)


def appeal_funnels(*, now: datetime | None = None, days: int = DAYS) -> list[Funnel]:
    """Appeals running now or in the last `days` days, newest first, with their results.

    Two queries: the appeals, then their gifts summed per appeal. Summing through a join
    of appeals to gifts made PostgreSQL hash every gift (a sequential scan of the whole
    table); filtered by appeal and status the sums come from the covering index
    `gift_appeal_results` alone.
    """
    since = (now or timezone.now()) - timedelta(days=days)
    appeals = list(
        Appeal.objects.filter(Q(ends_at__isnull=True) | Q(ends_at__gte=since))
        .order_by("-starts_at", "-pk")
        .values("pk", "name", "active", "impressions", "clicks", "checkouts_started")[:APPEALS]
    )
    if not appeals:
        return []
    results = {
        row["appeal_id"]: row
        for row in Gift.objects.filter(
            appeal_id__in=[a["pk"] for a in appeals], status__in=GIVEN_STATUSES
        )
        .values("appeal_id")
        # COUNT(*), not COUNT(id): the id is not in the index, and reading it would
        # send PostgreSQL to the table for every gift.
        .annotate(gifts=Count("*"), cents=Sum(NET))
        .order_by()
    }
    return [
        Funnel(
            pk=row["pk"],
            name=row["name"],
            active=row["active"],
            impressions=row["impressions"],
            clicks=row["clicks"],
            checkouts=row["checkouts_started"],
            gifts=results.get(row["pk"], {}).get("gifts", 0),
            cents=results.get(row["pk"], {}).get("cents") or 0,
        )
        for row in appeals
    ]


# --- subscribers ---------------------------------------------------------------------


@dataclass
class NewsletterGrowth:
    pk: int
    name: str
    counts: list[int]  # confirmed subscribers at each week's end, oldest first
    signups: int  # new subscriptions in the last SIGNUP_DAYS days
    confirmed: int  # of those, how many confirmed

    @property
    def confirmation_rate(self) -> float | None:
        return self.confirmed / self.signups if self.signups else None


def week_ends(*, now: datetime | None = None, weeks: int = WEEKS) -> list[datetime]:
    """The ends of the last `weeks` weeks, oldest first; the last is the end of today."""
    today = timezone.localdate(now or timezone.now(), newsroom_tz())
    end = _midnight(today + timedelta(days=1))
    return [end - timedelta(weeks=weeks - 1 - i) for i in range(weeks)]


def newsletter_growth(
    *, now: datetime | None = None
) -> tuple[list[datetime], list[NewsletterGrowth]]:
    """Confirmed subscribers per newsletter at each of the last 12 week-ends; signups."""
    now = now or timezone.now()
    ends = week_ends(now=now)
    since = now - timedelta(days=SIGNUP_DAYS)
    counts = {}
    for i, end in enumerate(ends):
        # Confirmed before the week's end and not gone by then; a reader who left and
        # came back (confirmed again after leaving) counts from the new confirmation.
        counts[f"w{i}"] = Count(
            "subscriptions",
            filter=Q(subscriptions__confirmed_at__lt=end)
            & (
                Q(subscriptions__unsubscribed_at__isnull=True)
                | Q(subscriptions__unsubscribed_at__gte=end)
                | Q(subscriptions__unsubscribed_at__lt=F("subscriptions__confirmed_at"))
            ),
        )
    rows = (
        Newsletter.objects.annotate(
            **counts,
            signups=Count("subscriptions", filter=Q(subscriptions__created_at__gte=since)),
            signups_confirmed=Count(
                "subscriptions",
                filter=Q(
                    subscriptions__created_at__gte=since, subscriptions__confirmed_at__isnull=False
                ),
            ),
        )
        .order_by("name", "pk")
        .values("pk", "name", "signups", "signups_confirmed", *counts)
    )
    return ends, [
        NewsletterGrowth(
            pk=row["pk"],
            name=row["name"],
            counts=[row[f"w{i}"] for i in range(len(ends))],
            signups=row["signups"],
            confirmed=row["signups_confirmed"],
        )
        for row in rows
    ]


# --- editions ------------------------------------------------------------------------


@dataclass
class EditionStats:
    pk: int
    newsletter: str
    date: date
    state: str
    sent: int
    opened: int = 0
    clicked: int = 0
    bounced: int = 0
    complained: int = 0
    unsubscribed: int = 0
    in_doubt: int = 0
    failed: int = 0
    waiting: int = 0

    def rate(self, part: int) -> float | None:
        return part / self.sent if self.sent else None

    @property
    def open_rate(self) -> float | None:
        return self.rate(self.opened)

    @property
    def click_rate(self) -> float | None:
        return self.rate(self.clicked)


def last_editions(*, now: datetime | None = None, count: int = EDITIONS) -> list[EditionStats]:
    """The latest editions with their deliveries, readers' reactions and unsubscribes."""
    now = now or timezone.now()
    editions = list(
        Edition.objects.annotate(
            next_composed_at=Subquery(
                Edition.objects.filter(newsletter=OuterRef("newsletter"), date__gt=OuterRef("date"))
                .order_by("date")
                .values("composed_at")[:1]
            ),
        )
        .order_by("-date", "-pk")
        .values(
            "pk",
            "newsletter_id",
            "newsletter__name",
            "date",
            "state",
            "composed_at",
            "next_composed_at",
        )[:count]
    )
    if not editions:
        return []
    ids = [row["pk"] for row in editions]
    # Batches' sizes by state, then the few readers' own rows: two grouped queries.
    deliveries = editions_readers_by_state(ids)

    def readers(event_type: str) -> Count:
        return Count("recipient", filter=Q(event_type=event_type), distinct=True)

    reactions = {
        row["edition_id"]: row
        for row in TrackingEvent.objects.filter(
            edition_id__in=ids, event_type__in=["opened", "clicked", "bounced", "complained"]
        )
        .values("edition_id")
        .annotate(
            opened=readers("opened"),
            clicked=readers("clicked"),
            bounced=readers("bounced"),
            complained=readers("complained"),
        )
        .order_by()
    }
    unsubscribes = ConsentRecord.objects.filter(
        action=ConsentRecord.Action.UNSUBSCRIBE,
        at__gte=min(row["composed_at"] for row in editions),
    ).aggregate(
        **{
            f"e{row['pk']}": Count(
                "pk",
                filter=Q(
                    newsletter_id=row["newsletter_id"],
                    at__gte=row["composed_at"],
                    at__lt=row["next_composed_at"] or now,
                ),
            )
            for row in editions
        }
    )
    result = []
    for row in editions:
        seen = reactions.get(row["pk"], {})
        figures = progress(by_state=deliveries[row["pk"]])
        result.append(
            EditionStats(
                pk=row["pk"],
                newsletter=row["newsletter__name"],
                date=row["date"],
                state=row["state"],
                sent=figures["sent"],
                opened=seen.get("opened", 0),
                clicked=seen.get("clicked", 0),
                bounced=seen.get("bounced", 0),
                complained=seen.get("complained", 0),
                unsubscribed=unsubscribes[f"e{row['pk']}"],
                in_doubt=figures["in_doubt"],
                failed=figures["failed"],
                waiting=figures["waiting"],
            )
        )
    return result


def in_doubt_total() -> dict[str, int]:
    """Readers and batches in doubt in every edition, old ones included: they wait for staff."""
    return readers_in_doubt()


# --- per language --------------------------------------------------------------------


@dataclass
class LanguageFigures:
    code: str
    name: str
    gifts: int = 0
    cents: int = 0
    subscribers: int = 0
    copies: int = 0


def _per_language(queryset: QuerySet, **figures: Aggregate) -> QuerySet:
    """Rows of (language, *figures) of `queryset`, one per language: one GROUP BY query."""
    return (
        queryset.values("language").annotate(**figures).order_by().values_list("language", *figures)
    )


def by_language(
    *, shown: dict[str, bool], now: datetime | None = None, days: int = DAYS
) -> list[LanguageFigures]:
    """Gifts of the last `days` days, confirmed subscribers, and copies of the last
    editions sent, per language the site offers; a query per figure `shown` allows."""
    now = now or timezone.now()
    rows = {code: LanguageFigures(code=code, name=name) for code, name in settings.LANGUAGES}
    if shown["money"]:
        since = _midnight(timezone.localdate(now, newsroom_tz()) - timedelta(days=days - 1))
        given = Gift.objects.filter(status__in=GIVEN_STATUSES, paid_at__gte=since, paid_at__lte=now)
        for code, n, cents in _per_language(given, n=Count("pk"), cents=Sum(NET)):
            if code in rows:
                rows[code].gifts, rows[code].cents = n, cents or 0
    if shown["audience"]:
        readers = Subscriber.objects.filter(
            Exists(
                Subscription.objects.filter(
                    subscriber=OuterRef("pk"), status=Subscription.Status.ACTIVE
                )
            ),
            confirmed_at__isnull=False,
        )
        for code, n in _per_language(readers, n=Count("pk")):
            if code in rows:
                rows[code].subscribers = n
    if shown["editions"]:
        last = Edition.objects.order_by("-date", "-pk").values("pk")[:EDITIONS]
        for code, n in copies_sent_by_language(Subquery(last)).items():
            if code in rows:
                rows[code].copies = n
    return list(rows.values())


# --- the page ------------------------------------------------------------------------


def sections_for(user) -> dict[str, bool]:
    """Which sections `user` may see: money to Development, readers to Audience."""
    return {
        "money": user.has_perm("donations.view_gift"),
        "appeals": user.has_perm("donations.view_appeal"),
        "audience": user.has_perm("subscriptions.view_subscriber"),
        "editions": user.has_perm("subscriptions.view_edition"),
    }


def dashboard_for(user, *, now: datetime | None = None) -> dict:
    """The figures of the sections `user` may see (absent sections are not queried)."""
    now = now or timezone.now()
    shown = sections_for(user)
    figures: dict = {
        "shown": shown,
        "now": now,
        "days": DAYS,
        "weeks": WEEKS,
        "signup_days": SIGNUP_DAYS,
    }
    if shown["money"]:
        figures["gift_days"] = gifts_by_day(now=now)
        figures["recurring"] = recurring_summary()
    if shown["appeals"]:
        figures["funnels"] = appeal_funnels(now=now)
    if shown["audience"]:
        figures["week_ends"], figures["growth"] = newsletter_growth(now=now)
    if shown["editions"]:
        figures["editions"] = last_editions(now=now)
        figures["in_doubt"] = in_doubt_total()
    if shown["money"] or shown["audience"] or shown["editions"]:
        figures["languages"] = by_language(shown=shown, now=now)
    return figures
