"""Exactly once under faults: retry only what the ESP provably did not take, else in doubt.

Through the real anymail Mailgun backend, the network cut beneath it by `responses`,
and through Django's SMTP backend to a local SMTP server.
"""

from __future__ import annotations

import re
import socket
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from io import StringIO

import pytest
import requests
import responses
from celery.exceptions import Retry
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from urllib3.exceptions import MaxRetryError, NameResolutionError, ProtocolError

from bench.fake_esp import form_fields
from subscriptions import appeals
from subscriptions.digest import esp as digest_esp
from subscriptions.digest import send as send_module
from subscriptions.digest import tasks as digest_tasks
from subscriptions.digest.send import edition_send_batch
from subscriptions.digest.staff import batch_resend
from subscriptions.models import Delivery, DeliveryBatch, Edition
from tests.subscriptions.digest.helpers import (
    fate_of,
    plan_and_send,
    plan_only,
    states,
    subscribe,
)
from tests.subscriptions.digest.smtp_server import SmtpServer

pytestmark = pytest.mark.django_db
MAILGUN_SEND = re.compile(r"https://mailgun\.test/v3/[^/]+/messages")
ACCEPTED = {"id": "<20261130.1@newsroom.example>", "message": "Queued. Thank you."}


class WorkerLost(BaseException):
    """What the process sees of a SIGKILL: nothing after this line runs."""


@pytest.fixture
def mailgun(settings):
    settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
    settings.ANYMAIL = {
        "MAILGUN_API_KEY": "key-test",
        "MAILGUN_API_URL": "https://mailgun.test/v3",
        "WEBHOOK_SECRET": "laptop:webhook",
    }
    settings.ESP_MERGE_FIELD_FORMAT = "%recipient.FIELD%"
    settings.ESP_BATCH_SIZE = 3


@pytest.fixture
def esp_network():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as network:
        yield network


def refused_connection() -> requests.ConnectionError:
    """What requests raises when nothing listens at the ESP's port."""
    return requests.ConnectionError(
        MaxRetryError(None, "/v3", ConnectionRefusedError(111, "Connection refused"))
    )


def unknown_host() -> requests.ConnectionError:
    return requests.ConnectionError(
        MaxRetryError(
            None,
            "/v3",
            NameResolutionError("mailgun.test", None, socket.gaierror(-2, "Name not known")),
        )
    )


def reset_after_sending() -> requests.ConnectionError:
    return requests.ConnectionError(
        ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset"))
    )


# --- what proves the ESP took nothing: retried, each reader still gets one email ------


@pytest.mark.parametrize(
    "failure",
    [
        {"body": requests.ConnectTimeout("connect timed out")},
        {"body": refused_connection()},
        {"body": unknown_host()},
        {"status": 400, "json": {"message": "'from' parameter is missing"}},
        {"status": 422, "json": {"message": "Invalid recipient"}},
        {"status": 429, "json": {"message": "Too many requests"}},
    ],
    ids=["connect timeout", "connection refused", "DNS failure", "400", "422", "429"],
)
def test_an_error_proving_the_esp_took_nothing_is_retried_and_each_reader_gets_one_email(
    newsletter,
    headlines,
    mailgun,
    esp_network,
    eager_retries,
    failure,
    django_capture_on_commit_callbacks,
):
    readers = [subscribe(newsletter) for _ in range(3)]
    esp_network.add(responses.POST, MAILGUN_SEND, **failure)
    esp_network.add(responses.POST, MAILGUN_SEND, json=ACCEPTED)

    [result] = plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    assert len(esp_network.calls) == 2  # the refused call, then the retry
    batch = result.edition.batches.get()
    assert batch.state == DeliveryBatch.State.SENT and batch.attempts == 2
    assert states(result.edition) == {Delivery.State.SENT: 3}
    retry = esp_network.calls[1].request
    assert sorted(form_fields(retry.headers["Content-Type"], retry.body)["to"]) == sorted(
        r.email for r in readers
    )


@pytest.mark.parametrize("form", ["seconds", "HTTP date"])
def test_a_429_is_retried_no_sooner_than_its_retry_after(
    newsletter, headlines, mailgun, esp_network, form, time_machine
):
    now = datetime.now(UTC).replace(microsecond=0)
    time_machine.move_to(now, tick=False)
    in_an_hour = format_datetime(now + timedelta(hours=1), usegmt=True)
    retry_after = "3600" if form == "seconds" else in_an_hour
    subscribe(newsletter)
    [result] = plan_only(send_now=True)
    esp_network.add(
        responses.POST,
        MAILGUN_SEND,
        status=429,
        headers={"Retry-After": retry_after},
        json={"message": "Too many requests"},
    )

    with pytest.raises(Retry) as retry:
        digest_tasks.digest_send_batch_task.apply(args=[result.edition.batches.get().pk])

    assert retry.value.when == 3600
    assert DeliveryBatch.objects.get().state == DeliveryBatch.State.QUEUED


# --- what may have reached the ESP: in doubt, never retried by itself -----------------


@pytest.mark.parametrize(
    "failure",
    [
        {"body": requests.ReadTimeout("read timed out")},
        {"body": reset_after_sending()},
        {"status": 500, "json": {"message": "Internal error"}},
        {"status": 503, "body": "Service Unavailable"},
        {"status": 200, "body": "<html>not the API</html>"},
    ],
    ids=["read timeout", "connection reset", "500", "503", "unreadable 200"],
)
def test_an_error_after_the_request_may_have_reached_the_esp_leaves_the_batch_in_doubt(
    newsletter,
    headlines,
    mailgun,
    esp_network,
    eager_retries,
    failure,
    django_capture_on_commit_callbacks,
):
    for _ in range(3):
        subscribe(newsletter)
    esp_network.add(responses.POST, MAILGUN_SEND, **failure)
    esp_network.add(responses.POST, MAILGUN_SEND, json=ACCEPTED)

    [result] = plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    assert len(esp_network.calls) == 1  # never a second copy by itself
    batch = result.edition.batches.get()
    assert batch.state == DeliveryBatch.State.IN_DOUBT
    assert "may have reached the ESP" in batch.error
    assert states(result.edition) == {Delivery.State.IN_DOUBT: 3}
    assert Edition.objects.get().state == Edition.State.SENT  # nothing left to send


# --- SMTP, through a local server ---------------------------------------------------


@pytest.fixture(params=[True, False], ids=["pipelining", "no pipelining"])
def smtp(settings, request):
    """A local SMTP server, offering PIPELINING (RFC 2920) or not."""

    def serve(**kwargs) -> SmtpServer:
        server = SmtpServer(pipelining=request.param, **kwargs)
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        settings.EMAIL_TIMEOUT = 5
        return server

    return serve


def test_a_message_the_smtp_server_refuses_is_retried_for_the_readers_not_yet_sent(
    newsletter, headlines, smtp, eager_retries, django_capture_on_commit_callbacks
):
    readers = [subscribe(newsletter) for _ in range(3)]

    with smtp(fail_message=2, failure="451") as server:
        [result] = plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    assert sorted(server.recipients()) == sorted(r.email for r in readers)
    assert len(server.failed) == 1
    assert result.edition.batches.get().state == DeliveryBatch.State.SENT
    assert states(result.edition) == {Delivery.State.SENT: 3}


def test_a_message_refused_with_the_next_readers_envelope_sent_behind_it_sends_nothing_twice(
    newsletter, headlines, smtp, settings, eager_retries, django_capture_on_commit_callbacks
):
    settings.SMTP_CONNECTIONS = 1  # with PIPELINING, the second reader's envelope follows
    readers = [subscribe(newsletter) for _ in range(3)]  # the first reader's message

    with smtp(fail_message=1, failure="451") as server:
        [result] = plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    assert sorted(server.recipients()) == sorted(r.email for r in readers)
    assert len(server.failed) == 1
    assert result.edition.batches.get().state == DeliveryBatch.State.SENT
    assert states(result.edition) == {Delivery.State.SENT: 3}


def test_an_smtp_server_that_hangs_up_after_the_data_leaves_the_unrecorded_readers_in_doubt(
    newsletter, headlines, smtp, eager_retries, settings, django_capture_on_commit_callbacks
):
    settings.SMTP_CONNECTIONS = 1  # one message at a time, in the readers' order
    first, *_ = [subscribe(newsletter) for _ in range(3)]

    with smtp(fail_message=2, failure="disconnect") as server:
        [result] = plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    assert server.recipients() == [first.email]  # and one more it may or may not have
    batch = result.edition.batches.get()
    assert batch.state == DeliveryBatch.State.IN_DOUBT and batch.attempts == 1
    assert states(result.edition) == {Delivery.State.SENT: 1, Delivery.State.IN_DOUBT: 2}


class RefusedOnce(SmtpBackend):
    """Django's SMTP backend whose first connection goes to a port nothing listens on."""

    refused = 0
    closed_port = 0

    def open(self):
        if not RefusedOnce.refused and self.connection is None:
            RefusedOnce.refused += 1
            self.port = RefusedOnce.closed_port
        return super().open()


def test_an_smtp_server_refusing_connections_is_retried(
    newsletter, headlines, settings, eager_retries, smtp, django_capture_on_commit_callbacks
):
    subscribe(newsletter)
    with socket.socket() as probe:  # nothing listens on the port once the probe is closed
        probe.bind(("127.0.0.1", 0))
        RefusedOnce.closed_port = probe.getsockname()[1]
    RefusedOnce.refused = 0

    with smtp() as server:
        settings.EMAIL_BACKEND = f"{__name__}.RefusedOnce"
        [result] = plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    assert RefusedOnce.refused == 1 and len(server.received) == 1
    batch = result.edition.batches.get()
    assert batch.state == DeliveryBatch.State.SENT and batch.attempts == 2


class DyingOnThirdMessage(LocmemBackend):
    """An SMTP-like backend (one message per call) whose worker dies sending the third."""

    def send_messages(self, messages):
        if len(mail.outbox) == 2:
            raise WorkerLost
        return super().send_messages(messages)


def test_killed_after_two_of_three_smtp_messages_resend_goes_to_the_third_reader_only(
    newsletter, headlines, settings, django_capture_on_commit_callbacks
):
    readers = [subscribe(newsletter) for _ in range(3)]
    settings.EMAIL_BACKEND = f"{__name__}.DyingOnThirdMessage"
    [result] = plan_only(send_now=True)
    batch = result.edition.batches.get()

    with pytest.raises(WorkerLost):
        edition_send_batch(batch_id=batch.pk, task_id="task-1")
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    edition_send_batch(batch_id=batch.pk, task_id="task-1")  # the broker redelivers
    assert states(result.edition) == {Delivery.State.SENT: 2, Delivery.State.IN_DOUBT: 1}

    with django_capture_on_commit_callbacks(execute=True):
        assert batch_resend(batch=batch) == 1

    assert Counter(e for m in mail.outbox for e in m.to) == {r.email: 1 for r in readers}
    assert states(result.edition) == {Delivery.State.SENT: 3}


# --- rendered within the claim ----------------------------------------------------------


def test_a_worker_killed_while_rendering_leaves_nothing_in_doubt(
    newsletter, headlines, esp, monkeypatch
):
    readers = [subscribe(newsletter) for _ in range(2)]
    [result] = plan_only(send_now=True)
    batch = result.edition.batches.get()

    def killed(**kwargs):
        raise WorkerLost

    with monkeypatch.context() as patched:
        patched.setattr(digest_esp, "render_edition_email", killed)
        with pytest.raises(WorkerLost):
            edition_send_batch(batch_id=batch.pk, task_id="task-1")
    batch.refresh_from_db()
    assert batch.state == DeliveryBatch.State.QUEUED
    assert states(result.edition) == {Delivery.State.QUEUED: 2}

    outcome = edition_send_batch(batch_id=batch.pk, task_id="task-1")  # the broker redelivers

    assert outcome.state == DeliveryBatch.State.SENT
    assert sorted(e for m in mail.outbox for e in m.to) == sorted(r.email for r in readers)


def test_a_reader_who_unsubscribes_as_the_batch_is_claimed_is_not_sent(
    newsletter, headlines, esp, monkeypatch
):
    stays, leaves = subscribe(newsletter), subscribe(newsletter)
    [result] = plan_only(send_now=True)
    lock_batch = send_module._lock_batch

    def lock_as_one_leaves(batch_id):
        # Their unsubscribe commits as the worker takes the batch's lock: the readers it
        # reads and renders under that lock are the ones it claims.
        leaves.subscriptions.update(status="unsubscribed")
        return lock_batch(batch_id)

    monkeypatch.setattr(send_module, "_lock_batch", lock_as_one_leaves)
    edition_send_batch(batch_id=result.edition.batches.get().pk, task_id="task-1")

    assert [e for m in mail.outbox for e in m.to] == [stays.email]
    assert fate_of(leaves).state == Delivery.State.SUPPRESSED


def test_an_appeal_lookup_whose_query_fails_leaves_the_claim_whole(
    newsletter, headlines, esp, monkeypatch
):
    readers = [subscribe(newsletter) for _ in range(2)]
    [result] = plan_only(send_now=True)

    def failing_lookup(*, email):
        # On PostgreSQL a failed statement aborts the transaction it runs in: the claim's.
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table_of_appeals")

    monkeypatch.setattr(appeals, "newsletter_appeals", lambda: ["an appeal runs"])
    monkeypatch.setattr(appeals, "appeal_for_newsletter", failing_lookup)
    outcome = edition_send_batch(batch_id=result.edition.batches.get().pk, task_id="task-1")

    assert outcome.state == DeliveryBatch.State.SENT
    assert sorted(e for m in mail.outbox for e in m.to) == sorted(r.email for r in readers)


# --- send_digest says when a batch did not go -----------------------------------------


def test_send_digest_exits_non_zero_naming_a_batch_in_doubt(
    newsletter, headlines, mailgun, esp_network
):
    subscribe(newsletter)
    esp_network.add(responses.POST, MAILGUN_SEND, body=requests.ReadTimeout("read timed out"))

    with pytest.raises(CommandError) as failed:
        call_command("send_digest", "--now", stdout=StringIO())

    batch = DeliveryBatch.objects.get()
    assert f"batch {batch.pk} in doubt" in str(failed.value)
    assert "ReadTimeout" in str(failed.value)


def test_send_digest_exits_non_zero_naming_a_batch_that_failed(
    newsletter, headlines, mailgun, esp_network, monkeypatch
):
    from subscriptions.management.commands import send_digest

    monkeypatch.setattr(send_digest.time, "sleep", lambda seconds: None)
    subscribe(newsletter)
    esp_network.add(responses.POST, MAILGUN_SEND, status=401, body="Forbidden")

    with pytest.raises(CommandError) as failed:
        call_command("send_digest", "--now", stdout=StringIO())

    assert f"batch {DeliveryBatch.objects.get().pk} failed" in str(failed.value)
    assert "401" in str(failed.value)
    assert len(esp_network.calls) == send_digest.ATTEMPTS


def test_send_digest_waits_as_long_as_the_esp_asks(
    newsletter, headlines, mailgun, esp_network, monkeypatch
):
    from subscriptions.management.commands import send_digest

    waits: list[float] = []
    monkeypatch.setattr(send_digest.time, "sleep", waits.append)
    subscribe(newsletter)
    esp_network.add(responses.POST, MAILGUN_SEND, status=429, headers={"Retry-After": "90"})
    esp_network.add(responses.POST, MAILGUN_SEND, json=ACCEPTED)

    call_command("send_digest", "--now", stdout=StringIO())

    assert waits == [90]
    assert DeliveryBatch.objects.get().state == DeliveryBatch.State.SENT
