"""The README's promise: the demo's digest through Postmark's or Mailgun's real backend, over
HTTP to the local stand-in (bench/fake_esp.py), reaches every demo reader once with their
own working unsubscribe link."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from bench.fake_esp import StandIn
from subscriptions.models import Delivery, DeliveryBatch, Newsletter, Subscriber, Subscription
from subscriptions.selectors import suppressed_among
from tests.subscriptions.digest.helpers import states
from tests.subscriptions.digest.providers import assert_each_reader_got_their_own, use_esp

pytestmark = pytest.mark.django_db


@pytest.fixture
def stand_in():
    server = StandIn().start()
    yield server
    server.stop()


def demo_readers(daily) -> list[Subscriber]:
    """The demo's subscribed readers, but those whose address bounced or complained."""
    subscribed = Subscriber.objects.filter(
        subscriptions__newsletter=daily, subscriptions__status=Subscription.Status.ACTIVE
    )
    suppressed = suppressed_among([s.email for s in subscribed])
    return [s for s in subscribed if s.email not in suppressed]


def send_demo_digest() -> None:
    call_command("seed_demo", stdout=StringIO(), stderr=StringIO())
    call_command(
        "send_digest",
        "--newsletter",
        "mideast-daily",
        "--now",
        stdout=StringIO(),
        stderr=StringIO(),
    )


def test_the_demo_digest_through_postmark_reaches_each_reader_once(settings, stand_in):
    use_esp(
        settings,
        "anymail.backends.postmark.EmailBackend",
        POSTMARK_SERVER_TOKEN="demo-token",
        POSTMARK_API_URL=f"{stand_in.url}/",
    )

    send_demo_digest()

    daily = Newsletter.objects.get(slug="mideast-daily")
    readers = demo_readers(daily)
    assert len(readers) >= 2
    assert_each_reader_got_their_own(stand_in.store.messages, readers, daily)
    today = DeliveryBatch.objects.filter(edition__newsletter=daily).latest("pk").edition
    assert today.state == "sent"
    assert set(states(today)) <= {Delivery.State.SENT, Delivery.State.SUPPRESSED}


def test_the_demo_digest_through_mailgun_needs_no_merge_setting(settings, stand_in):
    use_esp(
        settings,
        "anymail.backends.mailgun.EmailBackend",
        MAILGUN_API_KEY="demo-key",
        MAILGUN_API_URL=f"{stand_in.url}/v3",
    )

    send_demo_digest()

    daily = Newsletter.objects.get(slug="mideast-daily")
    readers = demo_readers(daily)
    assert_each_reader_got_their_own(stand_in.store.messages, readers, daily)
