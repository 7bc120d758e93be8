"""Reads of the donations app that pages, emails and tasks share."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, F, Max, Min, Q, QuerySet, Sum
from django.db.models.functions import Lower
from django.http import HttpRequest
from django.utils import timezone, translation
from django.utils.module_loading import import_string

from donations import money, reader_state
from donations.models import Appeal, Gift, Placement, RecurringPlan
from newsroom.caching import kept

ACTIVE_APPEALS_SECONDS = 60
RAISED_SECONDS = 60
GIVEN_STATUSES = [Gift.Status.PAID, Gift.Status.PARTIALLY_REFUNDED]
# Plans Stripe still charges, or may: deleting a donor's data leaves them running.
LIVE_PLAN_STATUSES = [
    RecurringPlan.Status.INCOMPLETE,
    RecurringPlan.Status.ACTIVE,
    RecurringPlan.Status.PAST_DUE,
]


def reader_state_key(request: HttpRequest) -> str:
    """A short key of what the reader's signed state cookie says ("" for none).

    Cached pages vary on it, so an appeal a reader dismissed, or the 30 quiet days
    after a gift, can be honoured without a session.
    """
    if reader_state.COOKIE_NAME not in request.COOKIES:
        return ""  # most readers: nothing to read, and no date to work out
    return reader_state.read(request).key(reader_state.today())


def active_appeals(placement: str) -> list[Appeal]:
    """Appeals running now in `placement`, highest priority first.

    Kept in the cache for a minute and in this process while the content version stands
    (newsroom.caching.kept): a slot renders on every page-cache miss, and this keeps it
    off the database and off Redis. Saving or deleting an appeal moves the version and
    clears the cache (services.appeal_save and services.appeal_delete).
    """
    return active_appeals_in([placement])[placement]


def active_appeals_in(placements: list[str]) -> dict[str, list[Appeal]]:
    """`active_appeals` for several placements, read from the cache in one round trip."""
    scheduled = kept(("donations:scheduled", *placements), lambda: _scheduled_in(placements))
    # What is kept holds the appeals yet to start and may be older than an end: an
    # appeal starts and stops at its own time, not when the lists are read again.
    now = timezone.now()
    return {
        placement: [
            a for a in appeals if a.starts_at <= now and (a.ends_at is None or a.ends_at > now)
        ]
        for placement, appeals in scheduled.items()
    }


def next_appeal_change(now: datetime) -> datetime | None:
    """When an active appeal next starts or ends after `now`, or None (PAGE_CACHE_SCHEDULES)."""
    found = Appeal.objects.filter(active=True).aggregate(
        start=Min("starts_at", filter=Q(starts_at__gt=now)),
        end=Min("ends_at", filter=Q(ends_at__gt=now)),
    )
    return min((due for due in found.values() if due is not None), default=None)


def _scheduled_in(placements: list[str]) -> dict[str, list[Appeal]]:
    """Active appeals in each of `placements` that have not ended, yet to start included."""
    keys = {placement: f"donations:active:{placement}" for placement in placements}
    found = cache.get_many(list(keys.values()))
    now = timezone.now()
    result = {}
    for placement, key in keys.items():
        appeals = found.get(key)
        if appeals is None:
            appeals = list(
                Appeal.objects.filter(placement=placement, active=True)
                .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
                .order_by("-priority", "-starts_at", "-pk")
            )
            cache.set(key, appeals, ACTIVE_APPEALS_SECONDS)
        result[placement] = appeals
    return result


def appeal_ids() -> frozenset[int]:
    """Ids of every appeal, cached: the impression beacon checks it without the database."""
    ids = cache.get("donations:appeal-ids")
    if ids is None:
        ids = frozenset(Appeal.objects.values_list("pk", flat=True))
        cache.set("donations:appeal-ids", ids, ACTIVE_APPEALS_SECONDS)
    return ids


def audience_matches(audience: str, *, donor_class: str, subscriber: bool) -> bool:
    """donor_class: as `reader_state.donor_class`, "none", "recent" or "lapsed".

    "lapsed" is a last gift 13 to 36 months ago; a gift older than that counts as "none".
    """
    return {
        Appeal.Audience.EVERYONE: True,
        Appeal.Audience.NON_DONORS: donor_class == "none",
        Appeal.Audience.LAPSED_DONORS: donor_class == "lapsed",
        Appeal.Audience.SUBSCRIBERS: subscriber,
        Appeal.Audience.NOT_SUBSCRIBERS: not subscriber,
    }.get(audience, False)


def appeal_for_reader(
    *, placement: str, state: reader_state.ReaderState, running: list[Appeal] | None = None
) -> Appeal | None:
    """The one appeal a web page shows in `placement` for a reader in `state`, or None.

    `running`: the placement's `active_appeals`, when the caller has read them already.
    """
    today = reader_state.today()
    if state.quiet(today):
        return None
    hidden = state.hidden_appeals(today)
    donor_class = state.donor_class(today)
    language = translation.get_language()  # the page's, named by its URL
    for appeal in active_appeals(placement) if running is None else running:
        if appeal.pk in hidden or not speaks(appeal, language):
            continue
        if audience_matches(appeal.audience, donor_class=donor_class, subscriber=state.subscriber):
            return appeal
    return None


def last_gift_at(email: str):
    """When `email` last gave (a paid gift), or None."""
    return (
        Gift.objects.filter(donor_email__iexact=email, status__in=GIVEN_STATUSES)
        .order_by("-paid_at")
        .values_list("paid_at", flat=True)
        .first()
    )


def is_subscriber(email: str) -> bool:
    """Whether `email` gets the newsletter, as the app named by DONATIONS_SUBSCRIBER_CHECK says."""
    # A setting, not an import: the newsletter's app depends on this one, never the reverse.
    check = settings.DONATIONS_SUBSCRIBER_CHECK
    return bool(check) and bool(import_string(check)(email))


def speaks(appeal: Appeal, language: str | None) -> bool:
    """Whether `appeal` may be shown to a reader of `language` (None: any reader)."""
    return not appeal.language or language is None or appeal.language == language


def appeal_for_newsletter(
    *, email: str, subscriber: Callable[[], bool], language: str | None = None
) -> Appeal | None:
    """The appeal to show inside a newsletter sent to `email`, in `language`, or None.

    The reader is known by email here, so the audience is decided from our records
    (paid gifts) and the newsletter's rather than a cookie: `subscriber()` says whether
    they confirmed a subscription, asked only if an audience depends on it. A reader who
    gave in the last 30 days is not asked again.
    """
    appeals = active_appeals(Placement.NEWSLETTER)
    if not appeals:
        return None
    last = last_gift_at(email)
    now = timezone.now()
    if last is not None and now - last < timedelta(days=reader_state.QUIET_DAYS_AFTER_GIFT):
        return None
    # The same rule as on the web, from the day of the gift.
    donor_class = reader_state.donor_class(
        timezone.localdate(last) if last is not None else None, timezone.localdate(now)
    )
    subscribed: bool | None = None  # looked up only if an audience asks
    for appeal in appeals:
        if not speaks(appeal, language):
            continue
        asks = appeal.audience in (Appeal.Audience.SUBSCRIBERS, Appeal.Audience.NOT_SUBSCRIBERS)
        if asks and subscribed is None:
            subscribed = subscriber()
        if audience_matches(appeal.audience, donor_class=donor_class, subscriber=bool(subscribed)):
            return appeal
    return None


def appeal_raised_cents(appeal: Appeal) -> int:
    """Money raised in the appeal's run (paid gifts, net of refunds), for its progress bar."""
    # Kept in this process as the running appeals are: a bar a second behind is one
    # a minute behind (RAISED_SECONDS) a second longer.
    return kept(("donations:raised", appeal.pk), lambda: _raised_cents(appeal))


def _raised_cents(appeal: Appeal) -> int:
    key = f"donations:raised:{appeal.pk}"
    raised = cache.get(key)
    if raised is None:
        gifts = Gift.objects.filter(status__in=GIVEN_STATUSES, paid_at__gte=appeal.starts_at)
        if appeal.ends_at:
            gifts = gifts.filter(paid_at__lt=appeal.ends_at)
        raised = gifts.aggregate(total=Sum(F("amount_cents") - F("refunded_cents")))["total"] or 0
        cache.set(key, raised, RAISED_SECONDS)
    return raised


def gifts_for_email(email: str) -> QuerySet[Gift]:
    """A donor's gift history, newest first (what "manage my giving" shows)."""
    return (
        Gift.objects.filter(donor_email__iexact=email)
        .exclude(status__in=[Gift.Status.PENDING, Gift.Status.ABANDONED, Gift.Status.FAILED])
        .select_related("plan")
        .order_by("-paid_at", "-pk")
    )


def customer_id_for_email(email: str) -> str:
    """The newest Stripe customer id we know for a donor ("" when none)."""
    gift = (
        Gift.objects.filter(donor_email__iexact=email)
        .exclude(stripe_customer_id="")
        .order_by("-pk")
        .first()
    )
    return gift.stripe_customer_id if gift else ""


def donors_for_year(year: int) -> list[str]:
    """Lower-cased emails of everyone with a gift counted in `year`."""
    emails = Gift.objects.filter(status__in=GIVEN_STATUSES, paid_at__year=year).values_list(
        "donor_email", flat=True
    )
    return sorted({email.lower() for email in emails})


def gifts_in_year(email: str, year: int) -> QuerySet[Gift]:
    return Gift.objects.filter(
        donor_email__iexact=email, status__in=GIVEN_STATUSES, paid_at__year=year
    ).order_by("paid_at", "pk")


def appeals_with_results() -> QuerySet[Appeal]:
    """Appeals with the number of gifts and the revenue each started, for the admin."""
    given = Q(gifts__status__in=GIVEN_STATUSES)
    return Appeal.objects.annotate(
        gift_total=Sum(F("gifts__amount_cents") - F("gifts__refunded_cents"), filter=given),
        gift_count=Count("gifts", filter=given),
    )


def donors_with_totals() -> QuerySet:
    """One row per donor address (case ignored): gifts, lifetime total net of refunds, dates.

    Grouped in the database, ordered by address, for the staff export.
    """
    given = Gift.objects.filter(status__in=GIVEN_STATUSES)
    return (
        given.annotate(email=Lower("donor_email"))
        .values("email")
        .annotate(
            name=Max("donor_name"),
            gifts=Count("pk"),
            total=Sum(F("amount_cents") - F("refunded_cents")),
            first=Min("paid_at"),
            last=Max("paid_at"),
            recurring=Count("pk", filter=Q(plan__isnull=False)),
            anonymous=Count("pk", filter=Q(anonymous=True)),
        )
        .order_by("email")
    )


def gifts_export(*, email: str) -> dict[str, list[dict]]:
    """The gifts and recurring plans held under `email`, as JSON-ready data for the donor."""
    gifts = (
        Gift.objects.filter(donor_email__iexact=email)
        .select_related("appeal")
        .order_by("created_at", "pk")
    )
    plans = (
        RecurringPlan.objects.filter(donor_email__iexact=email)
        .select_related("appeal")
        .order_by("created_at", "pk")
    )
    return {
        "gifts": [
            {
                "receipt_number": gift.pk,
                "date": _iso(gift.paid_at or gift.created_at),
                "amount": money.format_cents(gift.amount_cents, gift.currency, exact=True),
                "amount_minor_units": gift.amount_cents,
                "refunded_minor_units": gift.refunded_cents,
                "currency": gift.currency.upper(),
                "frequency": gift.frequency,
                "status": gift.status,
                "name": gift.donor_name,
                "email": gift.donor_email,
                "anonymous": gift.anonymous,
                "appeal": gift.appeal.name if gift.appeal else None,
                "dedication": gift.dedication or None,
                "honoree_name": gift.honoree_name or None,
                "honoree_email": gift.honoree_email or None,
                "card_last4": gift.card_last4 or None,
                "plan": gift.plan_id,
            }
            for gift in gifts
        ],
        "plans": [
            {
                "plan": plan.pk,
                "started": _iso(plan.created_at),
                "amount": money.format_cents(plan.amount_cents, plan.currency, exact=True),
                "amount_minor_units": plan.amount_cents,
                "currency": plan.currency.upper(),
                "frequency": plan.frequency,
                "status": plan.status,
                "name": plan.donor_name,
                "email": plan.donor_email,
                "appeal": plan.appeal.name if plan.appeal else None,
                "canceled_at": _iso(plan.canceled_at),
            }
            for plan in plans
        ],
    }


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def live_plans_for_email(email: str) -> QuerySet[RecurringPlan]:
    """Plans under `email` that Stripe still charges (what deleting one's data leaves running)."""
    return RecurringPlan.objects.filter(
        donor_email__iexact=email, status__in=LIVE_PLAN_STATUSES
    ).order_by("created_at", "pk")
