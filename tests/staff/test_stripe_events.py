"""Processing a Stripe event again changes gifts: only who may change events may do it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from donations.models import StripeEvent

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:donations_stripeevent_changelist")


@pytest.fixture
def failed_event() -> StripeEvent:
    # A type the webhook ignores: processed again, it ends "ignored" without touching a gift.
    return StripeEvent.objects.create(
        stripe_id="evt_retry",
        type="customer.created",
        payload={"data": {"object": {}}},
        outcome=StripeEvent.Outcome.FAILED,
        error="Traceback...\nOperationalError: server closed",
    )


def process_again(client, event: StripeEvent, capture):
    with capture(execute=True):
        return client.post(
            CHANGELIST, {"action": "process_again", "_selected_action": [event.pk]}, follow=True
        )


def test_admins_are_offered_the_action_and_it_processes_the_event(
    administrator, failed_event, django_capture_on_commit_callbacks
):
    assert 'value="process_again"' in administrator.get(CHANGELIST).content.decode()

    response = process_again(administrator, failed_event, django_capture_on_commit_callbacks)

    assert "Queued 1 event to be processed again." in response.content.decode()
    failed_event.refresh_from_db()
    assert (failed_event.outcome, failed_event.attempts) == (StripeEvent.Outcome.IGNORED, 1)


def test_development_sees_events_without_the_action_and_a_forged_post_does_nothing(
    fundraiser, failed_event, django_capture_on_commit_callbacks
):
    page = fundraiser.get(CHANGELIST)
    assert page.status_code == 200 and "evt_retry" in page.content.decode()
    assert 'value="process_again"' not in page.content.decode()

    response = process_again(fundraiser, failed_event, django_capture_on_commit_callbacks)

    assert "Queued" not in response.content.decode()
    failed_event.refresh_from_db()
    assert (failed_event.outcome, failed_event.attempts) == (StripeEvent.Outcome.FAILED, 0)
