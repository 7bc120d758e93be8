"""Signing up: the request, the double opt-in email and its one reminder, the confirmation."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation

from newsroom import mail
from newsroom.outbox import outbox_enqueue
from subscriptions import tokens
from subscriptions.models import ConsentRecord, Newsletter, Subscriber, Subscription
from subscriptions.selectors import suppressed_among
from subscriptions.services.consent import RequestMeta, _record, consent_text_for_version
from subscriptions.services.preferences import FollowRefs, _follows_add, valid_time_zone

# At most one confirmation email per address per hour, however often the form is sent.
CONFIRMATION_INTERVAL = timedelta(hours=1)
# One reminder, this long after the confirmation email, to an address that has not confirmed.
REMINDER_AFTER = timedelta(hours=24)


def normalize_email(email: str) -> str:
    return email.strip().lower()


# The task that does the work of a sign-up request; queued through the outbox by name.
SIGNUP_TASK = "subscriptions.subscription_request_process"


def subscription_request(
    *,
    email: str,
    newsletter_ids: Iterable[int],
    time_zone: str | None,
    consent_version: str | None,
    meta: RequestMeta,
    language: str,
) -> None:
    """Record a request to join newsletters; a task decides what, if anything, to send.

    The request writes one outbox row whatever the address's state, so neither the
    answer nor the work behind it (queries, timing) tells who is on the list.
    """
    with transaction.atomic():
        outbox_enqueue(
            task=SIGNUP_TASK,
            kwargs={
                "email": normalize_email(email),
                "newsletter_ids": sorted({int(pk) for pk in newsletter_ids}),
                "time_zone": time_zone,
                "consent_version": consent_version,
                "language": language,
                "ip": meta.ip,
                "user_agent": meta.user_agent[:500],
                "source": meta.source[:100],
                "requested_at": timezone.now().isoformat(),
            },
        )


def subscription_request_process(
    *,
    email: str,
    newsletter_ids: Iterable[int],
    time_zone: str | None,
    consent_version: str | None,
    meta: RequestMeta,
    requested_at: datetime,
    language: str | None = None,
) -> bool:
    """Join the newsletters asked for; send a confirmation unless one went out this hour.

    Idempotent, as the outbox needs: the hourly limit is measured between requests (by
    their own time, not the time they are processed), so the same request handled twice
    finds its own claim and sends nothing more. Returns whether an email went out.
    """
    email = normalize_email(email)
    if suppressed_among([email]):
        return False
    newsletters = list(Newsletter.objects.filter(pk__in=list(newsletter_ids), active=True))
    if not newsletters:
        return False
    consent = consent_text_for_version(consent_version)
    send = False
    with transaction.atomic():
        language = valid_language(language)
        subscriber, _ = Subscriber.objects.get_or_create(
            email=email, defaults={"time_zone": valid_time_zone(time_zone), "language": language}
        )
        # Serialise requests for one address so the hourly limit holds under concurrency.
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        # Until the address is confirmed its latest request speaks for it; afterwards only
        # the reader's own preferences page changes their language.
        if subscriber.confirmed_at is None and subscriber.language != language:
            subscriber.language = language
            subscriber.save(update_fields=["language"])
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
        if pending and (last is None or requested_at - last >= CONFIRMATION_INTERVAL):
            subscriber.confirmation_sent_at = requested_at
            subscriber.save(update_fields=["confirmation_sent_at"])
            send = True
    if not send:
        return False
    # Sent once the claim has committed.
    try:
        return confirmation_email_send(subscriber_id=subscriber.pk)
    except Exception:
        # No email went: give the claim back, so this request run again, or the reader's
        # next one, sends it instead of meeting an hour's "already sent".
        Subscriber.objects.filter(pk=subscriber.pk, confirmation_sent_at=requested_at).update(
            confirmation_sent_at=last
        )
        raise


def valid_language(language: str | None) -> str:
    """`language` if the site offers it, otherwise the site's default."""
    offered = {code for code, _ in settings.LANGUAGES}
    return language if language in offered else settings.LANGUAGE_CODE


def _email_send(
    *,
    subscriber: Subscriber,
    template: str,
    context: dict,
    headers: dict[str, str] | None = None,
    tags: list[str],
) -> bool:
    # In the reader's language: the email's words and dates (its links carry it too).
    with translation.override(subscriber.language):
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
        "newsletter_names": ", ".join(
            newsletter.translated("name", language=subscriber.language) for newsletter in pending
        ),
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
