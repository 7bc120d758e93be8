"""The digest over SMTP, against a local server: connections kept between batches, several
messages in flight, a connection the server closed reopened, each reader's message whole
and sent once, connections closed when the worker process stops."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default

import pytest
import time_machine
from celery.signals import worker_process_shutdown

from newsroom.mail import RenderedEmail
from subscriptions.digest import render
from subscriptions.digest.esp import edition_message
from subscriptions.digest.esp_smtp import GroupMessage
from subscriptions.digest.send import edition_send_batch
from subscriptions.digest.staff import batch_resend
from subscriptions.models import Delivery, DeliveryBatch
from tests.subscriptions.digest.helpers import fates, plan_only, send_all, states, subscribe
from tests.subscriptions.digest.smtp_server import SmtpServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def server_for(settings):
    """Point the SMTP backend at a server the test configures itself."""
    servers: list[SmtpServer] = []

    def serve(server: SmtpServer) -> SmtpServer:
        servers.append(server.__enter__())
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        settings.EMAIL_TIMEOUT = 5
        return server

    yield serve
    for server in servers:
        server.__exit__(None, None, None)


@pytest.fixture(params=[True, False], ids=["pipelining", "no pipelining"])
def smtp(server_for, request):
    """A local SMTP server, offering PIPELINING (RFC 2920) or not."""

    def serve(**kwargs) -> SmtpServer:
        return server_for(SmtpServer(**{"pipelining": request.param, **kwargs}))

    return serve


def test_one_connection_carries_batch_after_batch(newsletter, headlines, smtp, settings):
    settings.SMTP_CONNECTIONS, settings.ESP_BATCH_SIZE = 1, 2
    readers = [subscribe(newsletter) for _ in range(4)]
    server = smtp()
    [result] = plan_only(send_now=True)

    send_all(result.edition)

    assert result.edition.batches.count() == 2
    assert server.connections == 1
    assert Counter(server.recipients()) == {r.email: 1 for r in readers}
    assert states(result.edition) == {Delivery.State.SENT: 4}


@pytest.mark.parametrize("reply_421", [True, False], ids=["421 then closed", "closed"])
def test_a_connection_the_server_closed_between_batches_is_reopened_and_nobody_gets_two(
    newsletter, headlines, smtp, settings, reply_421
):
    settings.SMTP_CONNECTIONS, settings.ESP_BATCH_SIZE = 1, 2
    readers = [subscribe(newsletter) for _ in range(4)]
    server = smtp()
    [result] = plan_only(send_now=True)
    first, second = result.edition.batches.order_by("pk")

    edition_send_batch(batch_id=first.pk, task_id="task-1")
    server.hang_up(reply_421=reply_421)  # an idle timeout while the worker waits
    edition_send_batch(batch_id=second.pk, task_id="task-2")

    assert server.connections == 2
    assert server.failed == []
    assert Counter(server.recipients()) == {r.email: 1 for r in readers}
    assert states(result.edition) == {Delivery.State.SENT: 4}
    assert set(result.edition.batches.values_list("state", flat=True)) == {"sent"}


def test_with_pipelining_the_server_never_waits_for_the_client_between_messages(
    newsletter, headlines, server_for, settings
):
    settings.SMTP_CONNECTIONS = 1
    readers = [subscribe(newsletter) for _ in range(5)]
    # The server holds each answer until the client has sent more: a client that waited
    # for an answer before its next command would stall it every time.
    server = server_for(SmtpServer(pipelining=True, hold=0.3))
    [result] = plan_only(send_now=True)

    send_all(result.edition)

    assert server.stalls == 1  # the last message's end: nothing follows it
    assert Counter(server.recipients()) == {r.email: 1 for r in readers}
    assert states(result.edition) == {Delivery.State.SENT: 5}


def test_a_server_without_pipelining_gets_one_command_at_a_time(
    newsletter, headlines, server_for, settings
):
    settings.SMTP_CONNECTIONS, settings.ESP_BATCH_SIZE = 2, 2
    readers = [subscribe(newsletter) for _ in range(5)]
    server = server_for(SmtpServer(pipelining=False))
    [result] = plan_only(send_now=True)

    send_all(result.edition)

    assert server.sent_ahead == 0
    assert Counter(server.recipients()) == {r.email: 1 for r in readers}
    assert states(result.edition) == {Delivery.State.SENT: 5}


def test_a_refused_recipient_gets_nothing_and_the_others_one_each(
    newsletter, headlines, smtp, settings
):
    settings.SMTP_CONNECTIONS = 1
    first, refused, last = [subscribe(newsletter) for _ in range(3)]
    server = smtp(refuse=(refused.email,))
    [result] = plan_only(send_now=True)

    send_all(result.edition)

    assert Counter(server.recipients()) == {first.email: 1, last.email: 1}
    sent = {pk for (_, pk), f in fates(result.edition).items() if f.state == Delivery.State.SENT}
    assert sent == {first.pk, last.pk}


def test_a_batch_goes_over_several_connections_at_once(newsletter, headlines, smtp, settings):
    settings.SMTP_CONNECTIONS = 3
    readers = [subscribe(newsletter) for _ in range(6)]
    server = smtp(data_delay=0.2)
    [result] = plan_only(send_now=True)

    send_all(result.edition)

    assert server.connections == 3
    assert server.most_in_data == 3
    assert Counter(server.recipients()) == {r.email: 1 for r in readers}
    assert states(result.edition) == {Delivery.State.SENT: 6}


def test_a_hang_up_with_messages_in_flight_leaves_only_the_unrecorded_in_doubt(
    newsletter, headlines, smtp, settings, django_capture_on_commit_callbacks
):
    settings.SMTP_CONNECTIONS = 3
    readers = [subscribe(newsletter) for _ in range(9)]
    server = smtp(fail_message=2, failure="disconnect", data_delay=0.05)
    [result] = plan_only(send_now=True)

    send_all(result.edition)

    batch = result.edition.batches.get()
    assert batch.state == DeliveryBatch.State.IN_DOUBT
    email = {r.pk: r.email for r in readers}
    sent = {
        email[pk] for (_, pk), f in fates(result.edition).items() if f.state == Delivery.State.SENT
    }
    assert Counter(server.recipients()) == {email: 1 for email in sent}
    [(hung_up, _)] = server.failed
    doubtful = {
        email[pk]
        for (_, pk), f in fates(result.edition).items()
        if f.state == Delivery.State.IN_DOUBT
    }
    assert set(hung_up) <= doubtful and sent | doubtful == {r.email for r in readers}

    with django_capture_on_commit_callbacks(execute=True):
        assert batch_resend(batch=batch) == len(doubtful)

    # The hung-up message never reached the server's mailbox: all nine have exactly one.
    assert Counter(server.recipients()) == {r.email: 1 for r in readers}
    assert states(result.edition) == {Delivery.State.SENT: 9}


def test_a_server_that_stops_answering_is_given_up_after_email_timeout(
    newsletter, headlines, smtp, settings
):
    settings.SMTP_CONNECTIONS = 1
    subscribe(newsletter)
    smtp(data_delay=3)
    settings.EMAIL_TIMEOUT = 0.5
    [result] = plan_only(send_now=True)

    began = time.monotonic()
    send_all(result.edition)

    assert time.monotonic() - began < 2.5
    assert result.edition.batches.get().state == DeliveryBatch.State.IN_DOUBT


def test_kept_connections_are_closed_when_the_worker_process_stops(
    newsletter, headlines, smtp, settings
):
    settings.SMTP_CONNECTIONS = 2
    for _ in range(4):
        subscribe(newsletter)
    server = smtp()
    [result] = plan_only(send_now=True)
    send_all(result.edition)
    assert server.connections == 2 and server.quits == 0  # kept for the next batch

    worker_process_shutdown.send(sender=None, pid=0, exitcode=0)

    assert server.quits == 2


def test_each_reader_gets_the_message_django_would_have_rendered_for_them(
    newsletter, headlines, smtp, settings
):
    name = 'Layla "= & <b>" ليلى'
    reader = subscribe(newsletter, name=name)
    server = smtp()
    [result] = plan_only(send_now=True)
    batch = result.edition.batches.get()

    with time_machine.travel(datetime(2026, 11, 30, 5, tzinfo=UTC), tick=False):
        send_all(result.edition)
        rendered = render.render_edition_email(edition=result.edition, followed=batch.followed)
        headers = render.reader_headers(subscriber=reader, newsletter=newsletter)
        expected = render.personal_copy(
            rendered=rendered,
            values=render.recipient_values(
                subscriber=reader, newsletter=newsletter, headers=headers
            ),
        )

    [(envelope, data)] = server.received
    message = message_from_bytes(data, policy=default)
    assert envelope == [reader.email]
    assert message["To"] == reader.email
    assert message["Subject"] == expected.subject
    assert message["List-Unsubscribe"] == headers["List-Unsubscribe"]
    by_django = message_from_bytes(
        edition_message(edition=result.edition, rendered=expected, to=[reader.email])
        .message()
        .as_bytes(linesep="\r\n"),
        policy=default,
    )
    for part in ("plain", "html"):
        got, django_part = message.get_body((part,)), by_django.get_body((part,))
        assert got.get_content() == django_part.get_content()
        assert got["Content-Transfer-Encoding"] == django_part["Content-Transfer-Encoding"]
    assert name in expected.text
    head = data.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= 78 for line in head.split(b"\r\n") if b"http" not in line)
    assert message["Message-ID"] == Delivery.objects.get().esp_message_id


def test_a_copy_with_a_line_past_998_characters_is_encoded_as_django_encodes_it(
    newsletter, headlines
):
    reader = subscribe(newsletter, name="Layla")
    [result] = plan_only(send_now=True)
    rendered = RenderedEmail(
        subject="The digest",
        text="{{greeting}}\n" + "word " * 199 + "{{unsubscribe_url}}\n",
        html="<p>{{greeting_html}}</p>\n",
    )
    headers = {**render.reader_headers(subscriber=reader, newsletter=newsletter)}
    values = render.recipient_values(subscriber=reader, newsletter=newsletter, headers=headers)
    headers["Message-ID"] = "<1@news.example>"

    built = GroupMessage(edition=result.edition, rendered=rendered, header_names=[*headers])
    _, data = built.for_reader(address=reader.email, headers=headers, values=values)

    own = render.personal_copy(rendered=rendered, values=values)
    by_django = message_from_bytes(
        edition_message(edition=result.edition, rendered=own, to=[reader.email], headers=headers)
        .message()
        .as_bytes(linesep="\r\n"),
        policy=default,
    )
    ours = message_from_bytes(data, policy=default)
    for part in ("plain", "html"):
        got, django_part = ours.get_body((part,)), by_django.get_body((part,))
        assert got.get_content() == django_part.get_content()
        assert got["Content-Transfer-Encoding"] == django_part["Content-Transfer-Encoding"]
    assert ours.get_body(("plain",))["Content-Transfer-Encoding"] == "quoted-printable"
