"""Writes of the subscriptions app: one transaction each, keyword-only arguments."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import strip_tags

from newsroom import audit, mail
from newsroom.models import Category, Topic
from subscriptions import tokens
from subscriptions.models import (
    ConsentRecord,
    ConsentText,
    Edition,
    Follow,
    Newsletter,
    Subscriber,
    Subscription,
    Suppression,
    TrackingEvent,
    email_hash,
)
from subscriptions.selectors import suppressed_among

logger = logging.getLogger(__name__)

# At most one confirmation email per address per hour, however often the form is sent.
CONFIRMATION_INTERVAL = timedelta(hours=1)
# One reminder, this long after the confirmation email, to an address that has not confirmed.
REMINDER_AFTER = timedelta(hours=24)
# Soft bounces (anymail "deferred") suppress the address after this many in this window.
SOFT_BOUNCE_LIMIT = 3
SOFT_BOUNCE_WINDOW = timedelta(days=30)
PAUSE_DAYS = 7
# A cookie or a form may carry at most this many follows.
MAX_FOLLOWS = 100


@dataclass(frozen=True)
class RequestMeta:
    """Where a consent action came from, as ConsentRecord keeps it."""

    ip: str | None = None
    user_agent: str = ""
    source: str = ""


def normalize_email(email: str) -> str:
    return email.strip().lower()


@functools.cache
def time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def valid_time_zone(value: str | None) -> str:
    """The IANA name when it is one we know, otherwise the newsroom's own time zone."""
    value = (value or "").strip()
    return value if value in time_zones() else settings.TIME_ZONE


def is_time_zone(value: str | None) -> bool:
    return bool(value) and value in time_zones()


# --- consent texts --------------------------------------------------------------------------


def consent_document() -> str:
    """The exact words a reader agrees to: the consent line, the terms and the privacy policy.

    Rendered from the same templates as the form and the /terms/ and /privacy/ pages, so
    changing any of them makes a new version.
    """
    context = {"NEWSROOM_NAME": settings.NEWSROOM_NAME}
    parts = [
        strip_tags(render_to_string("subscriptions/legal/consent_line.html", context)),
        "TERMS OF USE",
        strip_tags(render_to_string("subscriptions/legal/terms_body.html", context)),
        "PRIVACY POLICY",
        strip_tags(render_to_string("subscriptions/legal/privacy_body.html", context)),
    ]
    return "\n\n".join(" ".join(part.split()) for part in parts)


def consent_text_store(*, text: str) -> ConsentText:
    """Store a version of the consent wording once, keyed by its SHA-256."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    try:
        with transaction.atomic():
            consent, _ = ConsentText.objects.get_or_create(sha256=digest, defaults={"text": text})
    except IntegrityError:  # another request stored the same version a moment ago
        consent = ConsentText.objects.get(sha256=digest)
    return consent


def consent_text_current() -> ConsentText:
    return consent_text_store(text=consent_document())


def consent_version_shown() -> str:
    """The SHA-256 of the current consent wording, stored (once) before a form shows it.

    A stored version is never deleted (old consent records point at it), so once the
    cache says it is stored the database is not asked again: a page render costs no
    query for it, and a changed wording has a new hash and is stored on its first showing.
    """
    text = consent_document()
    digest = hashlib.sha256(text.encode()).hexdigest()
    key = f"subscriptions:consent-stored:{digest}"
    if not cache.get(key):
        consent_text_store(text=text)
        cache.set(key, True, timeout=None)
    return digest


def consent_text_for_version(version: str | None) -> ConsentText:
    """The version the form showed (its hash travels with the form), else the current one."""
    if version:
        shown = ConsentText.objects.filter(sha256=version).first()
        if shown is not None:
            return shown
    return consent_text_current()


def _record(
    *,
    subscriber: Subscriber,
    action: str,
    meta: RequestMeta,
    newsletter: Newsletter | None = None,
    consent_text: ConsentText | None = None,
) -> ConsentRecord:
    # The only way consent records are written: create, never update or delete.
    return ConsentRecord.objects.create(
        subscriber=subscriber,
        newsletter=newsletter,
        action=action,
        ip_address=meta.ip or None,
        user_agent=meta.user_agent[:500],
        source=meta.source[:100],
        consent_text=consent_text,
    )


# --- subscribing ------------------------------------------------------------------------------


def subscription_request(
    *,
    email: str,
    newsletter_ids: Iterable[int],
    time_zone: str | None,
    consent_version: str | None,
    meta: RequestMeta,
) -> None:
    """Ask to join newsletters; send a confirmation email unless one went out this hour.

    Returns nothing on purpose: the caller answers the same whatever the address's state
    (no enumeration of who is on the list).
    """
    email = normalize_email(email)
    if suppressed_among([email]):
        return
    newsletters = list(Newsletter.objects.filter(pk__in=list(newsletter_ids), active=True))
    if not newsletters:
        return
    consent = consent_text_for_version(consent_version)
    now = timezone.now()
    send = False
    with transaction.atomic():
        subscriber, _ = Subscriber.objects.get_or_create(
            email=email, defaults={"time_zone": valid_time_zone(time_zone)}
        )
        # Serialise requests for one address so the hourly limit holds under concurrency.
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        for newsletter in newsletters:
            subscription, created = Subscription.objects.get_or_create(
                subscriber=subscriber, newsletter=newsletter
            )
            if subscription.status == Subscription.Status.ACTIVE:
                continue
            if subscription.status == Subscription.Status.UNSUBSCRIBED:
                subscription.status = Subscription.Status.PENDING
                subscription.unsubscribed_at = None
                subscription.save(update_fields=["status", "unsubscribed_at"])
                created = True
            if created:
                _record(
                    subscriber=subscriber,
                    newsletter=newsletter,
                    action=ConsentRecord.Action.SUBSCRIBE,
                    meta=meta,
                    consent_text=consent,
                )
        pending = subscriber.subscriptions.filter(status=Subscription.Status.PENDING).exists()
        last = subscriber.confirmation_sent_at
        if pending and (last is None or now - last >= CONFIRMATION_INTERVAL):
            subscriber.confirmation_sent_at = now
            subscriber.save(update_fields=["confirmation_sent_at"])
            send = True
    if send:
        # The row is committed (the atomic block above has closed), so a worker sees it.
        from subscriptions.tasks import confirmation_send_task

        confirmation_send_task.delay(subscriber.pk)


def _email_send(
    *,
    subscriber: Subscriber,
    template: str,
    context: dict,
    headers: dict[str, str] | None = None,
    tags: list[str],
) -> bool:
    return mail.send(
        template=f"subscriptions/emails/{template}",
        to=subscriber.email,
        context={"subscriber": subscriber, **context},
        headers=headers,
        tags=tags,
        metadata={"subscriber_id": str(subscriber.pk), "kind": template},
    )


def confirmation_email_send(*, subscriber_id: int, reminder: bool = False) -> bool:
    """Send the double opt-in email (or its one reminder); False when there is nothing to send."""
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None:
        return False
    pending = list(
        Newsletter.objects.filter(
            subscriptions__subscriber=subscriber,
            subscriptions__status=Subscription.Status.PENDING,
        )
    )
    if not pending:
        return False
    # newsroom.mail makes the one suppression check, right before sending.
    context = {
        "newsletters": pending,
        "confirm_url": tokens.confirm_url(subscriber=subscriber),
        "valid_days": settings.SUBSCRIPTIONS_CONFIRM_MAX_AGE_DAYS,
    }
    if reminder:
        # A reminder is not something the reader just asked for: it is list mail and
        # carries RFC 8058 one-click unsubscribe like every other one.
        unsubscribe = tokens.unsubscribe_url(subscriber=subscriber)
        return _email_send(
            subscriber=subscriber,
            template="reminder",
            context={**context, "unsubscribe_url": unsubscribe, "reminder": True},
            headers=tokens.list_unsubscribe_headers(subscriber=subscriber),
            tags=["confirmation-reminder"],
        )
    return _email_send(
        subscriber=subscriber, template="confirm", context=context, tags=["confirmation"]
    )


def confirmation_reminders_send(*, now: datetime | None = None) -> int:
    """Remind, once, each address that asked a day ago and has not confirmed; return how many."""
    now = now or timezone.now()
    due = (
        Subscriber.objects.filter(
            reminder_sent_at__isnull=True,
            confirmation_sent_at__lte=now - REMINDER_AFTER,
            # Older requests are abandoned: their link has expired and they get nothing more.
            confirmation_sent_at__gte=now
            - timedelta(days=settings.SUBSCRIPTIONS_CONFIRM_MAX_AGE_DAYS),
            subscriptions__status=Subscription.Status.PENDING,
        )
        .distinct()
        .values_list("pk", flat=True)
    )
    sent = 0
    for subscriber_id in list(due):
        # Claim the reminder first: two beat runs (or workers) racing send it once.
        claimed = Subscriber.objects.filter(pk=subscriber_id, reminder_sent_at__isnull=True).update(
            reminder_sent_at=now
        )
        if claimed and confirmation_email_send(subscriber_id=subscriber_id, reminder=True):
            sent += 1
    return sent


@dataclass(frozen=True)
class FollowRefs:
    """Categories and topics by id, in the order they were followed."""

    category_ids: tuple[int, ...] = ()
    topic_ids: tuple[int, ...] = ()


def subscription_confirm(
    *, subscriber: Subscriber, meta: RequestMeta, follows: FollowRefs | None = None
) -> list[Newsletter]:
    """Activate the pending subscriptions and take over the browser's follows; idempotent.

    Returns the newsletters this call activated: none when the link is opened again.
    """
    if suppressed_among([subscriber.email]):
        return []
    now = timezone.now()
    activated: list[Newsletter] = []
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        pending = subscriber.subscriptions.select_related("newsletter").filter(
            status=Subscription.Status.PENDING
        )
        for subscription in pending:
            subscription.status = Subscription.Status.ACTIVE
            subscription.confirmed_at = now
            subscription.save(update_fields=["status", "confirmed_at"])
            _record(
                subscriber=subscriber,
                newsletter=subscription.newsletter,
                action=ConsentRecord.Action.CONFIRM,
                meta=meta,
            )
            activated.append(subscription.newsletter)
        if subscriber.confirmed_at is None:
            subscriber.confirmed_at = now
            subscriber.save(update_fields=["confirmed_at"])
        if follows:
            _follows_add(subscriber=subscriber, follows=follows)
    return activated


def _follows_add(*, subscriber: Subscriber, follows: FollowRefs) -> None:
    position = (
        subscriber.follows.order_by("-position").values_list("position", flat=True).first() or 0
    )
    have_categories = set(
        subscriber.follows.filter(category__isnull=False).values_list("category_id", flat=True)
    )
    have_topics = set(
        subscriber.follows.filter(topic__isnull=False).values_list("topic_id", flat=True)
    )
    categories = set(
        Category.objects.filter(pk__in=follows.category_ids).values_list("pk", flat=True)
    )
    topics = set(Topic.objects.filter(pk__in=follows.topic_ids).values_list("pk", flat=True))
    for category_id in follows.category_ids:
        if category_id in categories and category_id not in have_categories:
            position += 1
            Follow.objects.create(subscriber=subscriber, category_id=category_id, position=position)
            have_categories.add(category_id)
    for topic_id in follows.topic_ids:
        if topic_id in topics and topic_id not in have_topics:
            position += 1
            Follow.objects.create(subscriber=subscriber, topic_id=topic_id, position=position)
            have_topics.add(topic_id)


def follow_set(
    *,
    subscriber: Subscriber,
    category: Category | None = None,
    topic: Topic | None = None,
    following: bool,
) -> None:
    """Follow or stop following one category or topic; setting the same state twice is a no-op."""
    if (category is None) == (topic is None):
        raise ValueError("give exactly one of category or topic")
    with transaction.atomic():
        if following:
            _follows_add(
                subscriber=subscriber,
                follows=FollowRefs(
                    category_ids=(category.pk,) if category else (),
                    topic_ids=(topic.pk,) if topic else (),
                ),
            )
        elif category is not None:
            subscriber.follows.filter(category=category).delete()
        else:
            subscriber.follows.filter(topic=topic).delete()


# --- preferences and leaving ------------------------------------------------------------------


def subscription_unsubscribe(
    *, subscriber: Subscriber, newsletter: Newsletter | None = None, meta: RequestMeta
) -> int:
    """Leave one newsletter, or all of them; at once, idempotent. Returns how many ended."""
    now = timezone.now()
    ended = 0
    with transaction.atomic():
        subscriptions = subscriber.subscriptions.select_for_update().exclude(
            status=Subscription.Status.UNSUBSCRIBED
        )
        if newsletter is not None:
            subscriptions = subscriptions.filter(newsletter=newsletter)
        for subscription in subscriptions.select_related("newsletter"):
            subscription.status = Subscription.Status.UNSUBSCRIBED
            subscription.unsubscribed_at = now
            subscription.save(update_fields=["status", "unsubscribed_at"])
            _record(
                subscriber=subscriber,
                newsletter=subscription.newsletter,
                action=ConsentRecord.Action.UNSUBSCRIBE,
                meta=meta,
            )
            ended += 1
    return ended


def preferences_update(
    *,
    subscriber: Subscriber,
    newsletters: Iterable[Newsletter],
    categories: Iterable[Category],
    topics: Iterable[Topic],
    time_zone: str,
    meta: RequestMeta,
) -> None:
    """Save the preferences page: newsletters, follows and time zone, recording each change."""
    chosen = {newsletter.pk: newsletter for newsletter in newsletters}
    category_ids = [category.pk for category in categories][:MAX_FOLLOWS]
    topic_ids = [topic.pk for topic in topics][:MAX_FOLLOWS]
    now = timezone.now()
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        current = {
            s.newsletter_id: s for s in subscriber.subscriptions.select_related("newsletter")
        }
        consent = None
        for newsletter_id, newsletter in chosen.items():
            subscription = current.get(newsletter_id)
            if subscription is not None and subscription.status == Subscription.Status.ACTIVE:
                continue
            # The preferences link arrived in this mailbox, so the address is proven:
            # joining here needs no second confirmation email.
            consent = consent or consent_text_current()
            if subscription is None:
                subscription = Subscription(subscriber=subscriber, newsletter=newsletter)
            subscription.status = Subscription.Status.ACTIVE
            subscription.confirmed_at = now
            subscription.unsubscribed_at = None
            subscription.save()
            _record(
                subscriber=subscriber,
                newsletter=newsletter,
                action=ConsentRecord.Action.SUBSCRIBE,
                meta=meta,
                consent_text=consent,
            )
        for newsletter_id, subscription in current.items():
            if newsletter_id in chosen or subscription.status == Subscription.Status.UNSUBSCRIBED:
                continue
            subscription.status = Subscription.Status.UNSUBSCRIBED
            subscription.unsubscribed_at = now
            subscription.save(update_fields=["status", "unsubscribed_at"])
            _record(
                subscriber=subscriber,
                newsletter=subscription.newsletter,
                action=ConsentRecord.Action.UNSUBSCRIBE,
                meta=meta,
            )

        changed = False
        have = list(subscriber.follows.all())
        keep_categories = set(category_ids)
        keep_topics = set(topic_ids)
        for follow in have:
            if (follow.category_id and follow.category_id not in keep_categories) or (
                follow.topic_id and follow.topic_id not in keep_topics
            ):
                follow.delete()
                changed = True
        before = len(have)
        _follows_add(
            subscriber=subscriber,
            follows=FollowRefs(category_ids=tuple(category_ids), topic_ids=tuple(topic_ids)),
        )
        if subscriber.follows.count() != before:
            changed = True
        zone = valid_time_zone(time_zone)
        if zone != subscriber.time_zone:
            subscriber.time_zone = zone
            subscriber.save(update_fields=["time_zone"])
            changed = True
        if changed:
            _record(subscriber=subscriber, action=ConsentRecord.Action.PREFERENCE_CHANGE, meta=meta)


def subscriber_pause(*, subscriber: Subscriber, meta: RequestMeta, days: int = PAUSE_DAYS) -> None:
    """Hold every newsletter for `days` days; the digest skips a paused subscriber."""
    with transaction.atomic():
        subscriber.paused_until = timezone.now() + timedelta(days=days)
        subscriber.save(update_fields=["paused_until"])
        _record(subscriber=subscriber, action=ConsentRecord.Action.PREFERENCE_CHANGE, meta=meta)


def subscriber_resume(*, subscriber: Subscriber, meta: RequestMeta) -> None:
    with transaction.atomic():
        subscriber.paused_until = None
        subscriber.save(update_fields=["paused_until"])
        _record(subscriber=subscriber, action=ConsentRecord.Action.PREFERENCE_CHANGE, meta=meta)


def suppression_add(*, email: str, reason: str) -> Suppression:
    """Put an address on the suppression list (by hash); the first reason given stays."""
    digest = email_hash(email)
    try:
        with transaction.atomic():
            suppression, _ = Suppression.objects.get_or_create(
                email_sha256=digest, defaults={"reason": reason}
            )
    except IntegrityError:
        suppression = Suppression.objects.get(email_sha256=digest)
    return suppression


def subscriber_delete(*, subscriber: Subscriber, actor: audit.Actor | None, by: str) -> None:
    """Forget the reader: only the hash of the address stays, so no email goes to it again.

    `by` is "reader" (their own "delete my data", `actor` None: the reader's address and
    IP are what is being forgotten) or "staff" (the admin, `actor` the staff member).
    """
    with transaction.atomic():
        # The audit entry names the reader by id and hash only, committed with the deletion.
        audit.subscriber_deletion_record(subscriber=subscriber, actor=actor, by=by)
        suppression_add(email=subscriber.email, reason=Suppression.Reason.DELETED)
        # Tracking events name the address in clear; they go with the rest.
        TrackingEvent.objects.filter(recipient__iexact=subscriber.email).delete()
        # Subscriptions, follows and consent records cascade; deliveries keep no address.
        subscriber.delete()


# --- ESP tracking events ----------------------------------------------------------------------


def _json_safe(value) -> dict:
    if hasattr(value, "lists"):  # a QueryDict from a form-encoded webhook
        value = {key: values if len(values) > 1 else values[0] for key, values in value.lists()}
    try:
        data = json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        data = str(value)
    return data if isinstance(data, dict) else {"event": data}


def _derived_event_id(*, event, esp_name: str) -> str:
    """A stable id for ESPs whose events carry none (e.g. Postmark deliveries)."""
    parts = [
        esp_name,
        str(event.event_type),
        str(event.message_id or ""),
        normalize_email(event.recipient or ""),
        event.timestamp.isoformat() if event.timestamp else "",
        str(event.description or ""),
        str(event.mta_response or ""),
    ]
    return "derived:" + hashlib.sha256("|".join(parts).encode()).hexdigest()


def tracking_event_record(*, event, esp_name: str) -> TrackingEvent | None:
    """Store an anymail AnymailTrackingEvent once; None when it was already stored."""
    event_id = (
        str(event.event_id) if event.event_id else _derived_event_id(event=event, esp_name=esp_name)
    )
    metadata = event.metadata or {}
    edition_id = metadata.get("edition_id")
    edition = None
    if edition_id and str(edition_id).isdigit():
        edition = Edition.objects.filter(pk=int(edition_id)).first()
    try:
        with transaction.atomic():
            stored, created = TrackingEvent.objects.get_or_create(
                esp_event_id=event_id[:200],
                defaults={
                    "event_type": str(event.event_type)[:30],
                    "esp_name": esp_name[:40],
                    "recipient": normalize_email(event.recipient or "")[:254],
                    "message_id": str(event.message_id or "")[:200],
                    "edition": edition,
                    "reject_reason": str(event.reject_reason or "")[:40],
                    "description": str(event.description or event.mta_response or ""),
                    "occurred_at": event.timestamp or timezone.now(),
                    "payload": _json_safe(event.esp_event),
                },
            )
    except IntegrityError:  # the same event arrived twice at the same moment
        return None
    return stored if created else None


def _suppress_hard(stored: TrackingEvent) -> str:
    reason = (
        Suppression.Reason.COMPLAINT
        if stored.reject_reason == "spam"
        else Suppression.Reason.HARD_BOUNCE
    )
    suppression_add(email=stored.recipient, reason=reason)
    return f"suppressed ({reason})"


def _suppress_complaint(stored: TrackingEvent) -> str:
    suppression_add(email=stored.recipient, reason=Suppression.Reason.COMPLAINT)
    return "suppressed (complaint)"


def _count_soft_bounce(stored: TrackingEvent) -> str:
    recent = TrackingEvent.objects.filter(
        recipient=stored.recipient,
        event_type="deferred",
        occurred_at__gt=stored.occurred_at - SOFT_BOUNCE_WINDOW,
        occurred_at__lte=stored.occurred_at,
    ).count()
    if recent >= SOFT_BOUNCE_LIMIT:
        suppression_add(email=stored.recipient, reason=Suppression.Reason.SOFT_BOUNCES)
        return f"suppressed after {recent} soft bounces in 30 days"
    return f"soft bounce {recent} of {SOFT_BOUNCE_LIMIT}"


def _unsubscribe(stored: TrackingEvent) -> str:
    subscriber = Subscriber.objects.filter(email=stored.recipient).first()
    if subscriber is None:
        return "unsubscribed: no such subscriber"
    ended = subscription_unsubscribe(
        subscriber=subscriber, meta=RequestMeta(source=f"esp:{stored.esp_name}")
    )
    return f"unsubscribed from {ended} newsletter(s)"


# anymail's normalised event types (anymail.signals.EventType) -> what they change.
# bounced: anymail reports permanent failures as "bounced" and temporary ones as "deferred".
TRACKING_HANDLERS = {
    "bounced": _suppress_hard,
    "rejected": _suppress_hard,
    "complained": _suppress_complaint,
    "deferred": _count_soft_bounce,
    "unsubscribed": _unsubscribe,
}


def tracking_event_process(*, tracking_event_id: int) -> str:
    """Apply a stored tracking event to the subscriber; record what was done."""
    stored = TrackingEvent.objects.filter(pk=tracking_event_id).first()
    if stored is None or stored.processed_at is not None:
        return "already processed"
    handler = TRACKING_HANDLERS.get(stored.event_type)
    error = ""
    if handler is None:
        outcome = "stored"
    elif not stored.recipient:
        outcome = "ignored: no recipient"
    else:
        try:
            outcome = handler(stored)
        except Exception as exc:  # keep the error on the event for staff; the event stays stored
            logger.exception("tracking event %s failed", stored.pk)
            outcome, error = "failed", f"{exc.__class__.__name__}: {exc}"
    TrackingEvent.objects.filter(pk=stored.pk).update(
        processed_at=timezone.now(), outcome=outcome[:200], error=error
    )
    return outcome
