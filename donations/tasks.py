"""Celery tasks: thin, idempotent, named, taking ids; each calls one service."""

from __future__ import annotations

from datetime import timedelta

from anymail.exceptions import AnymailError
from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from donations import services, stripe_api

# Stripe being briefly unreachable, or a database failover, is worth retrying; each
# service is idempotent, so a retry after a partial run changes nothing twice.
RETRYABLE = (stripe_api.StripeError, OperationalError)
# An SMTP hiccup (smtplib's errors are OSErrors) or an ESP's API error through
# django-anymail: the email is marked sent only after it left, so a retry is safe.
MAIL_ERRORS = (OSError, AnymailError)


@shared_task(
    name="donations.stripe_event_process",
    autoretry_for=RETRYABLE,
    retry_backoff=True,
    max_retries=8,
    acks_late=True,
)
def stripe_event_process_task(event_id: int) -> str:
    return services.stripe_event_process(event_id=event_id)


@shared_task(name="donations.stripe_events_drain")
def stripe_events_drain_task() -> int:
    """Pushed by the webhook once a window: queue each event stored since the last drain."""
    return services.stripe_events_drain()


@shared_task(name="donations.stripe_events_requeue_received")
def stripe_events_requeue_received_task() -> int:
    """Beat, every minute: queue again the events still `received` a few minutes on."""
    return services.stripe_events_requeue_received()


@shared_task(
    name="donations.receipt_send", autoretry_for=MAIL_ERRORS, retry_backoff=True, max_retries=5
)
def receipt_send_task(gift_id: int) -> bool:
    return services.receipt_send(gift_id=gift_id)


@shared_task(
    name="donations.honoree_notify", autoretry_for=MAIL_ERRORS, retry_backoff=True, max_retries=5
)
def honoree_notify_task(gift_id: int) -> bool:
    return services.honoree_notify(gift_id=gift_id)


@shared_task(
    name="donations.card_update_notice_send",
    autoretry_for=MAIL_ERRORS,
    retry_backoff=True,
    max_retries=5,
)
def card_update_notice_task(notice_id: int, hosted_invoice_url: str = "") -> bool:
    return services.card_update_notice_send(
        notice_id=notice_id, hosted_invoice_url=hosted_invoice_url
    )


@shared_task(
    name=services.MANAGE_LINK_TASK,
    autoretry_for=MAIL_ERRORS,
    retry_backoff=True,
    max_retries=3,
)
def manage_link_send_task(email: str, language: str | None = None) -> bool:
    return services.manage_link_send(email=email, language=language)


@shared_task(name="donations.appeal_counters_flush")
def appeal_counters_flush_task() -> int:
    return services.appeal_counters_flush()


@shared_task(
    name="donations.reconcile_stripe", autoretry_for=RETRYABLE, retry_backoff=True, max_retries=3
)
def reconcile_stripe_task(since_hours: int = 48) -> dict:
    return services.stripe_reconcile(since=timedelta(hours=since_hours))


@shared_task(name="donations.giving_statements_send")
def giving_statements_send_task(year: int | None = None) -> int:
    """Each January: last year's statements (the beat schedule runs it on 5 January)."""
    return services.giving_statements_send(year=year or timezone.localdate().year - 1)
