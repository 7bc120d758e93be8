"""Money records are never deleted in the admin, and reader records not without a trace."""

from __future__ import annotations

import pytest
from django.urls import reverse

from donations.models import (
    Appeal,
    GivingStatement,
    PaymentFailureNotice,
    StripeEvent,
)
from staff import roles
from subscriptions.models import Newsletter, Subscription
from tests.donations.factories import AppealFactory, PaidGiftFactory, PlanFactory
from tests.subscriptions.factories import NewsletterFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

WHO = [roles.ADMINS, "superuser"]


def money_records() -> dict[str, object]:
    plan = PlanFactory()
    return {
        "gift": PaidGiftFactory(),
        "recurringplan": plan,
        "stripeevent": StripeEvent.objects.create(
            stripe_id="evt_kept", type="charge.refunded", payload={"id": "evt_kept"}
        ),
        "givingstatement": GivingStatement.objects.create(
            donor_email="donor@mail.example", year=2025, total_cents=5000, gift_count=1
        ),
        "paymentfailurenotice": PaymentFailureNotice.objects.create(
            stripe_invoice_id="in_kept", plan=plan
        ),
    }


@pytest.mark.parametrize("role", WHO)
def test_the_delete_page_of_a_money_record_is_forbidden(sign_in, role):
    staff = sign_in(role)
    records = money_records()

    for model, record in records.items():
        url = reverse(f"admin:donations_{model}_delete", args=[record.pk])
        assert staff.get(url).status_code == 403, model
        assert staff.post(url, {"post": "yes"}).status_code == 403, model
        assert type(record).objects.filter(pk=record.pk).exists(), model


@pytest.mark.parametrize("role", WHO)
def test_no_money_record_list_offers_a_bulk_delete(sign_in, role):
    staff = sign_in(role)
    records = money_records()

    for model, record in records.items():
        changelist = reverse(f"admin:donations_{model}_changelist")
        assert "delete_selected" not in staff.get(changelist).content.decode(), model
        staff.post(
            changelist,
            {"action": "delete_selected", "_selected_action": [record.pk], "post": "yes"},
        )
        assert type(record).objects.filter(pk=record.pk).exists(), model


def test_the_gift_list_offers_a_refund_where_a_delete_was(administrator):
    PaidGiftFactory()

    page = administrator.get(reverse("admin:donations_gift_changelist")).content.decode()

    assert "Refund the selected gifts at Stripe" in page


def test_an_appeal_that_raised_money_is_not_deleted_and_its_gifts_keep_it(administrator):
    appeal = AppealFactory(name="Spring drive")
    gift = PaidGiftFactory(appeal=appeal)
    url = reverse("admin:donations_appeal_delete", args=[appeal.pk])

    page = administrator.get(url).content.decode()
    administrator.post(url, {"post": "yes"})
    administrator.post(
        reverse("admin:donations_appeal_changelist"),
        {"action": "delete_selected", "_selected_action": [appeal.pk], "post": "yes"},
    )

    assert "Spring drive raised gifts: switch it off (untick active) instead" in page
    gift.refresh_from_db()
    assert gift.appeal == appeal


def test_an_appeal_that_raised_nothing_can_still_be_deleted(administrator):
    appeal = AppealFactory()

    administrator.post(reverse("admin:donations_appeal_delete", args=[appeal.pk]), {"post": "yes"})

    assert not Appeal.objects.filter(pk=appeal.pk).exists()


def test_a_newsletter_readers_signed_up_to_is_not_deleted_with_their_subscriptions(
    audience_editor,
):
    subscription = SubscriptionFactory(newsletter=NewsletterFactory(name="Mideast Daily"))
    newsletter = subscription.newsletter
    url = reverse("admin:subscriptions_newsletter_delete", args=[newsletter.pk])

    page = audience_editor.get(url).content.decode()
    audience_editor.post(url, {"post": "yes"})

    assert "Mideast Daily has subscribers: switch it off (untick active) instead" in page
    assert Subscription.objects.filter(pk=subscription.pk).exists()


def test_a_newsletter_nobody_signed_up_to_can_still_be_deleted(audience_editor):
    newsletter = NewsletterFactory()

    audience_editor.post(
        reverse("admin:subscriptions_newsletter_delete", args=[newsletter.pk]), {"post": "yes"}
    )

    assert not Newsletter.objects.filter(pk=newsletter.pk).exists()
