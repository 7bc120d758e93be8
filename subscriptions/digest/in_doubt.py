"""Settling in-doubt batches by asking the ESP which of their readers it took.

Postmark's outbound message search and Mailgun's events API find a message by the
metadata every digest email carries (esp.edition_message: `edition_id`, and each
reader's `delivery_id` in a batch call) and by its recipient. The readers found are
recorded as sent; the others never reached the ESP, and are queued again. Elsewhere
(SMTP and the ESPs without such a search) in-doubt batches wait for staff, counted on
the dashboard and under the edition in the admin.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from functools import partial
from urllib.parse import urljoin, urlsplit

import requests
from anymail.exceptions import AnymailConfigurationError
from anymail.utils import get_anymail_setting
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from subscriptions.digest import ledger, plan
from subscriptions.digest.send import mark_edition_sent_if_done
from subscriptions.models import Delivery, DeliveryBatch, Edition, Subscriber

logger = logging.getLogger(__name__)

# An ESP's search shows a message some time after accepting it (Mailgun's events API:
# "events may take up to several minutes to appear"): asked sooner, a message it took
# would look missing, and its reader would get a second copy.
SETTLE_AFTER = timedelta(minutes=10)
# (connect, read) seconds for each question to the ESP.
ESP_TIMEOUT = (5, 20)
# Mailgun's events come 300 to a page; more pages than this is not one batch's window.
MAILGUN_MAX_PAGES = 50

# reader key (ledger.reader_key) -> the ESP's message id, for the in-doubt readers the ESP
# has a message for.
Found = dict[str, str]
Asker = Callable[[DeliveryBatch, dict[str, str]], Found]


@dataclass
class Settled:
    batch_id: int
    sent: int
    resent: int


class EspCannotTell(Exception):
    """The ESP's search did not answer (down, timed out, refused our key): ask again later."""


def esp_that_can_tell() -> str | None:
    """'postmark' or 'mailgun' when EMAIL_BACKEND is that ESP's anymail backend, else None."""
    backend = settings.EMAIL_BACKEND
    for esp in ASKERS:
        if backend.startswith(f"anymail.backends.{esp}."):
            return esp
    return None


def in_doubt_batches(*, now: datetime, batch_ids: list[int] | None = None):
    """The in-doubt batches old enough for the ESP's search to show what it took."""
    batches = DeliveryBatch.objects.filter(
        state=DeliveryBatch.State.IN_DOUBT, started_at__lt=now - SETTLE_AFTER
    ).select_related("edition")
    if batch_ids is not None:
        batches = batches.filter(pk__in=batch_ids)
    return batches.order_by("pk")


def batches_settle(*, now: datetime, batch_ids: list[int] | None = None) -> list[Settled]:
    """Settle in-doubt batches by asking the ESP, where it can tell; return what was done.

    A batch the ESP does not answer for stays in doubt until the next try.
    """
    esp = esp_that_can_tell()
    if esp is None:
        return []
    ask = ASKERS[esp]
    settled = []
    for batch in in_doubt_batches(now=now, batch_ids=batch_ids):
        waiting = ledger.readers_waiting(batch)
        emails = dict(Subscriber.objects.filter(pk__in=waiting).values_list("pk", "email"))
        readers = {ledger.reader_key(batch.pk, pk): emails[pk] for pk in waiting if pk in emails}
        try:
            found = ask(batch, readers)
        except EspCannotTell as exc:
            logger.warning("digest: cannot settle batch %s now: %s", batch.pk, exc)
            continue
        settled.append(batch_settle(batch_id=batch.pk, found=found))
    return settled


def batch_settle(*, batch_id: int, found: Found) -> Settled:
    """Record the in-doubt readers the ESP took as sent, and queue the others again."""
    now = timezone.now()
    with transaction.atomic():
        batch = DeliveryBatch.objects.select_for_update().get(pk=batch_id)
        if batch.state != DeliveryBatch.State.IN_DOUBT:
            return Settled(batch_id, 0, 0)  # settled meanwhile, by staff or another run
        waiting = set(ledger.readers_waiting(batch))
        took: dict[int, str] = {}
        for key, message_id in found.items():
            parsed = ledger.parse_reader_key(key)
            if parsed is not None and parsed[0] == batch.pk and parsed[1] in waiting:
                took[parsed[1]] = message_id
        ledger.readers_set_apart(
            edition_id=batch.edition_id,
            fates={
                subscriber_id: ledger.Fate(
                    Delivery.State.SENT, batch.pk, esp_message_id=message_id, sent_at=now
                )
                for subscriber_id, message_id in took.items()
            },
        )
        sent = len(took)
        # The others are the batch's again: queued, they go with its next send.
        resent = len(waiting) - sent
        batch.task_id = ""
        if resent:
            batch.state = DeliveryBatch.State.QUEUED
            batch.error = f"In doubt; the ESP had {sent} of its readers, the others sent again."
            Edition.objects.filter(pk=batch.edition_id, state=Edition.State.SENT).update(
                state=Edition.State.SENDING
            )
            transaction.on_commit(partial(plan.enqueue_batch, batch.pk))
        else:
            batch.state = DeliveryBatch.State.SENT
            batch.error = "In doubt; the ESP had every reader."
            batch.finished_at = now
        batch.save(update_fields=["state", "task_id", "error", "finished_at"])
    if not resent:
        mark_edition_sent_if_done(batch.edition_id)
    return Settled(batch_id, sent, resent)


def _get(url: str, **kwargs) -> dict:
    try:
        response = requests.get(url, timeout=ESP_TIMEOUT, **kwargs)
        response.raise_for_status()
        return response.json()
    except (requests.RequestException, ValueError) as exc:
        raise EspCannotTell(f"{type(exc).__name__}: {exc}") from exc


def _setting(name: str, esp: str, default=None):
    try:
        return get_anymail_setting(name, esp_name=esp, default=default)
    except AnymailConfigurationError as exc:
        raise EspCannotTell(str(exc)) from exc


def ask_postmark(batch: DeliveryBatch, readers: dict[str, str]) -> Found:
    """Postmark's outbound message search, per reader: this edition's messages to them.

    https://postmarkapp.com/developer/api/messages-api#outbound-message-search
    (`recipient`, and `metadata_<key>` for the metadata sent with the message).
    """
    base = _setting("api_url", "postmark", "https://api.postmarkapp.com/")
    token = _setting("server_token", "postmark")
    url = urljoin(base if base.endswith("/") else f"{base}/", "messages/outbound")
    found: Found = {}
    for delivery_id, email in readers.items():
        answer = _get(
            url,
            params={
                "count": 50,
                "offset": 0,
                "recipient": email,
                "metadata_edition_id": str(batch.edition_id),
            },
            headers={"Accept": "application/json", "X-Postmark-Server-Token": token},
        )
        for message in answer.get("Messages") or []:
            metadata = message.get("Metadata") or {}
            if _is_theirs(metadata, batch=batch, delivery_id=delivery_id) and email.lower() in [
                address.lower() for address in message.get("Recipients") or []
            ]:
                found[delivery_id] = str(message.get("MessageID", ""))
                break
    return found


def ask_mailgun(batch: DeliveryBatch, readers: dict[str, str]) -> Found:
    """Mailgun's events API: the edition's `accepted` events since the batch started.

    https://documentation.mailgun.com/docs/mailgun/api-reference/send/mailgun/events
    (`user-variables` filters on the `v:` variables sent with the message).
    """
    base = _setting("api_url", "mailgun", "https://api.mailgun.net/v3").rstrip("/")
    key = _setting("api_key", "mailgun")
    domain = (
        _setting("sender_domain", "mailgun", "")
        or parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2]
    )
    started = batch.started_at or batch.created_at
    by_email = {email: delivery_id for delivery_id, email in readers.items()}
    found: Found = {}
    url: str | None = f"{base}/{domain}/events"
    params: dict | None = {
        "event": "accepted",
        "begin": int((started - timedelta(minutes=1)).timestamp()),
        "ascending": "yes",
        "limit": 300,
        "user-variables": json.dumps({"edition_id": str(batch.edition_id)}),
    }
    for _ in range(MAILGUN_MAX_PAGES):
        if url is None:
            break
        answer = _get(url, params=params, auth=("api", key))
        items = answer.get("items") or []
        if not items:
            break
        for item in items:
            variables = item.get("user-variables") or {}
            delivery_id = _delivery_of(variables, by_email, item.get("recipient", ""))
            if delivery_id is not None and _is_theirs(
                variables, batch=batch, delivery_id=delivery_id
            ):
                headers = (item.get("message") or {}).get("headers") or {}
                found[delivery_id] = str(headers.get("message-id", ""))
        # The next page's address comes from Mailgun; our key goes to Mailgun's host only.
        following = (answer.get("paging") or {}).get("next")
        url = following if following and _same_host(following, base) else None
        params = None
    return found


def _delivery_of(variables: dict, by_email: dict[str, str], recipient: str) -> str | None:
    delivery_id = by_email.get(recipient.lower())
    if delivery_id is None:
        named = str(variables.get("delivery_id", ""))
        return named if named in by_email.values() else None
    return delivery_id


def _is_theirs(metadata: dict, *, batch: DeliveryBatch, delivery_id: str) -> bool:
    """The message is of this edition and, where it names one, of this reader's delivery."""
    if str(metadata.get("edition_id", "")) != str(batch.edition_id):
        return False
    named = metadata.get("delivery_id")
    return named in (None, "") or str(named) == str(delivery_id)


def _same_host(url: str, base: str) -> bool:
    one, other = urlsplit(url), urlsplit(base)
    return (one.scheme, one.netloc) == (other.scheme, other.netloc)


ASKERS: dict[str, Asker] = {"postmark": ask_postmark, "mailgun": ask_mailgun}
