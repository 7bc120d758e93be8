"""Celery tasks of the subscriptions app: thin and idempotent, given ids, never model instances."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task

from subscriptions import services


@shared_task(name=services.SIGNUP_TASK)
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


@shared_task(name="subscriptions.tracking_event_process")
def tracking_event_process_task(tracking_event_id: int) -> str:
    return services.tracking_event_process(tracking_event_id=tracking_event_id)
