"""Demo appeals and giving for `manage.py seed_demo`.

Appeals are keyed by internal name and updated on every run; the giving history is
made once (see `seed_history`).
"""

from __future__ import annotations

import random
import string
import zoneinfo
from calendar import monthrange
from collections import Counter
from datetime import datetime, time, timedelta
from math import ceil

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from donations.models import Appeal, Frequency, Gift, PaymentFailureNotice, Placement, RecurringPlan
from donations.money import fee_cents, format_cents
from newsroom.demo import FIRST_NAMES, LAST_NAMES, dates_restore

APPEALS = [
    {
        "name": "Winter fund: reporters on the ground",
        "placement": Placement.SITE_BANNER,
        "priority": 200,
        "headline": "Winter is when the story gets hardest to reach",
        "body": (
            "Roads close, power fails and the news slows to a trickle from the places that "
            "need it most. Help us keep reporters where the story is this season."
        ),
        "cta_label": "Fund a reporter",
        "default_frequency": Frequency.MONTHLY,
        "goal_cents": 15_000_000,
        "days_running": 30,
        "days": 45,
    },
    {
        "name": "In-article: reader-funded",
        "placement": Placement.IN_ARTICLE,
        "after_paragraph": 3,
        "priority": 100,
        "headline": "This story is free because readers pay for it",
        "body": (
            "We carry no advertising and have no owner to please. What you are reading "
            "exists because people like you chip in, a few dollars at a time."
        ),
        "cta_label": "Chip in",
        "default_frequency": Frequency.ONE_TIME,
        "days_running": 120,
        "days": 365,
    },
    {
        "name": "After-article: become a member",
        "placement": Placement.AFTER_ARTICLE,
        "priority": 100,
        "audience": Appeal.Audience.NON_DONORS,
        "headline": "Make it monthly and we can plan ahead",
        "body": (
            "A monthly gift lets our editors commit to investigations that take months, "
            "not days. Cancel whenever you like, from a link in every receipt."
        ),
        "cta_label": "Give monthly",
        "default_frequency": Frequency.MONTHLY,
        "days_running": 120,
        "days": 365,
    },
    {
        "name": "After-article: welcome back",
        "placement": Placement.AFTER_ARTICLE,
        "priority": 150,
        "audience": Appeal.Audience.LAPSED_DONORS,
        "headline": "You backed us before. Will you again?",
        "body": (
            "Your last gift helped put a correspondent in three border towns. A new one "
            "keeps that coverage going into the new year."
        ),
        "cta_label": "Renew my support",
        "default_frequency": Frequency.ANNUAL,
        "days_running": 120,
        "days": 365,
    },
    {
        "name": "Donate page: why we ask",
        "placement": Placement.DONATE_PAGE_HERO,
        "priority": 100,
        "headline": "Independent news, paid for by its readers",
        "body": (
            "Every gift, large or small, goes to reporting: travel to the places others "
            "report from a distance, translation, and the time it takes to get a story right."
        ),
        "cta_label": "Give now",
        "default_frequency": Frequency.MONTHLY,
        "goal_cents": 50_000_000,
        "days_running": 120,
        "days": 365,
    },
    {
        "name": "Newsletter: a note to subscribers",
        "placement": Placement.NEWSLETTER,
        "priority": 100,
        "audience": Appeal.Audience.SUBSCRIBERS,
        "headline": "You read us every morning. Help keep it coming",
        "body": (
            "This newsletter takes a team of editors to put together before dawn. "
            "If it is part of your day, consider a gift to the newsroom behind it."
        ),
        "cta_label": "Support the newsletter",
        "default_frequency": Frequency.MONTHLY,
        "days_running": 120,
        "days": 365,
    },
]


def seed() -> list[str]:
    """Create the demo appeals; return lines to print."""
    now = timezone.now()
    lines = []
    for spec in APPEALS:
        spec = dict(spec)
        name = spec.pop("name")
        days = spec.pop("days")
        # Started before the giving history, so that its gifts fall inside their run.
        started = now - timedelta(days=spec.pop("days_running"))
        _, created = Appeal.objects.update_or_create(
            name=name,
            defaults={
                **spec,
                "starts_at": started,
                "ends_at": now + timedelta(days=days),
                "active": True,
            },
        )
        lines.append(f"{'Created' if created else 'Updated'} appeal: {name}")
    from donations.services import appeal_cache_clear

    appeal_cache_clear()
    return lines


# --- ninety days of giving -----------------------------------------------------------
#
# Made once: every fake Stripe id below carries `_demo_`, and a run that finds a demo
# gift or plan adds nothing. Nothing here calls Stripe; the ids are made up, as the
# tests' factories make theirs. Seeded random, so every database gets the same history
# (relative to the day it was first seeded).

HISTORY_DAYS = 90
RANDOM_SEED = 2026
MONTHLY_PLANS = 140
ANNUAL_PLANS = 28
PAST_DUE_DAYS_AGO = (3, 9)  # two monthly renewals that failed, waiting for a new card
DOMAINS = ("mail.example", "post.example", "inbox.example")
# How a day's gifts spread over its hours, in the newsroom's time zone.
GIFTS_BY_HOUR = (1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 7, 7, 6, 6, 6, 6, 7, 8, 9, 10, 9, 6, 3)
ONE_TIME_AMOUNTS = (  # cents, weight
    (1000, 10),
    (1800, 6),
    (2500, 22),
    (3600, 6),
    (5000, 20),
    (7500, 4),
    (10000, 14),
    (18000, 3),
    (25000, 6),
    (50000, 2),
    (100000, 1),
)
MONTHLY_AMOUNTS = (500, 1000, 1000, 1500, 2000, 2000, 2000, 3500, 5000, 10000)
ANNUAL_AMOUNTS = (6000, 10000, 12000, 12000, 20000, 36500, 50000)
# Per placement: clicks per impression, checkouts per click, gifts per checkout.
FUNNEL_RATES = {
    Placement.SITE_BANNER: (0.0045, 0.38, 0.52),
    Placement.IN_ARTICLE: (0.009, 0.42, 0.58),
    Placement.AFTER_ARTICLE: (0.012, 0.35, 0.55),
    Placement.DONATE_PAGE_HERO: (0.08, 0.60, 0.63),
    Placement.NEWSLETTER: (0.018, 0.40, 0.60),
}
# Where one-time gifts come from (an appeal's name, or None: straight to the donate page).
ONE_TIME_SOURCES = (
    ("Winter fund: reporters on the ground", 30),
    ("In-article: reader-funded", 22),
    ("After-article: become a member", 6),
    ("After-article: welcome back", 4),
    ("Donate page: why we ask", 18),
    ("Newsletter: a note to subscribers", 8),
    (None, 12),
)
PLAN_SOURCES = (
    ("Winter fund: reporters on the ground", 20),
    ("After-article: become a member", 30),
    ("Donate page: why we ask", 22),
    ("Newsletter: a note to subscribers", 12),
    (None, 16),
)


def demo_language(email: str) -> str:
    """The language a demo donor gave in: most English, a quarter Arabic, some Hebrew.

    Taken from the address, not the random stream, so the rest of the history is the same
    whatever the languages.
    """
    share = sum(map(ord, email)) % 20
    return "ar" if share < 5 else "he" if share < 8 else "en"


def _token(rng: random.Random, length: int = 14) -> str:
    return "".join(rng.choices(string.ascii_letters + string.digits, k=length))


def _add_months(moment: datetime, months: int) -> datetime:
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, monthrange(year, month)[1]))


def _pick(rng: random.Random, weighted):
    values, weights = zip(*weighted, strict=True)
    return rng.choices(values, weights=weights)[0]


class _History:
    """The gifts and plans being made, with the ids and dates they need."""

    def __init__(self, *, now: datetime, appeals: dict[str, Appeal]) -> None:
        self.rng = random.Random(RANDOM_SEED)
        self.now = now
        self.since = now - timedelta(days=HISTORY_DAYS)
        self.appeals = appeals
        self.gifts: list[Gift] = []
        self.gift_created: list[datetime] = []  # when each gift's checkout began
        self.plans: list[RecurringPlan] = []
        self.plan_created: list[datetime] = []
        self.notices: list[tuple[RecurringPlan, datetime]] = []  # renewals that failed
        self.donors = self._donors(420)
        # Each plan has its own donor (some give one-time gifts too).
        self.plan_donors = self.rng.sample(
            self.donors, MONTHLY_PLANS + ANNUAL_PLANS + len(PAST_DUE_DAYS_AGO)
        )

    def _donors(self, count: int) -> list[tuple[str, str]]:
        names = [(first, last) for first in FIRST_NAMES for last in LAST_NAMES]
        self.rng.shuffle(names)
        return [
            (
                f"{first}.{last}".lower().replace("-", "") + f"@{self.rng.choice(DOMAINS)}",
                f"{first} {last}",
            )
            for first, last in names[:count]
        ]

    def running(self, name: str | None, at: datetime) -> Appeal | None:
        appeal = self.appeals.get(name) if name else None
        if appeal is None or not appeal.starts_at <= at <= (appeal.ends_at or at):
            return None
        return appeal

    def gift(
        self,
        *,
        frequency: str,
        amount: int,
        paid_at: datetime,
        donor,
        appeal=None,
        first=True,
        plan: RecurringPlan | None = None,
        cover_fee: bool = False,
    ) -> Gift:
        fee = fee_cents(amount) if cover_fee else 0
        rng = self.rng
        gift = Gift(
            status=Gift.Status.PAID,
            frequency=frequency,
            amount_cents=amount + fee,
            fee_cents=fee,
            donor_email=donor[0],
            donor_name=donor[1],
            language=demo_language(donor[0]),
            anonymous=rng.random() < 0.06,
            appeal=appeal,
            placement=appeal.placement if appeal else "",
            stripe_checkout_session_id=f"cs_demo_{_token(rng, 24)}" if first else "",
            stripe_invoice_id=f"in_demo_{_token(rng)}" if plan else "",
            plan=plan,
            stripe_payment_intent_id=f"pi_demo_{_token(rng)}",
            stripe_charge_id=f"ch_demo_{_token(rng)}",
            stripe_customer_id=f"cus_demo_{_token(rng, 10)}",
            card_last4=f"{rng.randrange(10_000):04d}",
            paid_at=paid_at,
            receipt_sent_at=paid_at + timedelta(seconds=rng.randint(5, 90)),
        )
        self.gifts.append(gift)
        self.gift_created.append(paid_at - timedelta(minutes=rng.randint(2, 9)))
        return gift

    def one_time_gifts(self) -> None:
        rng, tz = self.rng, zoneinfo.ZoneInfo(settings.TIME_ZONE)
        today = timezone.localdate(self.now, tz)
        for days_ago in range(HISTORY_DAYS - 1, -1, -1):
            day = today - timedelta(days=days_ago)
            count = rng.randint(3, 8) + (2 if day.weekday() in (0, 1) else 0)
            if days_ago < 30:  # the winter fund's banner is up
                count += rng.randint(2, 5)
            if days_ago in (41, 40):  # the water investigation, shared widely
                count += 14 - 8 * (41 - days_ago)
            for _ in range(count):
                paid_at = datetime.combine(
                    day,
                    time(rng.choices(range(24), weights=GIFTS_BY_HOUR)[0], rng.randrange(60)),
                    tz,
                )
                if paid_at > self.now - timedelta(minutes=10):
                    continue
                appeal = self.running(_pick(rng, ONE_TIME_SOURCES), paid_at)
                self.gift(
                    frequency=Frequency.ONE_TIME,
                    amount=_pick(rng, ONE_TIME_AMOUNTS),
                    paid_at=paid_at,
                    donor=rng.choice(self.donors),
                    appeal=appeal,
                    cover_fee=rng.random() < 0.35,
                )
        # Two refunded in full (the donors asked), one in part (an amount typed twice).
        older = [
            g
            for g in self.gifts
            if self.since + timedelta(days=10) < g.paid_at < self.now - timedelta(days=10)
        ]
        for index, gift in enumerate(rng.sample(older, 3)):
            gift.refund_requested_at = gift.paid_at + timedelta(days=rng.randint(1, 6))
            if index < 2:
                gift.status, gift.refunded_cents = Gift.Status.REFUNDED, gift.amount_cents
            else:
                gift.status, gift.refunded_cents = (
                    Gift.Status.PARTIALLY_REFUNDED,
                    gift.amount_cents // 2,
                )

    def plan(
        self,
        *,
        frequency: str,
        started: datetime,
        status: str = RecurringPlan.Status.ACTIVE,
        ends: datetime | None = None,
    ) -> None:
        rng = self.rng
        donor = self.plan_donors.pop()
        monthly = frequency == Frequency.MONTHLY
        amount = rng.choice(MONTHLY_AMOUNTS if monthly else ANNUAL_AMOUNTS)
        appeal = self.running(_pick(rng, PLAN_SOURCES), started)
        subscription_id = f"sub_demo_{_token(rng)}"
        plan = RecurringPlan(
            stripe_subscription_id=subscription_id,
            stripe_customer_id=f"cus_demo_{_token(rng, 10)}",
            donor_email=donor[0],
            donor_name=donor[1],
            language=demo_language(donor[0]),
            frequency=frequency,
            amount_cents=amount,
            status=status,
            appeal=appeal,
            canceled_at=ends if status == RecurringPlan.Status.CANCELED else None,
        )
        self.plans.append(plan)
        self.plan_created.append(started - timedelta(minutes=rng.randint(2, 9)))
        step = 1 if monthly else 12
        last = ends or self.now - timedelta(minutes=10)
        n = 0
        while (paid_at := _add_months(started, n * step)) <= last:
            if paid_at >= self.since:
                self.gift(
                    frequency=frequency,
                    amount=amount,
                    paid_at=paid_at,
                    donor=donor,
                    appeal=appeal if n == 0 else None,
                    first=n == 0,
                    plan=plan,
                )
            n += 1
        if status == RecurringPlan.Status.PAST_DUE:
            self.notices.append((plan, _add_months(started, n * step)))

    def recurring(self) -> None:
        rng = self.rng
        for index in range(MONTHLY_PLANS):
            # Half the plans are older than the ninety days, half started within them.
            days = rng.randint(HISTORY_DAYS, 720) if index % 2 else rng.randint(1, HISTORY_DAYS - 1)
            started = self.now - timedelta(days=days, minutes=rng.randrange(24 * 60))
            if index % 13 == 5:
                ends = started + timedelta(days=rng.randint(40, days + 40))
                if ends < self.now:
                    self.plan(
                        frequency=Frequency.MONTHLY,
                        started=started,
                        status=RecurringPlan.Status.CANCELED,
                        ends=ends,
                    )
                    continue
            self.plan(frequency=Frequency.MONTHLY, started=started)
        for index in range(ANNUAL_PLANS):
            days = rng.randint(1, 365 * 3 - 1) if index % 3 else rng.randint(1, HISTORY_DAYS - 1)
            self.plan(
                frequency=Frequency.ANNUAL,
                started=self.now - timedelta(days=days, minutes=rng.randrange(1440)),
            )
        for months, days_ago in enumerate(PAST_DUE_DAYS_AGO, start=2):
            # The renewal due `days_ago` failed; the ones before it were paid.
            failed_at = self.now - timedelta(days=days_ago, hours=rng.randint(1, 12))
            ends = failed_at - timedelta(minutes=1)
            self.plan(
                frequency=Frequency.MONTHLY,
                started=_add_months(failed_at, -months),
                status=RecurringPlan.Status.PAST_DUE,
                ends=ends,
            )

    def counters(self) -> dict[int, tuple[int, int, int]]:
        """Impressions, clicks and checkouts that lead to each appeal's demo gifts."""
        gifts = {appeal.pk: 0 for appeal in self.appeals.values()}
        for gift in self.gifts:
            if gift.appeal is not None:
                gifts[gift.appeal.pk] += 1
        result = {}
        for appeal in self.appeals.values():
            click_rate, checkout_rate, completion = FUNNEL_RATES[appeal.placement]
            jitter = 0.9 + 0.2 * self.rng.random()
            checkouts = max(3, ceil(gifts[appeal.pk] / completion))
            clicks = ceil(checkouts / checkout_rate)
            result[appeal.pk] = (ceil(clicks / (click_rate * jitter)), clicks, checkouts)
        return result


def seed_history(*, now: datetime | None = None) -> list[str]:
    """Ninety days of demo giving for the dashboard, made once; return lines to print."""
    demo = Gift.objects.filter(stripe_payment_intent_id__startswith="pi_demo_")
    if (
        demo.exists()
        or RecurringPlan.objects.filter(stripe_subscription_id__startswith="sub_demo_").exists()
    ):
        return [f"Giving history: already there ({demo.count():,} demo gifts)."]
    now = now or timezone.now()
    history = _History(
        now=now,
        appeals={a.name: a for a in Appeal.objects.filter(name__in=[s["name"] for s in APPEALS])},
    )
    history.one_time_gifts()
    history.recurring()
    with transaction.atomic():
        # bulk_create sets created_at to now (auto_now_add); the history's dates go back after.
        RecurringPlan.objects.bulk_create(history.plans)
        dates_restore(history.plans, "created_at", history.plan_created)
        Gift.objects.bulk_create(history.gifts, batch_size=500)
        dates_restore(history.gifts, "created_at", history.gift_created)
        notices = PaymentFailureNotice.objects.bulk_create(
            PaymentFailureNotice(
                stripe_invoice_id=f"in_demo_{_token(history.rng)}",
                plan=plan,
                sent_at=failed_at + timedelta(seconds=30),
            )
            for plan, failed_at in history.notices
        )
        dates_restore(notices, "created_at", [failed_at for _, failed_at in history.notices])
        for pk, (impressions, clicks, checkouts) in history.counters().items():
            Appeal.objects.filter(pk=pk).update(
                impressions=F("impressions") + impressions,
                clicks=F("clicks") + clicks,
                checkouts_started=F("checkouts_started") + checkouts,
            )
    given = [g for g in history.gifts if g.status != Gift.Status.REFUNDED]
    statuses = Counter(p.status for p in history.plans)
    return [
        f"Giving history: {len(history.gifts):,} gifts over {HISTORY_DAYS} days "
        f"({format_cents(sum(g.net_cents for g in given))} net of refunds), "
        f"{sum(g.status != Gift.Status.PAID for g in history.gifts)} refunded in full or in part; "
        f"{len(history.plans)} recurring plans ({statuses[RecurringPlan.Status.ACTIVE]} active, "
        f"{statuses[RecurringPlan.Status.PAST_DUE]} past due after a failed renewal, "
        f"{statuses[RecurringPlan.Status.CANCELED]} cancelled)."
    ]


def seed_demo(*, now: datetime) -> list[str]:
    """This app's part of `manage.py seed_demo`: the appeals, then the giving history."""
    return [*seed(), *seed_history(now=now)]
