"""The digest through anymail's real Brevo, Mailjet, SparkPost, Resend and Amazon SES backends,
and Django's SMTP backend, the network cut beneath each.

Each ESP's merge is done here as that ESP documents it, to see what each reader receives.
"""

from __future__ import annotations

import json
import re
import uuid

import boto3
import pytest
import responses
from botocore.stub import ANY, Stubber

from subscriptions.digest.ledger import reader_key
from subscriptions.models import Delivery
from tests.subscriptions.digest.helpers import plan_and_send, states, subscribe
from tests.subscriptions.digest.providers import (
    assert_each_reader_got_their_own,
    events_of,
    post_webhook,
    use_esp,
)
from tests.subscriptions.digest.smtp_stand_in import SMTPStandIn


@pytest.fixture
def readers(newsletter, headlines):
    return [subscribe(newsletter, name=f"Reader {n}") for n in range(3)]


def fill(text: str, pattern: str, values: dict) -> str:
    return re.sub(pattern, lambda m: str(values.get(m.group(1), m.group(0))), text)


def sent_bodies(mocked) -> list:
    return [json.loads(call.request.body) for call in mocked.calls]


# --- Brevo ------------------------------------------------------------------------

BREVO_SEND = "https://api.brevo.com/v3/smtp/email"


@pytest.fixture
def brevo(settings):
    use_esp(settings, "anymail.backends.brevo.EmailBackend", BREVO_API_KEY="key")
    with responses.RequestsMock() as mocked:

        def accept(request):
            versions = json.loads(request.body)["messageVersions"]
            ids = [f"<{uuid.uuid4().hex}@smtp-relay.mailin.fr>" for _ in versions]
            return 201, {}, json.dumps({"messageIds": ids})

        mocked.add_callback(responses.POST, BREVO_SEND, callback=accept)
        yield mocked


def brevo_received(body: dict) -> list[dict]:
    """messageVersions as Brevo sends them: {{ params.x }} from each version's params."""
    received = []
    for version in body["messageVersions"]:
        params = version.get("params", {})

        def merge(text: str, params=params) -> str:
            return fill(text, r"\{\{\s*params\.(\w+)\s*\}\}", params)

        headers = {**body.get("headers", {}), **version.get("headers", {})}
        received.append(
            {
                "to": version["to"][0]["email"],
                "subject": merge(body["subject"]),
                "text": merge(body["textContent"]),
                "html": merge(body["htmlContent"]),
                "headers": headers,
                "metadata": json.loads(headers["X-Mailin-custom"]),
            }
        )
    return received


def test_brevo_sends_each_reader_their_own_version_in_one_call(
    brevo, readers, newsletter, django_capture_on_commit_callbacks
):
    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    (body,) = sent_bodies(brevo)
    assert "{{ params.unsubscribe_url }}" in body["textContent"]
    assert body["tags"] == ["digest", newsletter.slug]
    assert_each_reader_got_their_own(brevo_received(body), readers, newsletter)


def test_a_brevo_delivery_and_hard_bounce_find_the_readers_delivery(
    brevo, readers, django_capture_on_commit_callbacks
):
    plan_and_send(django_capture_on_commit_callbacks, send_now=True)
    first, second = sorted(brevo_received(sent_bodies(brevo)[0]), key=lambda m: m["to"])[:2]

    # Brevo's transactional webhook body (Brevo docs, "Transactional webhooks").
    for event, message in (("delivered", first), ("hard_bounce", second)):
        body = {
            "event": event,
            "email": message["to"],
            "id": 1,
            "message-id": "<1@smtp-relay.mailin.fr>",
            "ts_epoch": 1764482400000,
            "tags": ["digest"],
            "X-Mailin-custom": message["headers"]["X-Mailin-custom"],
        }
        assert post_webhook("brevo", json.dumps(body)).status_code == 200

    assert events_of(first["to"]) == ["delivered"]
    assert events_of(second["to"]) == ["bounced"]


# --- Mailjet ----------------------------------------------------------------------

MAILJET_SEND = "https://api.mailjet.com/v3.1/send"


@pytest.fixture
def mailjet(settings):
    use_esp(
        settings,
        "anymail.backends.mailjet.EmailBackend",
        MAILJET_API_KEY="key",
        MAILJET_SECRET_KEY="secret",
    )
    with responses.RequestsMock() as mocked:

        def accept(request):
            messages = json.loads(request.body)["Messages"]
            answer = {
                "Messages": [
                    {
                        "Status": "success",
                        "To": [
                            {
                                "Email": m["To"][0]["Email"],
                                "MessageUUID": str(uuid.uuid4()),
                                "MessageID": 576460752303423000 + n,
                                "MessageHref": "https://api.mailjet.com/v3/message/1",
                            }
                        ],
                    }
                    for n, m in enumerate(messages)
                ]
            }
            return 200, {}, json.dumps(answer)

        mocked.add_callback(responses.POST, MAILJET_SEND, callback=accept)
        yield mocked


def mailjet_received(body: dict) -> list[dict]:
    """Messages as Mailjet's template language fills them: {{var:x}} from Variables."""
    shared = body["Globals"]
    received = []
    for message in body["Messages"]:
        variables = message.get("Variables", {})

        def merge(text: str, variables=variables) -> str:
            return fill(text, r"\{\{var:(\w+)\}\}", variables)

        received.append(
            {
                "to": message["To"][0]["Email"],
                "subject": merge(shared["Subject"]),
                "text": merge(shared["TextPart"]),
                "html": merge(shared["HTMLPart"]),
                "headers": {**shared.get("Headers", {}), **message.get("Headers", {})},
                "metadata": json.loads(message["EventPayload"]),
                "tag": shared["CustomCampaign"],
            }
        )
    return received


def test_mailjet_merges_each_readers_links_with_its_template_language(
    mailjet, readers, newsletter, django_capture_on_commit_callbacks
):
    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    (body,) = sent_bodies(mailjet)
    assert body["Globals"]["TemplateLanguage"] is True
    assert body["Globals"]["CustomCampaign"] == newsletter.slug  # one tag
    assert_each_reader_got_their_own(mailjet_received(body), readers, newsletter)


def test_mailjet_takes_at_most_50_messages_a_call(
    mailjet, newsletter, headlines, django_capture_on_commit_callbacks
):
    for _ in range(120):
        subscribe(newsletter)

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    assert [len(body["Messages"]) for body in sent_bodies(mailjet)] == [50, 50, 20]
    assert states()[Delivery.State.SENT] == 120


def test_a_mailjet_open_and_spam_report_find_the_readers_delivery(
    mailjet, readers, django_capture_on_commit_callbacks
):
    plan_and_send(django_capture_on_commit_callbacks, send_now=True)
    first, second = sorted(mailjet_received(sent_bodies(mailjet)[0]), key=lambda m: m["to"])[:2]

    # Mailjet's event API body (Mailjet docs, "Event API: open, spam").
    events = [
        {
            "event": event,
            "time": 1764482400,
            "MessageID": 576460752303423000,
            "Message_GUID": str(uuid.uuid4()),
            "email": message["to"],
            "customcampaign": message["tag"],
            "Payload": json.dumps(message["metadata"]),
        }
        for event, message in (("sent", first), ("open", first), ("spam", second))
    ]
    assert post_webhook("mailjet", json.dumps(events)).status_code == 200

    assert events_of(first["to"]) == ["delivered", "opened"]
    assert events_of(second["to"]) == ["complained"]


# --- SparkPost --------------------------------------------------------------------

SPARKPOST_SEND = "https://api.sparkpost.com/api/v1/transmissions/"


@pytest.fixture
def sparkpost(settings):
    use_esp(settings, "anymail.backends.sparkpost.EmailBackend", SPARKPOST_API_KEY="key")
    with responses.RequestsMock() as mocked:

        def accept(request):
            count = len(json.loads(request.body)["recipients"])
            results = {
                "total_rejected_recipients": 0,
                "total_accepted_recipients": count,
                "id": "11668787484950529",
            }
            return 200, {}, json.dumps({"results": results})

        mocked.add_callback(responses.POST, SPARKPOST_SEND, callback=accept)
        yield mocked


def sparkpost_received(body: dict) -> list[dict]:
    """Recipients as SparkPost substitutes them: {{x}} and {{{x}}} from substitution_data."""
    content = body["content"]
    received = []
    for recipient in body["recipients"]:
        values = {**body.get("substitution_data", {}), **recipient.get("substitution_data", {})}

        def merge(text: str, values=values) -> str:
            return fill(text, r"\{\{\{?(\w+)\}?\}\}", values)

        received.append(
            {
                "to": recipient["address"]["email"],
                "subject": merge(content["subject"]),
                "text": merge(content["text"]),
                "html": merge(content["html"]),
                "headers": {k: merge(v) for k, v in content.get("headers", {}).items()},
                "metadata": {**body.get("metadata", {}), **recipient.get("metadata", {})},
            }
        )
    return received


def test_sparkpost_substitutes_each_readers_links_in_one_transmission(
    sparkpost, readers, newsletter, django_capture_on_commit_callbacks
):
    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    (body,) = sent_bodies(sparkpost)
    assert body["campaign_id"] == newsletter.slug  # one tag
    assert_each_reader_got_their_own(sparkpost_received(body), readers, newsletter)


def test_a_sparkpost_delivery_and_bounce_find_the_readers_delivery(
    sparkpost, readers, django_capture_on_commit_callbacks
):
    plan_and_send(django_capture_on_commit_callbacks, send_now=True)
    first, second = sorted(sparkpost_received(sent_bodies(sparkpost)[0]), key=lambda m: m["to"])[:2]

    # SparkPost's webhook batch (SparkPost docs, "Webhook event types").
    events = [
        {
            "msys": {
                "message_event": {
                    "type": kind,
                    "event_id": str(uuid.uuid4().int)[:17],
                    "timestamp": "1764482400",
                    "transmission_id": "11668787484950529",
                    "rcpt_to": message["to"],
                    "raw_rcpt_to": message["to"],
                    "rcpt_meta": message["metadata"],
                    **extra,
                }
            }
        }
        for kind, message, extra in (
            ("delivery", first, {}),
            ("bounce", second, {"bounce_class": "10", "raw_reason": "550 5.1.1 unknown"}),
        )
    ]
    assert post_webhook("sparkpost", json.dumps(events)).status_code == 200

    assert events_of(first["to"]) == ["delivered"]
    assert events_of(second["to"]) == ["bounced"]


# --- Resend -----------------------------------------------------------------------

RESEND_BATCH = "https://api.resend.com/emails/batch"


@pytest.fixture
def resend(settings):
    use_esp(settings, "anymail.backends.resend.EmailBackend", RESEND_API_KEY="key")
    with responses.RequestsMock() as mocked:

        def accept(request):
            ids = [{"id": str(uuid.uuid4())} for _ in json.loads(request.body)]
            return 200, {}, json.dumps({"data": ids})

        mocked.add_callback(responses.POST, RESEND_BATCH, callback=accept)
        yield mocked


def resend_received(bodies: list) -> list[dict]:
    return [
        {
            "to": email["to"][0],
            "subject": email["subject"],
            "text": email["text"],
            "html": email["html"],
            "headers": email["headers"],
            "metadata": json.loads(email["headers"]["X-Metadata"]),
        }
        for body in bodies
        for email in body
    ]


def test_resend_gets_each_readers_own_email_in_one_batch_call(
    resend, readers, newsletter, django_capture_on_commit_callbacks
):
    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    assert len(resend.calls) == 1
    assert_each_reader_got_their_own(resend_received(sent_bodies(resend)), readers, newsletter)


def test_resend_takes_at_most_100_emails_a_call(
    resend, newsletter, headlines, django_capture_on_commit_callbacks
):
    for _ in range(230):
        subscribe(newsletter)

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    # Batches of 500 readers (ESP_BATCH_SIZE) go in calls of 100.
    assert [len(body) for body in sent_bodies(resend)] == [100, 100, 30]
    assert states()[Delivery.State.SENT] == 230


def test_a_resend_delivery_and_complaint_find_the_readers_delivery(
    resend, readers, django_capture_on_commit_callbacks
):
    plan_and_send(django_capture_on_commit_callbacks, send_now=True)
    first, second = sorted(resend_received(sent_bodies(resend)), key=lambda m: m["to"])[:2]

    # Resend's webhook body (Resend docs, "Webhooks: event types"), with the headers sent.
    for kind, message in (("email.delivered", first), ("email.complained", second)):
        body = {
            "type": kind,
            "created_at": "2026-11-30T06:00:00.000Z",
            "data": {
                "email_id": str(uuid.uuid4()),
                "to": [message["to"]],
                "subject": message["subject"],
                "headers": [
                    {"name": name, "value": value} for name, value in message["headers"].items()
                ],
            },
        }
        response = post_webhook("resend", json.dumps(body), HTTP_SVIX_ID=str(uuid.uuid4()))
        assert response.status_code == 200

    assert events_of(first["to"]) == ["delivered"]
    assert events_of(second["to"]) == ["complained"]


# --- Amazon SES (v2) --------------------------------------------------------------


@pytest.fixture
def ses(settings, monkeypatch):
    """anymail's SES backend on a real boto3 client whose calls botocore's Stubber answers."""
    use_esp(settings, "anymail.backends.amazon_ses.EmailBackend")
    client = boto3.session.Session().client(
        "sesv2",
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    calls: list[tuple[str, dict]] = []
    client.meta.events.register(
        "before-parameter-build.sesv2",
        lambda params, model, **kwargs: calls.append((model.name, params)),
    )
    stubber = Stubber(client)
    monkeypatch.setattr(boto3.session.Session, "client", lambda self, *a, **k: client)
    monkeypatch.setattr(client, "close", lambda: None)
    with stubber:
        yield stubber, calls


def ses_expect(stubber, *, template: bool = True, sends: tuple[int, ...]) -> None:
    if template:
        stubber.add_response(
            "create_email_template", {}, {"TemplateName": ANY, "TemplateContent": ANY}
        )
    for count in sends:
        results = [{"Status": "SUCCESS", "MessageId": uuid.uuid4().hex} for _ in range(count)]
        stubber.add_response("send_bulk_email", {"BulkEmailEntryResults": results})


def ses_received(calls: list[tuple[str, dict]]) -> list[dict]:
    """Bulk entries as SES renders its stored template: {{{x}}} from ReplacementTemplateData."""
    templates = {
        params["TemplateName"]: params["TemplateContent"]
        for name, params in calls
        if name == "CreateEmailTemplate"
    }
    received = []
    for name, params in calls:
        if name != "SendBulkEmail":
            continue
        template = templates[params["DefaultContent"]["Template"]["TemplateName"]]
        for entry in params["BulkEmailEntries"]:
            data = json.loads(
                entry["ReplacementEmailContent"]["ReplacementTemplate"]["ReplacementTemplateData"]
            )

            def merge(text: str, data=data) -> str:
                return fill(text, r"\{\{\{(\w+)\}\}\}", data)

            headers = {h["Name"]: h["Value"] for h in entry["ReplacementHeaders"]}
            received.append(
                {
                    "to": entry["Destination"]["ToAddresses"][0],
                    "subject": merge(template["Subject"]),
                    "text": merge(template["Text"]),
                    "html": merge(template["Html"]),
                    "headers": headers,
                    "metadata": json.loads(headers["X-Metadata"]),
                }
            )
    return received


def test_amazon_ses_sends_bulk_through_a_template_stored_once_per_rendering(
    ses, readers, newsletter, django_capture_on_commit_callbacks
):
    stubber, calls = ses
    ses_expect(stubber, sends=(3,))

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    assert [name for name, _ in calls] == ["CreateEmailTemplate", "SendBulkEmail"]
    assert_each_reader_got_their_own(ses_received(calls), readers, newsletter)
    stubber.assert_no_pending_responses()


def test_amazon_ses_takes_at_most_50_destinations_a_call(
    ses, newsletter, headlines, django_capture_on_commit_callbacks
):
    stubber, calls = ses
    for _ in range(120):
        subscribe(newsletter)
    ses_expect(stubber, sends=(50, 50, 20))

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    sizes = [len(p["BulkEmailEntries"]) for name, p in calls if name == "SendBulkEmail"]
    assert sizes == [50, 50, 20]
    assert states()[Delivery.State.SENT] == 120


def ses_notification(event_type: str, message: dict, **event) -> tuple[str, str]:
    """An SNS notification of an SES event (SES docs, "Event publishing: contents")."""
    ses_event = {
        "eventType": event_type,
        "mail": {
            "timestamp": "2026-11-30T06:00:00.000Z",
            "messageId": uuid.uuid4().hex,
            "destination": [message["to"]],
            "headers": [{"name": n, "value": v} for n, v in message["headers"].items()],
        },
        **event,
    }
    sns_id = str(uuid.uuid4())
    body = {
        "Type": "Notification",
        "MessageId": sns_id,
        "TopicArn": "arn:aws:sns:eu-west-1:111122223333:ses-events",
        "Message": json.dumps(ses_event),
        "Timestamp": "2026-11-30T06:00:01.000Z",
    }
    return json.dumps(body), sns_id


def test_an_amazon_ses_delivery_and_bounce_find_the_readers_delivery(
    ses, readers, django_capture_on_commit_callbacks
):
    stubber, calls = ses
    ses_expect(stubber, sends=(3,))
    plan_and_send(django_capture_on_commit_callbacks, send_now=True)
    first, second = sorted(ses_received(calls), key=lambda m: m["to"])[:2]

    for kind, message, event in (
        ("Delivery", first, {"delivery": {"recipients": [first["to"]]}}),
        (
            "Bounce",
            second,
            {
                "bounce": {
                    "bounceType": "Permanent",
                    "bounceSubType": "General",
                    "bouncedRecipients": [{"emailAddress": second["to"]}],
                }
            },
        ),
    ):
        body, sns_id = ses_notification(kind, message, **event)
        response = post_webhook(
            "amazon_ses",
            body,
            content_type="text/plain",
            HTTP_X_AMZ_SNS_MESSAGE_TYPE="Notification",
            HTTP_X_AMZ_SNS_MESSAGE_ID=sns_id,
        )
        assert response.status_code == 200

    assert events_of(first["to"]) == ["delivered"]
    assert events_of(second["to"]) == ["bounced"]


# --- SMTP -------------------------------------------------------------------------


@pytest.fixture
def smtp(settings):
    server = SMTPStandIn()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_USE_TLS = False
    yield server
    server.stop()


def test_smtp_gives_each_reader_their_own_message(
    smtp, readers, newsletter, django_capture_on_commit_callbacks
):
    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    received = []
    for envelope, message in smtp.messages:
        assert len(envelope) == 1
        # SMTP takes one message per call: each reader's copy has its own row.
        delivery = Delivery.objects.get(subscriber__email=envelope[0])
        received.append(
            {
                "to": envelope[0],
                "subject": str(message["Subject"]),
                "text": message.get_body(("plain",)).get_content(),
                "html": message.get_body(("html",)).get_content(),
                "headers": {k: str(v) for k, v in message.items()},
                # SMTP carries no metadata: the delivery is found by its Message-ID.
                "metadata": {"delivery_id": reader_key(delivery.batch_id, delivery.subscriber_id)},
            }
        )
        assert delivery.esp_message_id == str(message["Message-ID"])
    assert_each_reader_got_their_own(received, readers, newsletter)
