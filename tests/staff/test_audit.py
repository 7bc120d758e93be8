"""The audit trail: each sensitive act leaves one entry, and nobody can edit the trail."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse

from donations import stripe_api
from newsroom.models import AuditEntry
from staff import roles
from subscriptions import tokens
from subscriptions.models import Subscriber, email_hash
from tests.donations.factories import GiftFactory, PaidGiftFactory
from tests.newsroom.factories import UserFactory
from tests.subscriptions.factories import SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def _entries(action: str, about=None) -> list[AuditEntry]:
    entries = AuditEntry.objects.filter(action=action).order_by("id")
    if about is not None:
        entries = entries.filter(object_id=str(about.pk))
    return list(entries)


# --- refunds ---------------------------------------------------------------------------


def test_a_refund_asked_at_stripe_is_recorded_with_who_and_how_much(fundraiser, fake_stripe):
    gift = PaidGiftFactory(amount_cents=5000, refunded_cents=1000, status="partially_refunded")
    fundraiser.post(
        reverse("admin:donations_gift_changelist"),
        {"action": "refund", "_selected_action": [gift.pk]},
        REMOTE_ADDR="198.51.100.4",
    )
    [entry] = _entries(AuditEntry.Action.GIFT_REFUND)
    assert entry.actor == fundraiser.user
    assert (entry.object_type, entry.object_id) == ("donations.gift", str(gift.pk))
    assert entry.details == {"amount_cents": 4000, "currency": "usd"}
    assert entry.ip_address == "198.51.100.4"


def test_a_refund_stripe_refuses_or_that_is_not_possible_leaves_no_entry(
    fundraiser, fake_stripe, monkeypatch
):
    def refuse(**kwargs):
        raise stripe_api.StripeError("The charge is too old to refund.")

    paid = PaidGiftFactory()
    monkeypatch.setattr(stripe_api, "refund_create", refuse)
    fundraiser.post(
        reverse("admin:donations_gift_changelist"),
        {"action": "refund", "_selected_action": [paid.pk, GiftFactory().pk]},
    )
    assert _entries(AuditEntry.Action.GIFT_REFUND) == []


# --- subscriber deletion -----------------------------------------------------------------


def test_staff_deleting_a_subscriber_is_recorded_without_the_address(audience_editor):
    subscriber = SubscriberFactory(email="leaving@mail.example")
    audience_editor.post(
        reverse("admin:subscriptions_subscriber_delete", args=[subscriber.pk]), {"post": "yes"}
    )
    assert not Subscriber.objects.filter(pk=subscriber.pk).exists()
    [entry] = _entries(AuditEntry.Action.SUBSCRIBER_DELETE)
    assert entry.actor == audience_editor.user
    assert entry.object_id == str(subscriber.pk)
    assert entry.details == {"by": "staff", "email_sha256": email_hash("leaving@mail.example")}
    assert "leaving@mail.example" not in str(entry) + str(entry.details)


def test_staff_deleting_several_subscribers_records_each(audience_editor):
    subscribers = [SubscriberFactory(), SubscriberFactory()]
    audience_editor.post(
        reverse("admin:subscriptions_subscriber_changelist"),
        {
            "action": "delete_selected",
            "_selected_action": [s.pk for s in subscribers],
            "post": "yes",
        },
    )
    assert {e.object_id for e in _entries(AuditEntry.Action.SUBSCRIBER_DELETE)} == {
        str(s.pk) for s in subscribers
    }


def test_a_reader_deleting_their_own_data_is_recorded_without_address_or_ip(client):
    subscription = SubscriptionFactory(subscriber__email="me@mail.example")
    subscriber = subscription.subscriber
    url = tokens.preferences_url(subscriber=subscriber)
    response = client.post(url, {"action": "delete", "confirm": "on"}, REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 200, response.content.decode()[:500]
    assert not Subscriber.objects.filter(pk=subscriber.pk).exists()
    [entry] = _entries(AuditEntry.Action.SUBSCRIBER_DELETE)
    assert entry.actor is None and entry.ip_address is None
    assert entry.details == {"by": "reader", "email_sha256": email_hash("me@mail.example")}


# --- roles and flags -------------------------------------------------------------------


def _user_form(user, **changes) -> dict:
    data = {
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": user.email,
        "is_active": "on",
        "groups": [],
        "user_permissions": [],
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
    }
    if user.is_staff:
        data["is_staff"] = "on"
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def test_giving_a_staffer_a_role_in_the_admin_is_recorded_with_who_did_it(administrator):
    colleague = UserFactory(is_staff=True)
    development = Group.objects.get(name=roles.DEVELOPMENT)
    response = administrator.post(
        reverse("admin:auth_user_change", args=[colleague.pk]),
        _user_form(colleague, groups=[development.pk]),
        REMOTE_ADDR="192.0.2.8",
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert list(colleague.groups.all()) == [development]
    [entry] = _entries(AuditEntry.Action.USER_GROUPS, about=colleague)
    assert entry.actor == administrator.user and entry.ip_address == "192.0.2.8"
    assert entry.object_id == str(colleague.pk)
    assert entry.details == {"added": ["Development"]}


def test_taking_a_role_away_is_recorded(administrator):
    colleague = UserFactory(is_staff=True)
    colleague.groups.add(Group.objects.get(name=roles.AUDIENCE))
    AuditEntry.objects.all().delete()
    administrator.post(
        reverse("admin:auth_user_change", args=[colleague.pk]), _user_form(colleague)
    )
    [entry] = _entries(AuditEntry.Action.USER_GROUPS, about=colleague)
    assert entry.details == {"removed": ["Audience"]} and entry.actor == administrator.user


def test_making_someone_superuser_or_removing_staff_is_recorded(administrator):
    colleague = UserFactory(is_staff=True)
    administrator.post(
        reverse("admin:auth_user_change", args=[colleague.pk]),
        _user_form(colleague, is_superuser="on"),
    )
    administrator.post(
        reverse("admin:auth_user_change", args=[colleague.pk]),
        _user_form(colleague, is_staff=None, is_superuser="on"),
    )
    _created, first, second = _entries(AuditEntry.Action.USER_FLAGS, about=colleague)
    assert _created.details["created"] is True and _created.actor is None
    assert first.details == {"changed": {"is_superuser": [False, True]}, "created": False}
    assert second.details == {"changed": {"is_staff": [True, False]}, "created": False}
    assert first.actor == second.actor == administrator.user


def test_role_changes_outside_the_admin_are_recorded_without_an_actor():
    reader_turned_staff = UserFactory()
    reader_turned_staff.groups.add(Group.objects.get(name=roles.EDITORS))
    reader_turned_staff.is_staff = True
    reader_turned_staff.save()
    group = Group.objects.get(name=roles.EDITORS)
    group.user_set.remove(reader_turned_staff)
    entries = list(AuditEntry.objects.filter(object_id=str(reader_turned_staff.pk)).order_by("id"))
    assert [(e.action, e.actor) for e in entries] == [
        (AuditEntry.Action.USER_GROUPS, None),
        (AuditEntry.Action.USER_FLAGS, None),
        (AuditEntry.Action.USER_GROUPS, None),
    ]
    assert entries[2].details == {"removed": ["Editors"]}


def test_a_login_does_not_write_to_the_trail():
    user = UserFactory(is_staff=True)
    AuditEntry.objects.all().delete()
    response = Client().post(
        reverse("admin:login"), {"username": user.username, "password": "correct horse battery"}
    )
    assert response.status_code == 302
    assert not AuditEntry.objects.exists()


def test_changing_a_role_permissions_in_the_admin_is_recorded(administrator):
    editors = Group.objects.get(name=roles.EDITORS)
    keep = list(editors.permissions.values_list("pk", flat=True))
    refund = Permission.objects.get(codename="refund_gift")
    administrator.post(
        reverse("admin:auth_group_change", args=[editors.pk]),
        {"name": "Editors", "permissions": [*keep, refund.pk]},
    )
    [entry] = _entries(AuditEntry.Action.GROUP_PERMISSIONS, about=editors)
    assert entry.details == {"added": ["donations.refund_gift"]}
    assert entry.actor == administrator.user


# --- the trail in the admin ---------------------------------------------------------------


def test_the_trail_is_read_only_even_for_a_superuser(sign_in, fake_stripe):
    boss = sign_in("superuser")
    PaidGiftFactory(stripe_payment_intent_id="pi_x")
    gift = PaidGiftFactory(stripe_payment_intent_id="pi_y")
    boss.post(
        reverse("admin:donations_gift_changelist"),
        {"action": "refund", "_selected_action": [gift.pk]},
    )
    entry = AuditEntry.objects.get(action=AuditEntry.Action.GIFT_REFUND)

    listing = boss.get(reverse("admin:newsroom_auditentry_changelist") + "?action=gift.refund")
    assert listing.status_code == 200 and str(gift) in listing.content.decode()
    assert (
        boss.get(
            reverse("admin:newsroom_auditentry_changelist") + f"?q={boss.user.username}"
        ).status_code
        == 200
    )
    assert boss.get(reverse("admin:newsroom_auditentry_add")).status_code == 403
    assert (
        boss.post(
            reverse("admin:newsroom_auditentry_delete", args=[entry.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    page = boss.get(reverse("admin:newsroom_auditentry_change", args=[entry.pk])).content.decode()
    assert 'name="_save"' not in page
    boss.post(
        reverse("admin:newsroom_auditentry_change", args=[entry.pk]), {"action": "export.gifts"}
    )
    entry.refresh_from_db()
    assert entry.action == AuditEntry.Action.GIFT_REFUND
    assert not Permission.objects.filter(
        content_type__app_label="newsroom",
        codename__in=["add_auditentry", "change_auditentry", "delete_auditentry"],
    ).exists()


def test_only_admins_see_the_trail(fundraiser, administrator):
    assert fundraiser.get(reverse("admin:newsroom_auditentry_changelist")).status_code == 403
    assert administrator.get(reverse("admin:newsroom_auditentry_changelist")).status_code == 200
