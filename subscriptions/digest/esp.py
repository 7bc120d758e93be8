"""The digest's doorway to the email provider: a rendered batch in, each reader's result out.

Everything that depends on which ESP (or SMTP server) is configured lives here: the
ESP's profile (recognised from EMAIL_BACKEND) says how it writes a merge field, how many
messages one call may carry, how many tags a message takes, and which way a batch goes
cheapest. The batch's life (claim, record, retry, in doubt) lives in send.py.
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from email.utils import make_msgid

from anymail.backends.base import AnymailBaseBackend
from anymail.exceptions import (
    AnymailAPIError,
    AnymailError,
    AnymailInvalidAddress,
    AnymailRecipientsRefused,
    AnymailUnsupportedFeature,
)
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.utils.module_loading import import_string

from newsroom import mail
from newsroom.links import site_host
from newsroom.mail import RenderedEmail
from subscriptions.digest import render
from subscriptions.digest.render import (
    personal_copy,
    reader_headers_and_values,
    readers_headers_and_values,
    render_edition_email,
)
from subscriptions.models import Edition, Subscriber

logger = logging.getLogger(__name__)

# anymail's per-recipient statuses that mean "the ESP will not deliver this one".
REFUSED_STATUSES = {"rejected", "invalid", "failed"}


@dataclass(frozen=True, slots=True)
class Reader:
    """What a digest email needs of a subscriber: their address, the name and language of
    their greeting and links, and the public id their links are signed with. A batch's
    500 readers as these cost a tenth of what 500 Subscriber objects did (3.7 ms of a
    batch's CPU)."""

    pk: int
    email: str
    name: str
    public_id: uuid.UUID
    language: str


@dataclass
class Recipient:
    # The reader's copy in its batch (ledger.reader_key): the ESP gets it back in each
    # tracking event as metadata "delivery_id".
    delivery_id: str
    subscriber: Subscriber | Reader


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

    results: dict[str, Result]
    error: str = ""
    exception: BaseException | None = None


# Called with the messages accepted since its last call, (reader key, result) each, as
# soon as they are accepted: after each call of a batch that takes several, after each
# round of SMTP messages (those the server took while the last round was recorded).
OnAccepted = Callable[[list[tuple[str, Result]]], None]


# Errors after which a retry may succeed (API down, rate limit, network, SMTP).
RETRYABLE = (AnymailError, smtplib.SMTPException, OSError)

# How a batch goes to the ESP:
MERGE = "merge"  # one call, one shared body, the ESP fills in each reader's merge values
DISTINCT = "distinct"  # one call carrying each reader's whole message, filled in by us
TEMPLATE = "template"  # a stored template per rendered email, then calls with merge values
SINGLE = "single"  # one message per call (a backend we do not know)
KEPT_SMTP = "kept-smtp"  # Django's SMTP backend: one message per reader, connections kept


@dataclass(frozen=True)
class Profile:
    """What the digest must know of one ESP; the values are the ESP's documented limits."""

    name: str
    batch: str
    # Messages (one reader each) in one API call.
    per_call: int
    # Tags one message may carry; None: no limit we could reach.
    max_tags: int | None
    # How the ESP writes merge field FIELD in a shared body (MERGE and TEMPLATE only).
    merge_format: str = render.MERGE_FORMAT
    # Fixed parameters the ESP needs for that way of sending (anymail's esp_extra).
    esp_extra: dict = field(default_factory=dict)
    # The backend that sends a batch, where anymail's own is changed (esp_backends):
    # DISTINCT, each reader's body put in; Mailgun, its form sent as multipart.
    batch_backend: str = ""


# Keyed by anymail's backend class; a subclass of one is recognised as it.
PROFILES: dict[str, Profile] = {
    # /email/batch takes up to 500 messages, each its own body; one Tag per message;
    # merge_data only with a stored template, which would render per reader.
    # https://postmarkapp.com/developer/api/email-api#send-batch-emails
    "anymail.backends.postmark.EmailBackend": Profile(
        "Postmark",
        DISTINCT,
        per_call=500,
        max_tags=1,
        batch_backend="subscriptions.digest.esp_backends.PostmarkBatchBackend",
    ),
    # Batch sending: up to 1,000 recipients a call with recipient-variables, written
    # %recipient.name% anywhere in the message; up to 3 tags (o:tag).
    # https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/#batch-sending
    "anymail.backends.mailgun.EmailBackend": Profile(
        "Mailgun",
        MERGE,
        per_call=1000,
        max_tags=3,
        merge_format="%recipient.FIELD%",
        batch_backend="subscriptions.digest.esp_backends.MailgunMultipartBackend",
    ),
    # SendBulkEmail merges only into a stored template (anymail refuses merge_data and
    # merge_headers without one): 50 destinations a call; tags travel as X-Tag headers.
    # Triple braces: the values are ours, already escaped where HTML needs it.
    # https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendBulkEmail.html
    "anymail.backends.amazon_ses.EmailBackend": Profile(
        "Amazon SES", TEMPLATE, per_call=50, max_tags=None, merge_format="{{{FIELD}}}"
    ),
    # messageVersions: up to 1,000 per call, each with its own params ({{ params.x }}).
    # https://developers.brevo.com/docs/batch-send-transactional-emails
    "anymail.backends.brevo.EmailBackend": Profile(
        "Brevo", MERGE, per_call=1000, max_tags=None, merge_format="{{ params.FIELD }}"
    ),
    "anymail.backends.sendinblue.EmailBackend": Profile(
        "Brevo", MERGE, per_call=1000, max_tags=None, merge_format="{{ params.FIELD }}"
    ),
    # Send API v3.1: up to 50 messages a call, each with its own Variables, filled in by
    # the template language ({{var:x}}); one tag (CustomCampaign).
    # https://dev.mailjet.com/email/guides/send-api-v31/
    "anymail.backends.mailjet.EmailBackend": Profile(
        "Mailjet",
        MERGE,
        per_call=50,
        max_tags=1,
        merge_format="{{var:FIELD}}",
        esp_extra={"Globals": {"TemplateLanguage": True}},
    ),
    # A transmission's recipients each carry substitution_data and metadata; one
    # campaign_id. Triple braces: the values are ours, already escaped for HTML.
    # https://developers.sparkpost.com/api/transmissions/
    "anymail.backends.sparkpost.EmailBackend": Profile(
        "SparkPost", MERGE, per_call=1000, max_tags=1, merge_format="{{{FIELD}}}"
    ),
    # /emails/batch takes up to 100 emails, each its own body; no merge at all.
    # https://resend.com/docs/api-reference/emails/send-batch-emails
    "anymail.backends.resend.EmailBackend": Profile(
        "Resend",
        DISTINCT,
        per_call=100,
        max_tags=None,
        batch_backend="subscriptions.digest.esp_backends.ResendBatchBackend",
    ),
}
SMTP = Profile("SMTP", KEPT_SMTP, per_call=1, max_tags=0)
# Django's other backends (console, file, locmem) and any other: one message per call.
ONE_BY_ONE = Profile("one by one", SINGLE, per_call=1, max_tags=0)


def esp_profile(backend: str | None = None) -> Profile:
    """The profile of `backend` (a dotted path; settings.EMAIL_BACKEND by default).

    An anymail backend we have no profile for is sent the way anymail promises for all
    (one call with merge_data), in ESP_MERGE_FIELD_FORMAT; anything else, one by one.
    ESP_MERGE_FIELD_FORMAT, when set, overrides a merging ESP's own syntax.
    """
    backend_class = import_string(backend or settings.EMAIL_BACKEND)
    override = settings.ESP_MERGE_FIELD_FORMAT
    for cls in backend_class.__mro__:
        profile = PROFILES.get(f"{cls.__module__}.{cls.__name__}")
        if profile is not None:
            if override and profile.batch == MERGE:
                return replace(profile, merge_format=override)
            return profile
    if issubclass(backend_class, AnymailBaseBackend):
        return Profile(
            backend_class.__name__,
            MERGE,
            per_call=settings.ESP_BATCH_SIZE,
            max_tags=None,
            merge_format=override or render.MERGE_FORMAT,
        )
    if issubclass(backend_class, SmtpBackend):
        return SMTP
    return ONE_BY_ONE


def mixes_followed_sets(profile: Profile | None = None) -> bool:
    """Whether one call may carry readers of several followed sets: an ESP taking each
    reader's whole message in one call, as Postmark's and Resend's batch calls do.

    An ESP merging into one shared body (or a stored template), and SMTP, take one
    rendering per call; the planner gives them one followed set per batch.
    """
    return (profile or esp_profile()).batch == DISTINCT


def prepare_messages(
    *,
    edition: Edition,
    followed: list[list],
    recipients: list[Recipient],
    appeals_running: bool | None = None,
) -> list[tuple[RenderedEmail, list[Recipient]]]:
    """Render what `recipients` get, once per appeal among them, before any ESP call.

    The donations app picks each reader's appeal (a reader who gave recently sees none).
    Merge fields are written the way the configured ESP fills them in.
    """
    merge_format = esp_profile().merge_format
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
        (
            render_edition_email(
                edition=edition, followed=followed, appeal=appeal, merge_format=merge_format
            ),
            group,
        )
        for appeal, group in by_appeal.values()
    ]


def send_messages(
    *,
    edition: Edition,
    prepared: list[tuple[RenderedEmail, list[Recipient]]],
    on_accepted: OnAccepted | None = None,
) -> SendReport:
    """Send prepared groups; report per-delivery results and the ESP error that stopped us.

    Each group goes in calls of at most the ESP's messages per call. `on_accepted` hears
    of the messages accepted as soon as their call is, before the next call goes,
    whenever a batch takes more than one call (SMTP: one per message, heard in rounds,
    esp_smtp.send), so that they can be recorded; a batch sent in one call is recorded
    from the report.
    """
    profile = esp_profile()
    results: dict[str, Result] = {}
    if profile.batch == KEPT_SMTP:
        from subscriptions.digest import esp_smtp  # it builds on this module's messages

        return esp_smtp.send(
            edition=edition, calls=prepared, results=results, on_accepted=on_accepted
        )
    calls = _calls(profile, prepared)
    # One call is recorded from the report; more, each as it is accepted.
    hear = on_accepted if len(calls) > 1 else None
    connection = get_connection(profile.batch_backend or None)
    try:
        connection.open()
        for parts in calls:
            if profile.batch == SINGLE:
                exc = _send_one_by_one(connection, edition, parts, results, on_accepted)
                if exc is not None:
                    return SendReport(results, f"{type(exc).__name__}: {exc}", exc)
                continue
            try:
                sent = _send_batch_call(connection, profile, edition, parts)
            except AnymailRecipientsRefused as exc:
                sent = {
                    r.delivery_id: Result(False, error=str(exc))
                    for _, group in parts
                    for r in group
                }
            except (AnymailUnsupportedFeature, AnymailInvalidAddress) as exc:
                # One address broke the whole call (or a backend we do not know refused
                # per-reader headers): one message each, so only that reader fails.
                logger.warning("digest: batch call refused (%s); sending one by one", exc)
                exc = _send_one_by_one(connection, edition, parts, results, on_accepted)
                if exc is not None:
                    return SendReport(results, f"{type(exc).__name__}: {exc}", exc)
                continue
            except RETRYABLE as exc:
                return SendReport(results, f"{type(exc).__name__}: {exc}", exc)
            results.update(sent)
            accepted = [(delivery_id, result) for delivery_id, result in sent.items() if result.ok]
            if hear is not None and accepted:
                hear(accepted)
    finally:
        try:
            connection.close()
        except RETRYABLE:
            logger.warning("digest: closing the email connection failed", exc_info=True)
    return SendReport(results)


# One ESP call: each rendering with the readers it goes to in that call.
Call = list[tuple[RenderedEmail, list[Recipient]]]


def _calls(profile: Profile, prepared: list[tuple[RenderedEmail, list[Recipient]]]) -> list[Call]:
    """The calls a batch takes, each of at most the ESP's messages per call.

    A call carries one rendering, except where each message carries its own body
    (mixes_followed_sets): there the readers of several renderings fill one call.
    """
    size = profile.per_call
    if not mixes_followed_sets(profile):
        return [
            [(rendered, group[start : start + size])]
            for rendered, group in prepared
            for start in range(0, len(group), size)
        ]
    calls: list[Call] = []
    call: Call = []
    room = size
    for rendered, group in prepared:
        start = 0
        while start < len(group):
            part = group[start : start + room]
            call.append((rendered, part))
            start += len(part)
            room -= len(part)
            if not room:
                calls.append(call)
                call, room = [], size
    if call:
        calls.append(call)
    return calls


def edition_tags(*, edition: Edition, max_tags: int | None) -> list[str]:
    """The ESP's tags for an edition, no more than the ESP takes (the newsletter's first)."""
    tags = ["digest", edition.newsletter.slug]
    if max_tags is None or len(tags) <= max_tags:
        return tags
    return tags[len(tags) - max_tags :]


def edition_message(
    *,
    edition: Edition,
    rendered: RenderedEmail,
    to: list[str],
    headers: dict[str, str] | None = None,
    merge_data: dict[str, dict[str, str]] | None = None,
    merge_headers: dict[str, dict[str, str]] | None = None,
    merge_metadata: dict[str, dict[str, str]] | None = None,
    profile: Profile | None = None,
) -> EmailMultiAlternatives:
    """An email of `edition`, labelled as every copy of it is: its list, ESP tags, metadata."""
    newsletter = edition.newsletter
    profile = profile or esp_profile()
    # anymail hands these to the ESP; its tracking webhooks bring them back, so each
    # delivered/opened/clicked/bounced event attaches to this edition.
    metadata = {"newsletter": newsletter.slug}
    if edition.pk is not None:
        metadata = {"edition_id": str(edition.pk), **metadata}
    message = mail.message(
        rendered=rendered,
        to=to,
        headers=headers,
        tags=edition_tags(edition=edition, max_tags=profile.max_tags),
        metadata=metadata,
        merge_data=merge_data,
        merge_headers=merge_headers,
        merge_metadata=merge_metadata,
        list_id=mail.list_id(name=newsletter.name, slug=newsletter.slug),
    )
    if profile.esp_extra:
        message.esp_extra = profile.esp_extra
    return message


def _each_reader(parts: Call) -> Iterator[tuple[RenderedEmail, Recipient]]:
    for rendered, readers in parts:
        for recipient in readers:
            yield rendered, recipient


def _send_batch_call(
    connection, profile: Profile, edition: Edition, parts: Call
) -> dict[str, Result]:
    """One ESP call: each reader one message, with their own links and headers.

    Several renderings (`parts`) share a call only where each message carries its own
    body (_calls); the message's shared subject and body are the first rendering's.
    """
    newsletter = edition.newsletter
    rendered = parts[0][0]
    group = [recipient for _, readers in parts for recipient in readers]
    merge_data, merge_headers, merge_metadata = {}, {}, {}
    reader_values, reader_templates = {}, {}
    readers = list(_each_reader(parts))
    for (own_rendering, recipient), (headers, values) in zip(
        readers,
        readers_headers_and_values([r.subscriber for _, r in readers], newsletter=newsletter),
        strict=True,
    ):
        subscriber = recipient.subscriber
        merge_headers[subscriber.email] = headers
        # The delivery's id comes back with each tracking event (subscriptions.webhooks).
        merge_metadata[subscriber.email] = {"delivery_id": str(recipient.delivery_id)}
        if profile.batch == DISTINCT:
            reader_values[subscriber.email] = values
            reader_templates[subscriber.email] = own_rendering
        else:
            merge_data[subscriber.email] = values
    # merge_metadata makes anymail send one message per "to" address (a batch send),
    # merge_headers carrying each reader's own RFC 8058 List-Unsubscribe.
    message = edition_message(
        edition=edition,
        rendered=rendered,
        to=[r.subscriber.email for r in group],
        merge_data=merge_data or None,
        merge_headers=merge_headers,
        merge_metadata=merge_metadata,
        profile=profile,
    )
    if profile.batch == DISTINCT:
        # Read by esp_backends' batch payloads, which fill in each reader's copy.
        message.reader_values = reader_values
        message.reader_templates = reader_templates
    elif profile.batch == TEMPLATE:
        _as_stored_template(connection, message, rendered)
    connection.send_messages([message])
    statuses = message.anymail_status.recipients
    results: dict[str, Result] = {}
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


def _as_stored_template(connection, message: EmailMultiAlternatives, rendered: RenderedEmail):
    """Make `message` a send of `rendered` stored as an Amazon SES template.

    SES merges per reader only into a stored template. It is named for its content, so a
    retry, another worker or the next batch of the same followed set finds it made;
    creating it is one call per rendered email, against 20 per 1,000 readers saved.
    """
    from botocore.exceptions import ClientError

    digest = hashlib.sha256(
        "\0".join((rendered.subject, rendered.text, rendered.html)).encode()
    ).hexdigest()
    name = f"digest-{digest[:48]}"
    if name not in _SES_TEMPLATES:
        try:
            connection.client.create_email_template(
                TemplateName=name,
                TemplateContent={
                    "Subject": rendered.subject,
                    "Text": rendered.text,
                    "Html": rendered.html,
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "AlreadyExistsException":
                raise AnymailAPIError(f"Amazon SES refused the template: {exc}") from exc
        _SES_TEMPLATES.add(name)
    # A template's send carries no subject or body of its own (anymail refuses them).
    message.subject = ""
    message.body = ""
    message.alternatives = []
    message.template_id = name


# Templates this process made or found made, by name (their names are their content).
_SES_TEMPLATES: set[str] = set()


def _send_one_by_one(
    connection,
    edition: Edition,
    parts: Call,
    results: dict[str, Result],
    on_accepted: OnAccepted | None,
) -> BaseException | None:
    newsletter = edition.newsletter
    domain = site_host()
    profile = esp_profile()
    for rendered, recipient in _each_reader(parts):
        subscriber = recipient.subscriber
        unsubscribe_headers, values = reader_headers_and_values(
            subscriber=subscriber, newsletter=newsletter
        )
        own = personal_copy(rendered=rendered, values=values, merge_format=profile.merge_format)
        message_id = make_msgid(idstring="digest", domain=domain)
        headers = {**unsubscribe_headers, "Message-ID": message_id}
        message = edition_message(
            edition=edition, rendered=own, to=[subscriber.email], headers=headers, profile=profile
        )
        if profile.batch != SINGLE:
            # For the ESP's tracking webhook, as in a batch call.
            message.metadata = {**message.metadata, "delivery_id": str(recipient.delivery_id)}
            message.esp_extra = {}
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
            on_accepted([(recipient.delivery_id, result)])
    return None
