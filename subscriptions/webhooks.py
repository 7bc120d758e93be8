"""The one receiver of django-anymail's tracking signal (bounces, complaints, unsubscribes).

anymail's webhook views (mounted at /webhooks/anymail/) check the basic-auth secret
(ANYMAIL["WEBHOOK_SECRET"]) and parse each ESP's payload into AnymailTrackingEvent
objects, then send the `tracking` signal:
https://anymail.dev/en/stable/sending/tracking/#normalized-tracking-event
This receiver stores each event once (its ESP event id is unique) and hands the stored
event to a task, so the ESP gets its 200 quickly and a duplicate delivery is a no-op.
"""

from __future__ import annotations

from subscriptions.services import tracking_event_record


def tracking_received(sender, event, esp_name: str, **kwargs) -> None:
    stored = tracking_event_record(event=event, esp_name=esp_name)
    if stored is None:
        return  # seen before: nothing to do, anymail still answers 200
    from subscriptions.tasks import tracking_event_process_task

    tracking_event_process_task.delay(stored.pk)
