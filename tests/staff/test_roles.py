"""The role matrix, through the real admin views: each desk can do its work and no more."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from donations.models import Gift
from staff import roles
from tests.donations.factories import AppealFactory, PaidGiftFactory
from tests.newsroom.factories import ArticleFactory, CategoryFactory
from tests.subscriptions.factories import SubscriberFactory

pytestmark = pytest.mark.django_db


def test_the_migration_made_the_four_roles():
    assert set(Group.objects.values_list("name", flat=True)) >= set(roles.ROLE_NAMES)
    admins = Group.objects.get(name=roles.ADMINS)
    assert admins.permissions.count() == Permission.objects.count()
    development = Group.objects.get(name=roles.DEVELOPMENT)
    codenames = set(development.permissions.values_list("codename", flat=True))
    assert {
        "refund_gift",
        "export_gifts",
        "export_donors",
        "change_appeal",
        "view_gift",
    } <= codenames
    assert "change_article" not in codenames


def test_syncing_the_roles_again_changes_nothing_and_removing_them_keeps_the_accounts(sign_in):
    before = {g.name: set(g.permissions.values_list("pk", flat=True)) for g in Group.objects.all()}
    roles.roles_sync()
    after = {g.name: set(g.permissions.values_list("pk", flat=True)) for g in Group.objects.all()}
    assert after == before

    fundraiser = sign_in(roles.DEVELOPMENT).user
    roles.roles_remove()
    assert not Group.objects.filter(name__in=roles.ROLE_NAMES).exists()
    fundraiser.refresh_from_db()
    assert fundraiser.is_staff and not fundraiser.groups.exists()

    roles.roles_sync()
    assert (
        Group.objects.get(name=roles.DEVELOPMENT)
        .permissions.filter(codename="refund_gift")
        .exists()
    )


def test_a_role_a_staffer_removed_in_the_admin_is_put_back_by_the_next_sync():
    audience = Group.objects.get(name=roles.AUDIENCE)
    audience.permissions.remove(Permission.objects.get(codename="export_subscribers"))
    roles.roles_sync()
    assert audience.permissions.filter(codename="export_subscribers").exists()


def _refund(client, gift):
    return client.post(
        reverse("admin:donations_gift_changelist"),
        {"action": "refund", "_selected_action": [gift.pk]},
    )


def test_an_editor_cannot_see_gifts_nor_refund_one(editor, fake_stripe):
    gift = PaidGiftFactory()
    assert editor.get(reverse("admin:donations_gift_changelist")).status_code == 403
    assert _refund(editor, gift).status_code == 403
    assert fake_stripe.named("refund_create") == []
    assert editor.get(reverse("admin:donations_gift_export_donors")).status_code == 403


def test_an_editor_edits_articles(editor):
    article = ArticleFactory()
    assert (
        editor.get(reverse("admin:newsroom_article_change", args=[article.pk])).status_code == 200
    )
    assert editor.get(reverse("admin:newsroom_category_add")).status_code == 200
    assert editor.get(reverse("admin:newsroom_author_changelist")).status_code == 200


def test_a_fundraiser_cannot_edit_an_article(fundraiser):
    article = ArticleFactory(headline="Water talks resume")
    change = reverse("admin:newsroom_article_change", args=[article.pk])
    assert fundraiser.get(change).status_code == 403
    response = fundraiser.post(change, {"headline": "Changed by the wrong desk"})
    assert response.status_code == 403
    article.refresh_from_db()
    assert article.headline == "Water talks resume"
    assert fundraiser.get(reverse("admin:newsroom_category_add")).status_code == 403


def test_a_fundraiser_runs_appeals_refunds_gifts_and_exports_donors(fundraiser, fake_stripe):
    appeal = AppealFactory()
    assert (
        fundraiser.get(reverse("admin:donations_appeal_change", args=[appeal.pk])).status_code
        == 200
    )
    gift = PaidGiftFactory(stripe_payment_intent_id="pi_dev")
    page = fundraiser.get(reverse("admin:donations_gift_changelist")).content.decode()
    assert 'value="refund"' in page and 'value="export_csv"' in page
    assert "Export donors with lifetime totals" in page
    _refund(fundraiser, gift)
    assert [c["payment_intent"] for c in fake_stripe.named("refund_create")] == ["pi_dev"]
    assert fundraiser.get(reverse("admin:donations_gift_export_donors")).status_code == 200


def test_a_fundraiser_cannot_see_subscribers(fundraiser):
    assert fundraiser.get(reverse("admin:subscriptions_subscriber_changelist")).status_code == 403
    assert fundraiser.get(reverse("admin:subscriptions_subscriber_export")).status_code == 403


def test_audience_cannot_see_gifts_but_runs_subscribers_and_editions(audience_editor):
    PaidGiftFactory()
    assert audience_editor.get(reverse("admin:donations_gift_changelist")).status_code == 403
    assert audience_editor.get(reverse("admin:donations_appeal_changelist")).status_code == 403
    subscriber = SubscriberFactory()
    assert (
        audience_editor.get(
            reverse("admin:subscriptions_subscriber_change", args=[subscriber.pk])
        ).status_code
        == 200
    )
    assert audience_editor.get(reverse("admin:subscriptions_edition_changelist")).status_code == 200
    assert audience_editor.get(reverse("admin:subscriptions_newsletter_add")).status_code == 200
    assert audience_editor.get(reverse("admin:subscriptions_subscriber_export")).status_code == 200
    assert audience_editor.get(reverse("admin:newsroom_article_changelist")).status_code == 403


def test_a_staffer_who_may_see_gifts_but_not_refund_is_not_offered_the_refund(sign_in, fake_stripe):
    client = sign_in(roles.EDITORS)
    client.user.user_permissions.add(Permission.objects.get(codename="view_gift"))
    gift = PaidGiftFactory()
    page = client.get(reverse("admin:donations_gift_changelist")).content.decode()
    assert 'value="refund"' not in page and 'value="export_csv"' not in page
    _refund(client, gift)
    assert fake_stripe.named("refund_create") == []
    gift.refresh_from_db()
    assert gift.refund_requested_at is None and gift.status == Gift.Status.PAID


def test_admins_can_do_everything(administrator, fake_stripe):
    article, subscriber = ArticleFactory(), SubscriberFactory()
    CategoryFactory()
    for url in (
        reverse("admin:newsroom_article_change", args=[article.pk]),
        reverse("admin:donations_gift_changelist"),
        reverse("admin:donations_gift_export_donors"),
        reverse("admin:subscriptions_subscriber_change", args=[subscriber.pk]),
        reverse("admin:subscriptions_subscriber_export"),
        reverse("admin:subscriptions_edition_changelist"),
        reverse("admin:auth_group_changelist"),
        reverse("admin:newsroom_auditentry_changelist"),
    ):
        assert administrator.get(url).status_code == 200, url
    gift = PaidGiftFactory(stripe_payment_intent_id="pi_admin")
    _refund(administrator, gift)
    assert [c["payment_intent"] for c in fake_stripe.named("refund_create")] == ["pi_admin"]


@pytest.mark.django_db(transaction=True)
def test_the_roles_migration_can_be_reversed_and_applied_again():
    from django.core.management import call_command

    call_command("migrate", "newsroom", "0003", verbosity=0)
    assert not Group.objects.filter(name__in=roles.ROLE_NAMES).exists()
    # Every app forward, not newsroom alone: going back to newsroom 0003 also unapplied the
    # other apps' migrations that depend on newsroom's later ones, and the tests after this
    # one need the whole schema.
    call_command("migrate", verbosity=0)
    call_command("migrate", "newsroom", verbosity=0)  # nothing left to do: no change
    assert sorted(
        Group.objects.filter(name__in=roles.ROLE_NAMES).values_list("name", flat=True)
    ) == sorted(roles.ROLE_NAMES)
    assert Group.objects.get(name=roles.EDITORS).permissions.count() == 16


def test_a_staffer_who_may_only_view_editions_cannot_pause_or_resend(sign_in):
    from subscriptions.models import DeliveryBatch, Edition
    from tests.subscriptions.factories import NewsletterFactory

    client = sign_in(roles.EDITORS)
    client.user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_edition", "view_deliverybatch"])
    )
    edition = Edition.objects.create(
        newsletter=NewsletterFactory(), date="2026-11-20", cutoff_end="2026-11-20T04:00Z"
    )
    batch = DeliveryBatch.objects.create(edition=edition, group_key="all", state="in_doubt")
    page = client.get(reverse("admin:subscriptions_edition_changelist")).content.decode()
    assert 'value="pause_editions"' not in page
    client.post(
        reverse("admin:subscriptions_edition_changelist"),
        {"action": "pause_editions", "_selected_action": [edition.pk]},
    )
    client.post(
        reverse("admin:subscriptions_deliverybatch_changelist"),
        {"action": "mark_in_doubt_sent", "_selected_action": [batch.pk]},
    )
    edition.refresh_from_db()
    batch.refresh_from_db()
    assert (edition.state, batch.state) == ("composed", "in_doubt")
