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

import re

from subscriptions.services import tracking_event_record, unsubscribe_by_mail


def tracking_received(sender, event, esp_name: str, **kwargs) -> None:
    # Seen before (None): nothing to do, anymail still answers 200.
    tracking_event_record(event=event, esp_name=esp_name)


def _addresses(value) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [item.addr_spec.lower() for item in items if getattr(item, "addr_spec", None)]


def sender_verified(message, sender: str) -> bool:
    """Whether the receiving ESP vouches for `sender`: DKIM signed by the sender's domain,
    or SPF passed for an envelope sender of that domain.

    From the headers the ESP adds on receipt: Authentication-Results (RFC 8601),
    Received-SPF (RFC 7208 §9.1; Postmark), X-Mailgun-Spf (Mailgun).
    """
    domain = sender.rpartition("@")[2].lower()
    signed_by = re.compile(rf"header\.[di]=@?(?:[\w-]+\.)*{re.escape(domain)}(?![\w.-])")
    for results in message.get_all("Authentication-Results") or []:
        for clause in str(results).lower().split(";"):
            clause = clause.strip()
            if clause.startswith("dkim=pass") and signed_by.search(clause):
                return True
    envelope = (message.envelope_sender or "").lower()
    spf = [str(message.get(name, "")) for name in ("Received-SPF", "X-Mailgun-Spf")]
    return envelope.rpartition("@")[2] == domain and any(
        value.strip().lower().startswith("pass") for value in spf
    )


def inbound_received(sender, event, esp_name: str, **kwargs) -> None:
    """Mail through anymail's inbound webhook: one to the List-Unsubscribe mailto:
    address unsubscribes its sender; anything else is not for this app."""
    message = event.message
    if message is None:
        return
    recipients = _addresses(message.to) + _addresses(message.cc)
    if message.envelope_recipient:
        recipients.append(message.envelope_recipient.lower())
    senders = _addresses(message.from_email)
    if len(senders) != 1:
        return
    unsubscribe_by_mail(
        sender=senders[0],
        recipients=recipients,
        sender_verified=sender_verified(message, senders[0]),
        esp_name=esp_name,
    )
