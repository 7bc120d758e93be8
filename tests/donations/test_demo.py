from __future__ import annotations

import pytest

from donations import demo
from donations.models import Appeal, Placement
from subscriptions.appeals import appeal_for_newsletter

pytestmark = pytest.mark.django_db


def test_seed_creates_an_appeal_for_every_placement_and_can_run_twice():
    first = demo.seed()
    second = demo.seed()
    assert Appeal.objects.count() == len(demo.APPEALS) == len(first) == len(second)
    assert all(line.startswith("Updated") for line in second)
    assert set(Appeal.objects.values_list("placement", flat=True)) == set(Placement.values)


def test_seeded_newsletter_appeal_reaches_subscribers():
    from tests.subscriptions.factories import SubscriberFactory

    demo.seed()
    SubscriberFactory(email="morning@mail.example")
    appeal = appeal_for_newsletter(email="morning@mail.example")
    assert appeal is not None and appeal.placement == Placement.NEWSLETTER
