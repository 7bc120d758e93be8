"""factory_boy factories for the donations app."""

from __future__ import annotations

from datetime import timedelta

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from donations.models import Appeal, Frequency, Gift, Placement, RecurringPlan


class AppealFactory(DjangoModelFactory):
    class Meta:
        model = Appeal

    name = factory.Sequence(lambda n: f"Appeal {n}")
    headline = "Reporting that readers pay for"
    body = "We take no advertising.\n\nEvery story is paid for by readers."
    cta_label = "Give today"
    placement = Placement.SITE_BANNER
    starts_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    ends_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=30))
    priority = 100
    audience = Appeal.Audience.EVERYONE
    default_frequency = Frequency.MONTHLY


class GiftFactory(DjangoModelFactory):
    class Meta:
        model = Gift

    status = Gift.Status.PENDING
    frequency = Frequency.ONE_TIME
    amount_cents = 2500
    donor_email = factory.Sequence(lambda n: f"donor{n}@mail.example")
    donor_name = "Rana Khoury"
    stripe_checkout_session_id = factory.Sequence(lambda n: f"cs_test_factory_{n}")


class PaidGiftFactory(GiftFactory):
    status = Gift.Status.PAID
    paid_at = factory.LazyFunction(timezone.now)
    stripe_payment_intent_id = factory.Sequence(lambda n: f"pi_factory_{n}")
    stripe_customer_id = "cus_factory"
    card_last4 = "4242"
    receipt_sent_at = factory.LazyFunction(timezone.now)


class PlanFactory(DjangoModelFactory):
    class Meta:
        model = RecurringPlan

    stripe_subscription_id = factory.Sequence(lambda n: f"sub_factory_{n}")
    stripe_customer_id = "cus_factory"
    donor_email = factory.Sequence(lambda n: f"monthly{n}@mail.example")
    frequency = Frequency.MONTHLY
    amount_cents = 2000
    status = RecurringPlan.Status.ACTIVE
