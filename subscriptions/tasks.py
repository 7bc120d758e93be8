"""Celery tasks of the subscriptions app: thin and idempotent, given ids, never model instances."""

from __future__ import annotations

from datetime import datetime

from anymail.exceptions import AnymailError
from celery import shared_task
from django.db import OperationalError

from subscriptions import services


# Tried again when the ESP did not take the confirmation (the sign-up gave its claim
# back) or the database was away: the request is in no row yet, only in this task.
@shared_task(
    name=services.SIGNUP_TASK,
    autoretry_for=(OSError, AnymailError, OperationalError),
    # Up to about 30 s, 1, 2, 4, 8 and 10 minutes: an outage of half an hour is covered.
    retry_backoff=30,
    retry_backoff_max=600,
    max_retries=6,
)
def subscription_request_process_task(
    *,
    email: str,
    newsletter_ids: list[int],
    time_zone: str | None,
    consent_version: str | None,
    ip: str | None,
    user_agent: str,
    source: str,
    requested_at: str,
    language: str | None = None,  # absent from requests queued before readers had one
) -> bool:
    # Given the request itself, not ids: nothing is stored for it before this task runs.
    at = datetime.fromisoformat(requested_at)
    return services.subscription_request_process(
        email=email,
        newsletter_ids=newsletter_ids,
        time_zone=time_zone,
        consent_version=consent_version,
        meta=services.RequestMeta(ip=ip, user_agent=user_agent, source=source, at=at),
        requested_at=at,
        language=language,
    )


# Messages already on the broker under this name still find their task.
@shared_task(name="subscriptions.confirmation_send")
def confirmation_send_task(subscriber_id: int) -> bool:
    return services.confirmation_email_send(subscriber_id=subscriber_id)


@shared_task(name="subscriptions.confirmation_reminders_send")
def confirmation_reminders_send_task() -> int:
    return services.confirmation_reminders_send()


@shared_task(name=services.TRACKING_TASK)
def tracking_event_process_task(tracking_event_id: int) -> str:
    return services.tracking_event_process(tracking_event_id=tracking_event_id)
