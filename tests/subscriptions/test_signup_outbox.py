"""Sign-up through the outbox: the same work for every address, and no email lost or doubled."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.db import OperationalError, connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from newsroom import outbox
from newsroom.celery import app as celery_app
from newsroom.models import OutboxMessage
from subscriptions.models import ConsentRecord, Subscriber, Subscription, Suppression
from subscriptions.services import suppression_add
from tests.hungserver import HungServer
from tests.subscriptions.factories import SubscriptionFactory
from tests.subscriptions.helpers import confirm_path, signup

pytestmark = pytest.mark.django_db


def post_signup(client, email: str, newsletter):
    """The request alone, as the web process runs it: what happens after commit is not timed."""
    return client.post(
        reverse("subscriptions:subscribe"),
        {"email": email, "newsletters": [newsletter.pk], "time_zone": "Europe/Berlin"},
        REMOTE_ADDR="203.0.113.7",
    )


def query_shapes(queries) -> list[str]:
    # The statements without values or savepoint names: the same work for another address.
    values = re.compile(r"'(?:[^']|'')*'|\"s\d+_x\d+\"|\b\d+(?:\.\d+)?\b")
    return [values.sub("?", query["sql"]) for query in queries]


def test_known_and_unknown_addresses_cost_the_same_queries_and_bytes(client, daily):
    signup(client, "pending@mail.example", daily)
    SubscriptionFactory(subscriber__email="confirmd@mail.example", newsletter=daily)
    suppression_add(email="suppress@mail.example", reason=Suppression.Reason.COMPLAINT)

    shapes, bodies = [], []
    for email in [
        "newreadr@mail.example",
        "pending@mail.example",
        "confirmd@mail.example",
        "suppress@mail.example",
    ]:
        with (
            TestCase.captureOnCommitCallbacks(execute=False),
            CaptureQueriesContext(connection) as queries,
        ):
            response = post_signup(client, email, daily)
        assert response.status_code == 200
        shapes.append(query_shapes(queries.captured_queries))
        bodies.append(response.content.replace(email.encode(), b"ADDRESS"))

    assert shapes[1:] == shapes[:1] * 3
    assert all(body == bodies[0] for body in bodies)
    writes = [sql for sql in shapes[0] if sql.startswith(("INSERT", "UPDATE", "DELETE"))]
    assert [sql.split("(")[0] for sql in writes] == ['INSERT INTO "newsroom_outboxmessage" ']
    assert not any("subscriptions_subscriber" in sql for sql in shapes[0])


def test_with_the_broker_refusing_the_reader_sees_the_usual_page_and_gets_one_email_later(
    client, daily, mailoutbox, broker_refusing
):
    response = signup(client, "patient@mail.example", daily)

    assert response.status_code == 200
    assert b"Check your inbox" in response.content
    waiting = OutboxMessage.objects.get()
    assert waiting.state == OutboxMessage.State.PENDING
    assert "OperationalError" in waiting.last_error
    assert mailoutbox == []

    # The broker is back; beat's run hands the row to a worker, played here in-process.
    celery_app.conf.task_always_eager = True
    later = timezone.now() + timedelta(minutes=2)
    assert outbox.outbox_send_pending(now=later) == 1
    outbox.outbox_send_pending(now=later + timedelta(minutes=1))

    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["patient@mail.example"]
    waiting.refresh_from_db()
    assert waiting.state == OutboxMessage.State.SENT
    client.get(confirm_path(mailoutbox[0]))
    assert Subscription.objects.get().status == Subscription.Status.ACTIVE


def test_signing_up_again_while_the_broker_refuses_is_not_blocked_afterwards(
    client, daily, mailoutbox, broker_refusing
):
    signup(client, "twice@mail.example", daily)
    signup(client, "twice@mail.example", daily)

    celery_app.conf.task_always_eager = True
    outbox.outbox_send_pending(now=timezone.now() + timedelta(minutes=2))

    assert len(mailoutbox) == 1
    assert Subscriber.objects.get().email == "twice@mail.example"


def test_a_sign_up_dispatched_twice_emails_once_however_late_the_second(client, daily, mailoutbox):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        signup(client, "once@mail.example", daily)
        assert len(mailoutbox) == 1
        # The process died after the broker took the task, before the row was marked sent.
        OutboxMessage.objects.update(state=OutboxMessage.State.PENDING)
        traveller.shift(timedelta(hours=2))
        outbox.outbox_send_pending()

    assert len(mailoutbox) == 1
    assert OutboxMessage.objects.get().state == OutboxMessage.State.SENT
    assert ConsentRecord.objects.filter(action=ConsentRecord.Action.SUBSCRIBE).count() == 1


def test_consent_sent_later_is_recorded_at_the_time_the_reader_asked(
    client, daily, mailoutbox, broker_refusing
):
    asked = timezone.now().replace(microsecond=0)
    with time_machine.travel(asked, tick=False):
        signup(client, "patient@mail.example", daily)

    celery_app.conf.task_always_eager = True
    with time_machine.travel(asked + timedelta(hours=2), tick=False):
        outbox.outbox_send_pending()

    record = ConsentRecord.objects.get(action=ConsentRecord.Action.SUBSCRIBE)
    assert record.at == asked


def test_a_confirmation_the_esp_never_took_does_not_block_the_next_sign_up(
    client, daily, mailoutbox, settings
):
    with HungServer() as esp:
        settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
        settings.ANYMAIL = {
            **settings.ANYMAIL,
            "POSTMARK_SERVER_TOKEN": "server-token",
            "POSTMARK_API_URL": f"{esp.url}/",
            "REQUESTS_TIMEOUT": (1, 1),
        }
        response = signup(client, "unlucky@mail.example", daily)
    assert response.status_code == 200
    assert not esp.gave_up  # the send stopped waiting by itself
    assert mailoutbox == []

    # The ESP is back; the reader, seeing nothing, signs up again a minute later.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with time_machine.travel(timezone.now() + timedelta(minutes=1), tick=False):
        signup(client, "unlucky@mail.example", daily)
    assert len(mailoutbox) == 1

    # Beat tries the first request again: it finds the confirmation sent since.
    outbox.outbox_send_pending(now=timezone.now() + timedelta(minutes=3))
    assert len(mailoutbox) == 1


def test_a_sign_up_the_database_failed_leaves_nothing_that_blocks_the_next(
    client, daily, mailoutbox
):
    def refuse_writes(execute, sql, params, many, context):
        if sql.startswith("INSERT"):
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(refuse_writes):
        failed = signup(client, "retry@mail.example", daily)

    assert failed.status_code == 503
    assert "nothing was saved" in failed.content.decode()
    assert not OutboxMessage.objects.exists() and not Subscriber.objects.exists()
    assert signup(client, "retry@mail.example", daily).status_code == 200
    assert [message.to for message in mailoutbox] == [["retry@mail.example"]]
