"""The one receiver of django-anymail's tracking signal (bounces, complaints, unsubscribes).

anymail's webhook views (mounted at /webhooks/anymail/) check the basic-auth secret
(ANYMAIL["WEBHOOK_SECRET"]) and parse each ESP's payload into AnymailTrackingEvent
objects, then send the `tracking` signal:
https://anymail.dev/en/stable/sending/tracking/#normalized-tracking-event
This receiver stores each event once (its ESP event id is unique) with the outbox row
of the task that applies it, so the ESP gets its 200 quickly, a duplicate delivery is a
no-op, and a broker that is down loses nothing.
"""

from __future__ import annotations

from django.conf import settings

from subscriptions.models import Subscriber
from subscriptions.services import RequestMeta, subscription_unsubscribe, tracking_event_record


def tracking_received(sender, event, esp_name: str, **kwargs) -> None:
    # Seen before (None): nothing to do, anymail still answers 200.
    tracking_event_record(event=event, esp_name=esp_name)


def _addresses(value) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [item.addr_spec.lower() for item in items if getattr(item, "addr_spec", None)]


def inbound_received(sender, event, esp_name: str, **kwargs) -> None:
    """A message to the List-Unsubscribe mailto: address unsubscribes its sender (RFC 2369).

    Anything else arriving through anymail's inbound webhook is not for this app.
    """
    message = event.message
    if message is None:
        return
    target = settings.UNSUBSCRIBE_MAILTO.lower()
    recipients = _addresses(message.to) + _addresses(message.cc)
    if message.envelope_recipient:
        recipients.append(message.envelope_recipient.lower())
    senders = _addresses(message.from_email)
    if target not in recipients or len(senders) != 1:
        return
    subscriber = Subscriber.objects.filter(email=senders[0]).first()
    if subscriber is not None:
        subscription_unsubscribe(
            subscriber=subscriber, meta=RequestMeta(source=f"mailto:{esp_name}")
        )
