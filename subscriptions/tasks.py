"""Celery tasks of the subscriptions app: thin and idempotent, given ids, never model instances."""

from __future__ import annotations

from celery import shared_task

from subscriptions import services


@shared_task(name="subscriptions.confirmation_send")
def confirmation_send_task(subscriber_id: int) -> bool:
    return services.confirmation_email_send(subscriber_id=subscriber_id)


@shared_task(name="subscriptions.confirmation_reminders_send")
def confirmation_reminders_send_task() -> int:
    return services.confirmation_reminders_send()


@shared_task(name="subscriptions.tracking_event_process")
def tracking_event_process_task(tracking_event_id: int) -> str:
    return services.tracking_event_process(tracking_event_id=tracking_event_id)
