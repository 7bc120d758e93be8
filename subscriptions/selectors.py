"""Reads of the subscriptions app that pages, emails and tasks share."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from django.core import signing
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.translation import gettext_lazy, pgettext_lazy

from newsroom.models import Article
from subscriptions import appeals, tokens
from subscriptions.digest.ledger import reader_editions
from subscriptions.models import (
    ConsentRecord,
    Newsletter,
    Subscriber,
    Subscription,
    Suppression,
    TrackingEvent,
    email_hash,
)


def suppressed_among(emails: Iterable[str]) -> set[str]:
    """The addresses among `emails` that must not be emailed (the one suppression check)."""
    by_hash = {email_hash(email): email for email in emails}
    found = (
        Suppression.objects.filter(email_sha256__any_of=list(by_hash))
        .order_by()
        .values_list("email_sha256", flat=True)
    )
    return {by_hash[digest] for digest in found}


class TokenInvalid(Exception):
    """A link's token is forged, expired, meant for something else, or its reader is gone."""


def subscriber_from_token(
    purpose: str, token: str, *, max_age: int
) -> tuple[Subscriber, Newsletter | None]:
    """The subscriber (and newsletter, when the link names one) a signed link stands for."""
    try:
        payload = tokens.read_token(purpose, token, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise TokenInvalid("expired") from exc
    except signing.BadSignature as exc:
        raise TokenInvalid("bad signature") from exc
    subscriber = Subscriber.objects.filter(**tokens.subscriber_lookup(payload)).first()
    # The address's fingerprint must match: a token never works for another address.
    if subscriber is None or not tokens.fingerprint_matches(subscriber.email, payload.get("e")):
        raise TokenInvalid("no such subscriber")
    newsletter = None
    if payload.get("n") is not None:
        newsletter = Newsletter.objects.filter(pk=payload["n"]).first()
        if newsletter is None:
            raise TokenInvalid("no such newsletter")
    return subscriber, newsletter


def active_newsletters() -> QuerySet[Newsletter]:
    return Newsletter.objects.filter(active=True).order_by("name")


def for_you_articles(
    *, category_ids: Sequence[int], topic_ids: Sequence[int], limit: int = 30
) -> QuerySet[Article]:
    """The latest published articles in the followed categories and topics, newest first."""
    if not category_ids and not topic_ids:
        return Article.objects.none()
    matches = Q(category_id__in=list(category_ids)) | Q(topics__in=list(topic_ids))
    ids = (
        Article.objects.published()
        .filter(matches)
        .order_by("-published_at", "-id")
        .values_list("pk", flat=True)
        .distinct()[:limit]
    )
    return (
        Article.objects.filter(pk__in=list(ids))
        .select_related("category")
        .prefetch_related("authors", "topics")
        .order_by("-published_at", "-id")
    )


# --- staff ------------------------------------------------------------------------------------

STATUS_SUPPRESSED = "suppressed"
STATUS_ACTIVE = "active"
STATUS_PENDING = "pending"
STATUS_UNSUBSCRIBED = "unsubscribed"
STATUSES = [
    (STATUS_ACTIVE, pgettext_lazy("subscriber status", "Active")),
    (STATUS_PENDING, gettext_lazy("Waiting for confirmation")),
    (STATUS_UNSUBSCRIBED, gettext_lazy("Unsubscribed from everything")),
    (STATUS_SUPPRESSED, gettext_lazy("Suppressed")),
]


def suppressed_subscriber_ids() -> list[int]:
    """Subscribers whose address is on the suppression list.

    The list holds only hashes and hashing in the database needs pgcrypto on PostgreSQL,
    so the addresses are hashed here: one pass over the emails, fast next to reading them.
    """
    hashes = set(Suppression.objects.values_list("email_sha256", flat=True))
    if not hashes:
        return []
    return [
        pk
        for pk, email in Subscriber.objects.values_list("pk", "email").iterator(chunk_size=2000)
        if email_hash(email) in hashes
    ]


def subscribers_by_status(
    status: str,
    queryset: QuerySet[Subscriber] | None = None,
    *,
    suppressed_ids: list[int] | None = None,
) -> QuerySet[Subscriber]:
    """Subscribers that are active, pending, unsubscribed from everything, or suppressed."""
    queryset = queryset if queryset is not None else Subscriber.objects.all()
    subscriptions = Subscription.objects.filter(subscriber=OuterRef("pk"))
    queryset = queryset.annotate(
        has_active=Exists(subscriptions.filter(status=Subscription.Status.ACTIVE)),
        has_pending=Exists(subscriptions.filter(status=Subscription.Status.PENDING)),
    )
    suppressed = suppressed_ids if suppressed_ids is not None else suppressed_subscriber_ids()
    if status == STATUS_SUPPRESSED:
        return queryset.filter(pk__in=suppressed)
    queryset = queryset.exclude(pk__in=suppressed)
    if status == STATUS_ACTIVE:
        return queryset.filter(has_active=True)
    if status == STATUS_PENDING:
        return queryset.filter(has_active=False, has_pending=True)
    if status == STATUS_UNSUBSCRIBED:
        return queryset.filter(has_active=False, has_pending=False)
    return queryset


def status_counts() -> dict[str, int]:
    suppressed = suppressed_subscriber_ids()
    return {
        key: subscribers_by_status(key, suppressed_ids=suppressed).count() for key, _ in STATUSES
    }


def confirmed_subscribers_for_export() -> QuerySet[Subscriber]:
    """Confirmed subscribers with at least one active newsletter, for the staff CSV."""
    return (
        subscribers_by_status(STATUS_ACTIVE)
        .filter(confirmed_at__isnull=False)
        .prefetch_related("subscriptions__newsletter", "follows__category", "follows__topic")
        .order_by("pk")
    )


# --- the reader's own data --------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def subscriber_export(*, subscriber: Subscriber) -> dict:
    """Everything held about the address, consent history and gifts included, as JSON-ready data."""
    records = ConsentRecord.objects.filter(subscriber=subscriber).select_related(
        "newsletter", "consent_text"
    )
    subscriptions = subscriber.subscriptions.select_related("newsletter").order_by("pk")
    follows = subscriber.follows.select_related("category", "topic")
    events = TrackingEvent.objects.filter(recipient__iexact=subscriber.email).order_by(
        "occurred_at"
    )
    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "time_zone": subscriber.time_zone,
        "created_at": _iso(subscriber.created_at),
        "confirmed_at": _iso(subscriber.confirmed_at),
        "paused_until": _iso(subscriber.paused_until),
        "confirmation_sent_at": _iso(subscriber.confirmation_sent_at),
        "reminder_sent_at": _iso(subscriber.reminder_sent_at),
        "suppressed": bool(suppressed_among([subscriber.email])),
        "subscriptions": [
            {
                "newsletter": s.newsletter.name,
                "status": s.status,
                "created_at": _iso(s.created_at),
                "confirmed_at": _iso(s.confirmed_at),
                "unsubscribed_at": _iso(s.unsubscribed_at),
            }
            for s in subscriptions
        ],
        "follows": [
            {
                "kind": "category" if f.category_id else "topic",
                "name": str(f.category or f.topic),
                "since": _iso(f.created_at),
            }
            for f in follows
        ],
        "consent_history": [
            {
                "action": r.action,
                "newsletter": r.newsletter.name if r.newsletter else None,
                "at": _iso(r.at),
                "ip_address": r.ip_address,
                "user_agent": r.user_agent,
                "source": r.source,
                "consent_text_sha256": r.consent_text.sha256 if r.consent_text else None,
                "consent_text": r.consent_text.text if r.consent_text else None,
            }
            for r in records
        ],
        "email_events": [
            {
                "type": e.event_type,
                "at": _iso(e.occurred_at),
                "esp": e.esp_name,
                "description": e.description,
                "as_reported": e.payload,
            }
            for e in events
        ],
        "deliveries": [
            {
                "newsletter": copy["newsletter"],
                "edition": copy["edition"].isoformat(),
                "state": copy["state"],
                "sent_at": _iso(copy["sent_at"]),
            }
            for copy in reader_editions(subscriber)
        ],
        # Gifts and plans under the same address: the link proves the reader owns it.
        **appeals.reader_gifts_export(email=subscriber.email),
    }
