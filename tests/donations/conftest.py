"""Every donations test runs with the giving settings; webhooks arrive signed."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from donations.services import events
from tests.donations.fixtures import sign


@pytest.fixture(autouse=True)
def _donation_settings(donation_settings) -> None:
    """Each test here runs with the giving settings of tests.donations.fixtures."""


@pytest.fixture(autouse=True)
def _drain_window(monkeypatch) -> None:
    """Each test is a fresh web process: no drain pushed yet in its window."""
    monkeypatch.setattr(events, "_drain_window_ends", 0.0)


@pytest.fixture
def post_event(client, django_capture_on_commit_callbacks) -> Callable:
    """POST a Stripe event, signed, to the webhook; tasks run when the request commits."""

    def post(
        event: dict, *, signature: str | None = None, path: str = "/webhooks/stripe/", **headers
    ):
        payload = json.dumps(event)
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                path,
                data=payload,
                content_type="application/json",
                HTTP_STRIPE_SIGNATURE=signature if signature is not None else sign(payload),
                **headers,
            )

    return post
