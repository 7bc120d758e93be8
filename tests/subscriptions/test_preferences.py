"""The preferences page, reached by a signed link: choose, pause, leave, download, delete."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from django.urls import reverse
from django.utils import timezone

from donations.models import Gift, RecurringPlan, StripeEvent
from newsroom.models import AuditEntry
from subscriptions import tokens
from subscriptions.models import (
    ConsentRecord,
    ConsentText,
    Follow,
    Subscriber,
    Subscription,
    Suppression,
    TrackingEvent,
    email_hash,
)
from subscriptions.selectors import suppressed_among
from tests.donations.factories import PaidGiftFactory, PlanFactory
from tests.newsroom.factories import CategoryFactory, TopicFactory
from tests.subscriptions.factories import NewsletterFactory, SubscriptionFactory
from tests.subscriptions.helpers import confirm_path, signup

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(daily):
    return SubscriptionFactory(newsletter=daily, subscriber__email="prefs@mail.example").subscriber


def prefs(subscriber) -> str:
    return urlsplit(tokens.preferences_url(subscriber=subscriber)).path


def test_the_page_shows_the_readers_choices(client, member):
    CategoryFactory(name="Politics")

    response = client.get(prefs(member))

    assert response.status_code == 200
    body = response.content.decode()
    assert "prefs@mail.example" in body
    assert "Mideast Daily" in body and "Politics" in body
    assert "Download my data" in body and "Delete my data" in body


def test_a_forged_preferences_link_is_refused(client, member):
    response = client.get(prefs(member)[:-4] + "xyz/")

    assert response.status_code == 400


def test_saving_changes_newsletters_follows_and_time_zone(client, member, daily):
    weekly = NewsletterFactory(name="Weekly", slug="weekly")
    politics, economy = CategoryFactory(), CategoryFactory()
    water = TopicFactory()
    Follow.objects.create(subscriber=member, category=economy)

    response = client.post(
        prefs(member),
        {
            "action": "save",
            "newsletters": [weekly.pk],
            "categories": [politics.pk],
            "topics": [water.pk],
            "time_zone": "America/New_York",
        },
    )

    assert response.status_code == 303
    member.refresh_from_db()
    assert member.time_zone == "America/New_York"
    statuses = dict(member.subscriptions.values_list("newsletter__slug", "status"))
    assert statuses == {"mideast-daily": "unsubscribed", "weekly": "active"}
    assert {(f.category, f.topic) for f in member.follows.all()} == {
        (politics, None),
        (None, water),
    }
    actions = list(ConsentRecord.objects.values_list("action", flat=True))
    assert sorted(actions) == ["preference_change", "subscribe", "unsubscribe"]
    assert b"Your preferences are saved" in client.get(response["Location"]).content


def test_an_unknown_time_zone_is_refused_and_nothing_changes(client, member):
    response = client.post(
        prefs(member), {"action": "save", "newsletters": [], "time_zone": "Mars/Base"}
    )

    assert response.status_code == 400
    assert b"Choose a time zone from the list" in response.content
    assert Subscription.objects.get().status == Subscription.Status.ACTIVE


def test_pause_for_a_week(client, member):
    client.post(prefs(member), {"action": "pause"})

    member.refresh_from_db()
    days = (member.paused_until - timezone.now()).days
    assert days == 6  # seven days less the seconds the test took
    page = client.get(prefs(member)).content.decode()
    assert "paused until" in page


def test_unsubscribe_from_everything(client, member):
    client.post(prefs(member), {"action": "unsubscribe"})

    assert Subscription.objects.get().status == Subscription.Status.UNSUBSCRIBED


def test_download_my_data_holds_everything(client, member, daily, mailoutbox):
    signup(client, "prefs@mail.example", NewsletterFactory(name="Weekly", slug="weekly"))
    client.get(confirm_path(mailoutbox[0]))
    Follow.objects.create(subscriber=member, category=CategoryFactory(name="Economy"))
    TrackingEvent.objects.create(
        esp_event_id="e1",
        event_type="delivered",
        recipient=member.email,
        occurred_at=timezone.now(),
    )

    response = client.get(prefs(member) + "my-data.json")

    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert data["email"] == "prefs@mail.example"
    assert {s["newsletter"] for s in data["subscriptions"]} == {"Mideast Daily", "Weekly"}
    assert data["follows"][0]["name"] == "Economy"
    assert [r["action"] for r in data["consent_history"]] == ["subscribe", "confirm"]
    assert data["consent_history"][0]["consent_text"] == ConsentText.objects.get().text
    assert data["consent_history"][0]["ip_address"] == "203.0.113.7"
    assert data["email_events"][0]["type"] == "delivered"


def test_delete_needs_the_box_ticked(client, member):
    response = client.post(prefs(member), {"action": "delete"})

    assert response.status_code == 400
    assert b"Tick the box" in response.content
    assert Subscriber.objects.exists()


def test_delete_my_data_leaves_only_the_hash(client, member, daily, mailoutbox):
    Follow.objects.create(subscriber=member, category=CategoryFactory())
    TrackingEvent.objects.create(
        esp_event_id="e2", event_type="opened", recipient=member.email, occurred_at=timezone.now()
    )
    url = prefs(member)

    response = client.post(url, {"action": "delete", "confirm": "on"})

    assert response.status_code == 200
    assert b"Your data is deleted" in response.content
    assert not Subscriber.objects.exists()
    assert not Subscription.objects.exists()
    assert not Follow.objects.exists()
    assert not ConsentRecord.objects.exists()
    assert not TrackingEvent.objects.exists()
    suppression = Suppression.objects.get()
    assert suppression.email_sha256 == email_hash("prefs@mail.example")
    assert suppression.reason == Suppression.Reason.DELETED
    assert suppressed_among(["prefs@mail.example"]) == {"prefs@mail.example"}
    # The old link is dead, and signing up again sends nothing.
    assert client.get(url).status_code == 400
    signup(client, "prefs@mail.example", daily)
    assert mailoutbox == []


def test_a_suppressed_reader_is_told_nothing_will_be_sent(client, member):
    from subscriptions.services import suppression_add

    suppression_add(email=member.email, reason=Suppression.Reason.HARD_BOUNCE)

    body = client.get(prefs(member)).content.decode()

    assert "we no longer send to it" in body


def test_download_my_data_includes_the_gifts_and_plans_of_that_address_only(client, member):
    gift = PaidGiftFactory(donor_email="prefs@mail.example", amount_cents=5000)
    plan = PlanFactory(donor_email="prefs@mail.example")
    PaidGiftFactory(donor_email="someone@mail.example")
    PlanFactory(donor_email="someone@mail.example")

    data = json.loads(client.get(prefs(member) + "my-data.json").content)

    assert [g["receipt_number"] for g in data["gifts"]] == [gift.pk]
    assert data["gifts"][0]["amount_minor_units"] == 5000
    assert [p["plan"] for p in data["plans"]] == [plan.pk]


def test_delete_my_data_anonymises_the_gifts_and_calls_nothing_at_stripe(
    client, member, fake_stripe
):
    gift = PaidGiftFactory(donor_email="prefs@mail.example", amount_cents=5000)

    response = client.post(prefs(member), {"action": "delete", "confirm": "on"})

    assert b"kept for tax records" in response.content
    gift.refresh_from_db()
    assert gift.donor_email.startswith("deleted-") and gift.donor_email.endswith("@invalid")
    assert gift.donor_name == "Deleted reader"
    assert gift.amount_cents == 5000 and gift.paid_at is not None
    assert not Gift.objects.filter(donor_email__iexact="prefs@mail.example").exists()
    assert AuditEntry.objects.filter(action=AuditEntry.Action.SUBSCRIBER_DELETE).exists()
    assert AuditEntry.objects.filter(action=AuditEntry.Action.DONOR_ANONYMISE).exists()
    assert fake_stripe.calls == []


def stored_checkout_event(gift: Gift) -> StripeEvent:
    """Stripe's event about the gift's checkout, as the webhook stored it."""
    session = {
        "id": gift.stripe_checkout_session_id,
        "object": "checkout.session",
        "amount_total": gift.amount_cents,
        "customer_email": gift.donor_email,
        "customer_details": {"email": gift.donor_email, "name": gift.donor_name},
    }
    return StripeEvent.objects.create(
        stripe_id="evt_prefs_1",
        type="checkout.session.completed",
        payload={
            "id": "evt_prefs_1",
            "type": "checkout.session.completed",
            "data": {"object": session},
        },
        outcome=StripeEvent.Outcome.PROCESSED,
    )


def test_delete_my_data_scrubs_the_stripe_events_stored_about_the_gifts(
    client, member, fake_stripe
):
    gift = PaidGiftFactory(donor_email="prefs@mail.example", amount_cents=5000)
    stored = stored_checkout_event(gift)

    client.post(prefs(member), {"action": "delete", "confirm": "on"})

    stored.refresh_from_db()
    text = json.dumps(stored.payload)
    assert "prefs@mail.example" not in text and gift.donor_name not in text
    assert stored.payload["data"]["object"]["amount_total"] == 5000
    assert stored.payload["data"]["object"]["id"] == gift.stripe_checkout_session_id


def test_a_reader_giving_monthly_is_told_deleting_does_not_cancel_it(client, member, fake_stripe):
    plan = PlanFactory(donor_email="prefs@mail.example", amount_cents=2000)
    manage = reverse("donations:manage")

    page = client.get(prefs(member)).content.decode()

    assert "Deleting your data does not stop that gift" in page and manage in page
    response = client.post(prefs(member), {"action": "delete", "confirm": "on"})
    body = response.content.decode()
    assert "still running" in body and manage in body
    plan.refresh_from_db()
    assert plan.status == RecurringPlan.Status.ACTIVE
    assert plan.donor_email == "prefs@mail.example"
    assert not Subscriber.objects.exists()
    assert fake_stripe.calls == []


def test_the_privacy_page_says_gifts_are_kept_anonymised(client, db):
    body = client.get(reverse("subscriptions:privacy")).content.decode()

    assert "Gifts are tax records" in body and "anonymised" in body


def test_gifts_stay_as_they_were_if_the_deletion_fails(member, monkeypatch):
    from subscriptions import services
    from subscriptions.services import leaving

    gift = PaidGiftFactory(donor_email="prefs@mail.example")
    stored = stored_checkout_event(gift)

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(leaving, "suppression_add", broken)
    with pytest.raises(RuntimeError):
        services.subscriber_delete(subscriber=member, actor=None, by="reader")

    gift.refresh_from_db()
    assert gift.donor_email == "prefs@mail.example"
    stored.refresh_from_db()
    assert stored.payload["data"]["object"]["customer_email"] == "prefs@mail.example"
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.DONOR_ANONYMISE).exists()
