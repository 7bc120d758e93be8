"""A Stripe that accepts and never answers: the donor's wait ends, with a clear message."""

from __future__ import annotations

import pytest

from donations.models import Gift
from tests.donations.test_checkout import give
from tests.hungserver import HungServer

pytestmark = pytest.mark.django_db


def test_a_hung_stripe_ends_the_donors_wait_with_a_clear_message_and_charges_nothing(
    client, settings
):
    settings.STRIPE_SECRET_KEY = "sk_test_hung"
    settings.STRIPE_TIMEOUT_SECONDS = 1
    settings.STRIPE_MAX_NETWORK_RETRIES = 1
    with HungServer() as stripe_host:
        settings.STRIPE_API_BASE = stripe_host.url

        response = give(client)

    assert not stripe_host.gave_up  # the SDK stopped waiting, not the server
    assert stripe_host.accepted == 2  # the call and its one retry, each bounded
    assert response.status_code == 503
    assert "We could not reach our payment processor" in response.content.decode()
    assert "Nothing was charged" in response.content.decode()
    assert Gift.objects.get().status == Gift.Status.FAILED
