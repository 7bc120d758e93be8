"""A signed webhook processed by a real Celery worker process, against a real database and broker.

The worker is another process, so a monkeypatched doorway cannot reach it. Instead it
gets STRIPE_API_BASE pointing at a tiny Stripe stand-in served by this test: the
real SDK, through the real doorway, asks it for the PaymentIntent.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from donations.models import Gift, StripeEvent
from newsroom.celery import app as celery_app
from newsroom.models import OutboxMessage
from tests.donations import stripe_payloads as p
from tests.donations.factories import GiftFactory, PaidGiftFactory
from tests.donations.fixtures import sign

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


class StripeStandIn(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:
        StripeStandIn.seen.append(self.path)
        if not self.path.startswith("/v1/payment_intents/"):
            self.send_error(404)
            return
        intent_id = self.path.split("/")[3].split("?")[0]
        body = json.dumps(
            {
                "id": intent_id,
                "object": "payment_intent",
                "customer": "cus_worker",
                "latest_charge": {
                    "id": "ch_worker",
                    "object": "charge",
                    "created": int(time.time()),
                    "payment_method_details": {"type": "card", "card": {"last4": "5556"}},
                },
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def stripe_stand_in():
    server = ThreadingHTTPServer(("127.0.0.1", 0), StripeStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    StripeStandIn.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def post_signed(client, event: dict):
    """POST the event to the webhook, signed as Stripe signs it."""
    payload = json.dumps(event)
    return client.post(
        "/webhooks/stripe/",
        payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(payload),
    )


def wait_for(condition, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.25)
    return False


def test_worker_records_the_gift_and_sends_one_receipt(
    client, celery_worker_factory, stripe_stand_in, tmp_path
):
    mail_dir = tmp_path / "mail"
    worker = celery_worker_factory(
        extra_env={
            "STRIPE_API_BASE": stripe_stand_in,
            "STRIPE_SECRET_KEY": "sk_test_worker",
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(mail_dir),
            "SITE_URL": "https://news.example",
        }
    )
    gift = GiftFactory(amount_cents=6400)
    event = p.event(
        "checkout.session.completed", p.checkout_session(gift, payment_intent="pi_worker")
    )
    for _ in range(3):  # delivered three times: still one gift, one receipt
        assert post_signed(client, event).status_code == 200

    def paid() -> bool:
        gift.refresh_from_db()
        return gift.status == Gift.Status.PAID and gift.receipt_sent_at is not None

    assert wait_for(paid), worker.log.read_text()[-3000:]
    assert gift.card_last4 == "5556"
    assert gift.stripe_payment_intent_id == "pi_worker"
    assert StripeEvent.objects.get().outcome == StripeEvent.Outcome.PROCESSED
    assert any(path.startswith("/v1/payment_intents/pi_worker") for path in StripeStandIn.seen)
    assert wait_for(lambda: mail_dir.exists() and any(mail_dir.iterdir()), 10)
    time.sleep(1)  # give a (wrong) second receipt the time to appear
    receipts = [f.read_text() for f in mail_dir.iterdir()]
    assert sum(text.count("Subject: Your receipt: $64.00") for text in receipts) == 1
    assert Gift.objects.count() == 1


def test_a_refund_sent_while_the_broker_refused_is_applied_once_it_is_back(
    client, celery_worker_factory, broker_refusing
):
    celery_worker_factory()
    gift = PaidGiftFactory(amount_cents=5000, stripe_payment_intent_id="pi_down")
    event = p.event(
        "charge.refunded", p.charge(payment_intent="pi_down", amount=5000, amount_refunded=5000)
    )
    for _ in range(2):  # Stripe's first delivery, then a redelivery: both answered 200
        assert post_signed(client, event).status_code == 200
    assert StripeEvent.objects.get().outcome == StripeEvent.Outcome.RECEIVED

    # The broker is back; beat queues its requeue run, as it does every minute.
    celery_app.conf.broker_write_url = None
    celery_app.send_task("donations.stripe_events_requeue_received")

    def refunded() -> bool:
        gift.refresh_from_db()
        return gift.status == Gift.Status.REFUNDED

    assert wait_for(refunded)
    assert wait_for(
        lambda: not OutboxMessage.objects.exclude(state=OutboxMessage.State.SENT).exists()
    )
    stored = StripeEvent.objects.get()
    assert (stored.outcome, stored.attempts) == (StripeEvent.Outcome.PROCESSED, 1)
    assert gift.refunded_cents == 5000


def post_refunds(client, gifts: list[Gift]) -> None:
    for gift in gifts:
        event = p.event(
            "charge.refunded",
            p.charge(
                payment_intent=gift.stripe_payment_intent_id, amount=5000, amount_refunded=5000
            ),
        )
        assert post_signed(client, event).status_code == 200


def paid_gifts(count: int) -> list[Gift]:
    return [
        PaidGiftFactory(amount_cents=5000, stripe_payment_intent_id=f"pi_drain_{n}")
        for n in range(count)
    ]


def refunded_once(gifts: list[Gift]) -> bool:
    ids = [gift.pk for gift in gifts]
    refunded = Gift.objects.filter(pk__in=ids, status=Gift.Status.REFUNDED).count()
    return (
        refunded == len(ids)
        and not StripeEvent.objects.exclude(
            outcome=StripeEvent.Outcome.PROCESSED, attempts=1
        ).exists()
    )


def test_events_accepted_in_one_window_are_drained_and_each_runs_once(
    client, celery_worker_factory
):
    worker = celery_worker_factory()
    gifts = paid_gifts(6)

    post_refunds(client, gifts)

    assert wait_for(lambda: refunded_once(gifts)), worker.log.read_text()[-3000:]
    log = worker.log.read_text()
    assert log.count("donations.stripe_events_drain") >= 1
    assert "donations.stripe_event_process" in log


def test_a_worker_killed_holding_the_drain_still_ends_with_each_refund_applied_once(
    client, celery_worker_factory
):
    first = celery_worker_factory()
    gifts = paid_gifts(4)
    post_refunds(client, gifts)
    # The drain waits out its window in the worker, unacknowledged, when the worker dies.
    assert wait_for(lambda: "stripe_events_drain" in first.log.read_text(), 10)
    first.kill()

    second = celery_worker_factory()
    # Beat's requeue, as it runs every minute: it takes every event the drain did not queue.
    celery_app.send_task("donations.stripe_events_requeue_received")

    assert wait_for(lambda: refunded_once(gifts)), second.log.read_text()[-3000:]
    assert Gift.objects.filter(refunded_cents=5000).count() == len(gifts)
