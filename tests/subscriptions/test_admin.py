"""Staff pages: subscribers with filters and counts, read-only consent, suppression, CSV export."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from django.urls import reverse
from django.utils import timezone

from newsroom.models import AuditEntry
from subscriptions.models import (
    ConsentRecord,
    Edition,
    Follow,
    Subscription,
    Suppression,
    email_hash,
)
from subscriptions.selectors import suppressed_among
from subscriptions.services import suppression_add, suppression_remove
from tests.helpers import login_staff
from tests.newsroom.factories import CategoryFactory, StaffFactory
from tests.subscriptions.factories import SubscriptionFactory
from tests.subscriptions.helpers import signup

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    login_staff(client, StaffFactory())
    return client


@pytest.fixture
def audience(daily):
    active = SubscriptionFactory(
        newsletter=daily, subscriber__email="active@mail.example"
    ).subscriber
    pending = SubscriptionFactory(
        newsletter=daily,
        status=Subscription.Status.PENDING,
        confirmed_at=None,
        subscriber__email="pending@mail.example",
        subscriber__confirmed_at=None,
    ).subscriber
    left = SubscriptionFactory(
        newsletter=daily,
        status=Subscription.Status.UNSUBSCRIBED,
        subscriber__email="left@mail.example",
    ).subscriber
    bounced = SubscriptionFactory(
        newsletter=daily, subscriber__email="bounced@mail.example"
    ).subscriber
    suppression_add(email=bounced.email, reason=Suppression.Reason.HARD_BOUNCE)
    return {"active": active, "pending": pending, "left": left, "bounced": bounced}


def test_changelist_counts_each_status(staff_client, audience):
    response = staff_client.get(reverse("admin:subscriptions_subscriber_changelist"))

    assert response.status_code == 200
    counts = {label: count for label, count, _ in response.context["status_counts"]}
    assert counts == {
        "Active": 1,
        "Waiting for confirmation": 1,
        "Unsubscribed from everything": 1,
        "Suppressed": 1,
    }


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("active", "active"),
        ("pending", "pending"),
        ("unsubscribed", "left"),
        ("suppressed", "bounced"),
    ],
)
def test_filter_by_status(staff_client, audience, status, expected):
    response = staff_client.get(
        reverse("admin:subscriptions_subscriber_changelist"), {"status": status}
    )

    assert [s.email for s in response.context["cl"].result_list] == [audience[expected].email]


def test_filter_by_followed_category_and_search(staff_client, audience):
    politics = CategoryFactory()
    Follow.objects.create(subscriber=audience["left"], category=politics)
    url = reverse("admin:subscriptions_subscriber_changelist")

    by_category = staff_client.get(url, {"follows_category": politics.pk})
    by_search = staff_client.get(url, {"q": "pending@"})

    assert [s.email for s in by_category.context["cl"].result_list] == ["left@mail.example"]
    assert [s.email for s in by_search.context["cl"].result_list] == ["pending@mail.example"]


def test_consent_history_is_read_only(staff_client, client, daily):
    signup(client, "history@mail.example", daily)
    record = ConsentRecord.objects.get()

    page = staff_client.get(
        reverse("admin:subscriptions_subscriber_change", args=[record.subscriber_id])
    )
    change = staff_client.post(
        reverse("admin:subscriptions_consentrecord_change", args=[record.pk]), {"source": "edited"}
    )
    delete = staff_client.post(
        reverse("admin:subscriptions_consentrecord_delete", args=[record.pk]), {"post": "yes"}
    )

    assert page.status_code == 200
    assert "consent history" in page.content.decode().lower()
    assert "203.0.113.7" in page.content.decode()
    assert change.status_code == 403
    assert delete.status_code == 403
    record.refresh_from_db()
    assert record.source == "footer"


def test_csv_export_streams_confirmed_subscribers(staff_client, audience):
    Follow.objects.create(subscriber=audience["active"], category=CategoryFactory(name="Economy"))

    response = staff_client.get(reverse("admin:subscriptions_subscriber_export"))

    assert response.status_code == 200
    assert response.streaming
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["email", "name", "time_zone", "confirmed_at", "newsletters", "follows"]
    assert [row[0] for row in rows[1:]] == ["active@mail.example"]
    assert rows[1][4] == "Mideast Daily" and rows[1][5] == "Economy"


def test_csv_export_is_for_staff_only(client, audience):
    response = client.get(reverse("admin:subscriptions_subscriber_export"))

    assert response.status_code == 302


def test_staff_add_a_suppression_by_address_and_only_the_hash_is_kept(staff_client):
    response = staff_client.post(
        reverse("admin:subscriptions_suppression_add"),
        {"email": "Nope@Mail.Example", "reason": "manual"},
    )

    assert response.status_code == 302
    assert Suppression.objects.get().email_sha256 == email_hash("nope@mail.example")
    found = staff_client.get(
        reverse("admin:subscriptions_suppression_changelist"), {"q": "nope@mail.example"}
    )
    assert len(found.context["cl"].result_list) == 1


@pytest.mark.parametrize(
    "name",
    ["newsletter", "trackingevent", "suppression", "consenttext", "consentrecord"],
)
def test_other_admin_lists_load(staff_client, audience, name):
    assert staff_client.get(reverse(f"admin:subscriptions_{name}_changelist")).status_code == 200


def test_staff_take_an_address_off_the_suppression_list_saying_why_and_it_is_audited(client):
    staffer = login_staff(client, StaffFactory(username="dana"))
    suppression = suppression_add(email="back@mail.example", reason=Suppression.Reason.HARD_BOUNCE)
    url = reverse("admin:subscriptions_suppression_delete", args=[suppression.pk])
    assert 'name="why"' in client.get(url).content.decode()

    before = timezone.now()
    response = client.post(url, {"why": "The reader wrote in: their mailbox works again."})

    assert response.status_code == 302
    assert suppressed_among(["back@mail.example"]) == set()
    entry = AuditEntry.objects.get(action=AuditEntry.Action.SUPPRESSION_REMOVE)
    assert entry.actor == staffer and entry.actor_name == "dana"
    assert entry.at >= before
    assert entry.details["why"] == "The reader wrote in: their mailbox works again."
    assert entry.details["email_sha256"] == email_hash("back@mail.example")
    assert entry.details["reason"] == "hard_bounce"
    assert entry.ip_address == "127.0.0.1"
    assert "back@mail.example" not in entry.object_repr + str(entry.details)


def test_an_address_stays_suppressed_until_staff_say_why(staff_client):
    suppression = suppression_add(email="held@mail.example", reason=Suppression.Reason.COMPLAINT)
    url = reverse("admin:subscriptions_suppression_delete", args=[suppression.pk])

    response = staff_client.post(url, {"why": "  "})

    assert response.status_code == 200 and response.context["form"].errors["why"]
    assert suppressed_among(["held@mail.example"]) == {"held@mail.example"}
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.SUPPRESSION_REMOVE).exists()


def test_the_suppression_list_offers_no_bulk_delete(staff_client):
    suppression = suppression_add(email="held@mail.example", reason=Suppression.Reason.COMPLAINT)
    changelist = reverse("admin:subscriptions_suppression_changelist")
    assert "delete_selected" not in staff_client.get(changelist).content.decode()

    staff_client.post(
        changelist,
        {"action": "delete_selected", "_selected_action": [suppression.pk], "post": "yes"},
    )

    assert Suppression.objects.filter(pk=suppression.pk).exists()


def test_an_address_removed_twice_at_once_is_recorded_once(staff_client):
    suppression = suppression_add(email="back@mail.example", reason=Suppression.Reason.MANUAL)

    assert suppression_remove(suppression=suppression, actor=None, why="first") is True
    assert suppression_remove(suppression=suppression, actor=None, why="second") is False

    entries = AuditEntry.objects.filter(action=AuditEntry.Action.SUPPRESSION_REMOVE)
    assert [entry.details["why"] for entry in entries] == ["first"]


def test_deleting_a_subscriber_in_the_admin_keeps_the_address_suppressed(staff_client, audience):
    subscriber = audience["active"]

    staff_client.post(
        reverse("admin:subscriptions_subscriber_delete", args=[subscriber.pk]), {"post": "yes"}
    )

    assert not type(subscriber).objects.filter(pk=subscriber.pk).exists()
    assert Suppression.objects.filter(
        email_sha256=email_hash("active@mail.example"), reason="deleted"
    ).exists()


def test_staff_give_a_newsletter_its_arabic_name_in_the_admin(staff_client, daily):
    url = reverse("admin:subscriptions_newsletter_change", args=[daily.pk])
    form = staff_client.get(url).content.decode()
    assert 'name="name_ar"' in form and 'name="description_he"' in form

    staff_client.post(
        url,
        {
            "name": daily.name,
            "slug": daily.slug,
            "description": daily.description,
            "cadence": daily.cadence,
            "send_hour": daily.send_hour,
            "language": daily.language,
            "active": "on",
            "top_stories_count": daily.top_stories_count,
            "section_cap": daily.section_cap,
            "name_ar": "الشرق الأوسط اليوم",
            "name_he": "",
            "description_ar": "",
            "description_he": "",
        },
    )

    daily.refresh_from_db()
    assert daily.translations == {"ar": {"name": "الشرق الأوسط اليوم"}}
    assert daily.translated("name", language="ar") == "الشرق الأوسط اليوم"
    assert daily.translated("name", language="he") == "Mideast Daily"


def test_a_staff_member_who_reads_arabic_sees_the_columns_and_fields_named_in_arabic(
    staff_client, audience, daily
):
    staff_client.post(reverse("staff_language"), {"language": "ar"})
    edition = Edition.objects.create(
        newsletter=daily,
        date=date(2026, 11, 2),
        state=Edition.State.SKIPPED,
        skip_reason="No new articles",
        cutoff_end="2026-11-02T04:00:00Z",
    )

    subscribers = staff_client.get(
        reverse("admin:subscriptions_subscriber_changelist")
    ).content.decode()
    edition_page = staff_client.get(
        reverse("admin:subscriptions_edition_change", args=[edition.pk])
    ).content.decode()

    for arabic in ("البريد الإلكتروني", "أُكّد في", "المنطقة الزمنية", "موقوف حتى"):
        assert arabic in subscribers
    for english in ("Confirmed at", "Time zone", "Paused until", "Created at"):
        assert english not in subscribers
    for arabic in ("التاريخ", "سبب التخطي", "بداية الفترة", "نهاية الفترة", "أُعدّ في"):
        assert arabic in edition_page
    for english in ("Skip reason", "Cutoff start", "Cutoff end", "Composed at"):
        assert english not in edition_page
