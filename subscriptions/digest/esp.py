"""The digest's doorway to the email provider: a rendered batch in, each reader's result out.

Everything that depends on which ESP (or SMTP server) is configured lives here; the
batch's life (claim, record, retry, in doubt) lives in send.py.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import make_msgid

from anymail.backends.base import AnymailBaseBackend
from anymail.exceptions import (
    AnymailError,
    AnymailInvalidAddress,
    AnymailRecipientsRefused,
    AnymailUnsupportedFeature,
)
from django.core.mail import EmailMultiAlternatives, get_connection

from newsroom import mail
from newsroom.links import site_host
from newsroom.mail import RenderedEmail
from subscriptions.digest import render
from subscriptions.digest.render import (
    personal_copy,
    reader_headers,
    recipient_values,
    render_edition_email,
)
from subscriptions.models import Edition, Subscriber

logger = logging.getLogger(__name__)

# anymail's per-recipient statuses that mean "the ESP will not deliver this one".
REFUSED_STATUSES = {"rejected", "invalid", "failed"}


@dataclass
class Recipient:
    delivery_id: int
    subscriber: Subscriber


@dataclass
class Result:
    ok: bool
    message_id: str = ""
    error: str = ""


@dataclass
class SendReport:
    """What one batch's ESP calls came to: each reader's result, and the error that stopped them.

    `exception` is the error itself, so that the caller can tell an error proving the
    ESP took nothing from one after which the outcome is unknown.
    """

    results: dict[int, Result]
    error: str = ""
    exception: BaseException | None = None


# Called with (delivery_id, result) as each message is accepted, before the next is sent.
OnAccepted = Callable[[int, Result], None]


# Errors after which a retry may succeed (API down, rate limit, network, SMTP).
RETRYABLE = (AnymailError, smtplib.SMTPException, OSError)


def esp_supports_batch(connection) -> bool:
    """django-anymail backends send one API call with per-recipient merge data."""
    return isinstance(connection, AnymailBaseBackend)


def prepare_messages(
    *,
    edition: Edition,
    followed: list[list],
    recipients: list[Recipient],
    appeals_running: bool | None = None,
) -> list[tuple[RenderedEmail, list[Recipient]]]:
    """Render what `recipients` get, once per appeal among them, before any ESP call.

    The donations app picks each reader's appeal (a reader who gave recently sees none).
    """
    by_appeal: dict[object, tuple[object, list[Recipient]]] = {}
    # One look per batch (or pack) first: on a day without a newsletter appeal (most
    # days) this spares a lookup per reader. donations.selectors.appeal_for_newsletter
    # returns None whenever active_appeals(NEWSLETTER) is empty.
    ask = render._appeals_running() if appeals_running is None else appeals_running
    for recipient in recipients:
        appeal = render._appeal_for(recipient.subscriber.email) if ask else None
        appeal_key = getattr(appeal, "pk", id(appeal)) if appeal is not None else None
        by_appeal.setdefault(appeal_key, (appeal, []))[1].append(recipient)
    return [
        (render_edition_email(edition=edition, followed=followed, appeal=appeal), group)
        for appeal, group in by_appeal.values()
    ]


def send_messages(
    *,
    edition: Edition,
    prepared: list[tuple[RenderedEmail, list[Recipient]]],
    on_accepted: OnAccepted | None = None,
) -> SendReport:
    """Send prepared groups; report per-delivery results and the ESP error that stopped us.

    `on_accepted` hears of each message sent on its own (SMTP, or an ESP that refused
    the batch call) as soon as it is accepted, so that it can be recorded before the
    next one goes.
    """
    results: dict[int, Result] = {}
    connection = get_connection()
    try:
        connection.open()
        for rendered, group in prepared:
            if esp_supports_batch(connection):
                try:
                    results.update(_send_batch_call(connection, edition, rendered, group))
                    continue
                except (AnymailUnsupportedFeature, AnymailInvalidAddress) as exc:
                    # This ESP cannot take per-recipient headers in a batch, or one
                    # address broke the whole call: fall back to one message each.
                    logger.warning("digest: batch call refused (%s); sending one by one", exc)
                except AnymailRecipientsRefused as exc:
                    results.update({r.delivery_id: Result(False, error=str(exc)) for r in group})
                    continue
                except RETRYABLE as exc:
                    return SendReport(results, f"{type(exc).__name__}: {exc}", exc)
            exc = _send_one_by_one(connection, edition, rendered, group, results, on_accepted)
            if exc is not None:
                return SendReport(results, f"{type(exc).__name__}: {exc}", exc)
    finally:
        try:
            connection.close()
        except RETRYABLE:
            logger.warning("digest: closing the email connection failed", exc_info=True)
    return SendReport(results)


def edition_message(
    *,
    edition: Edition,
    rendered: RenderedEmail,
    to: list[str],
    headers: dict[str, str] | None = None,
    merge_data: dict[str, dict[str, str]] | None = None,
    merge_headers: dict[str, dict[str, str]] | None = None,
    merge_metadata: dict[str, dict[str, str]] | None = None,
) -> EmailMultiAlternatives:
    """An email of `edition`, labelled as every copy of it is: its list, ESP tags, metadata."""
    newsletter = edition.newsletter
    # anymail hands these to the ESP; its tracking webhooks bring them back, so each
    # delivered/opened/clicked/bounced event attaches to this edition.
    metadata = {"newsletter": newsletter.slug}
    if edition.pk is not None:
        metadata = {"edition_id": str(edition.pk), **metadata}
    return mail.message(
        rendered=rendered,
        to=to,
        headers=headers,
        tags=["digest", newsletter.slug],
        metadata=metadata,
        merge_data=merge_data,
        merge_headers=merge_headers,
        merge_metadata=merge_metadata,
        list_id=mail.list_id(name=newsletter.name, slug=newsletter.slug),
    )


def _send_batch_call(
    connection, edition: Edition, rendered: RenderedEmail, group: list[Recipient]
) -> dict[int, Result]:
    newsletter = edition.newsletter
    merge_data, merge_headers, merge_metadata = {}, {}, {}
    for recipient in group:
        subscriber = recipient.subscriber
        headers = reader_headers(subscriber=subscriber, newsletter=newsletter)
        merge_headers[subscriber.email] = headers
        merge_data[subscriber.email] = recipient_values(
            subscriber=subscriber, newsletter=newsletter, headers=headers
        )
        merge_metadata[subscriber.email] = {"delivery_id": str(recipient.delivery_id)}
    # merge_data makes anymail send one message per "to" address (batch send), with
    # merge_headers carrying each reader's own RFC 8058 List-Unsubscribe.
    message = edition_message(
        edition=edition,
        rendered=rendered,
        to=[r.subscriber.email for r in group],
        merge_data=merge_data,
        merge_headers=merge_headers,
        merge_metadata=merge_metadata,
    )
    connection.send_messages([message])
    statuses = message.anymail_status.recipients
    results: dict[int, Result] = {}
    for recipient in group:
        status = statuses.get(recipient.subscriber.email)
        if status is not None and status.status in REFUSED_STATUSES:
            results[recipient.delivery_id] = Result(False, error=f"ESP status: {status.status}")
        else:
            message_id = status.message_id if status is not None else None
            results[recipient.delivery_id] = Result(
                True, message_id="" if message_id is None else str(message_id)
            )
    return results


def _send_one_by_one(
    connection,
    edition: Edition,
    rendered: RenderedEmail,
    group: list[Recipient],
    results: dict[int, Result],
    on_accepted: OnAccepted | None,
) -> BaseException | None:
    newsletter = edition.newsletter
    domain = site_host()
    for recipient in group:
        subscriber = recipient.subscriber
        unsubscribe_headers = reader_headers(subscriber=subscriber, newsletter=newsletter)
        own = personal_copy(
            rendered=rendered,
            values=recipient_values(
                subscriber=subscriber, newsletter=newsletter, headers=unsubscribe_headers
            ),
        )
        message_id = make_msgid(idstring="digest", domain=domain)
        headers = {**unsubscribe_headers, "Message-ID": message_id}
        message = edition_message(
            edition=edition, rendered=own, to=[subscriber.email], headers=headers
        )
        try:
            connection.send_messages([message])
        except (
            AnymailInvalidAddress,
            AnymailRecipientsRefused,
            smtplib.SMTPRecipientsRefused,
        ) as exc:
            results[recipient.delivery_id] = Result(False, error=str(exc))
            continue
        except RETRYABLE as exc:
            return exc
        status = getattr(message, "anymail_status", None)
        esp_id = getattr(status, "message_id", None) if status is not None else None
        result = Result(True, message_id=message_id if esp_id is None else str(esp_id))
        results[recipient.delivery_id] = result
        if on_accepted is not None:
            on_accepted(recipient.delivery_id, result)
    return None
