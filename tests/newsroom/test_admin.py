"""The editors' admin: writing, scheduling, uploading, finding and previewing articles."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from newsroom.models import Article
from tests.newsroom.factories import (
    ArticleFactory,
    AuthorFactory,
    CategoryFactory,
    TopicFactory,
    jpeg_upload,
)

pytestmark = pytest.mark.django_db


def article_form(**overrides) -> dict:
    category = CategoryFactory()
    data = {
        "headline": "Wells rise in the valley",
        "slug": "wells-rise-in-the-valley",
        "dek": "Stone barriers slow the winter floods.",
        "language": "en",
        "body": '<p onclick="x()">First paragraph.</p><script>alert(1)</script><p>Second.</p>',
        "pull_quotes": "The water stays behind the stones.\n\nA second quote.",
        "lead_photo_alt": "A stone barrier",
        "lead_photo_caption": "A barrier across a flood channel.",
        "lead_photo_credit": "Photo: N. Saleh",
        "category": category.pk,
        "topics": [TopicFactory().pk],
        "authors": [AuthorFactory().pk],
        "top_story_rank": "",
        "status": "published",
        "published_at_0": "",
        "published_at_1": "",
    }
    data.update(overrides)
    return data


def test_publishing_from_the_admin_sanitises_and_shows_the_article(staff_client, client):
    response = staff_client.post(
        reverse("admin:newsroom_article_add"), article_form(lead_photo=jpeg_upload())
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    article = Article.objects.get(slug="wells-rise-in-the-valley")
    assert article.body == "<p>First paragraph.</p><p>Second.</p>"
    assert article.pull_quotes == ["The water stays behind the stones.", "A second quote."]
    assert article.published_at is not None
    assert article.lead_photo.name.endswith(".jpg") and article.lead_photo_width == 640
    assert article.authors.count() == 1 and article.topics.count() == 1
    page = client.get(article.get_absolute_url())
    assert page.status_code == 200
    assert b"A barrier across a flood channel." in page.content


def test_scheduling_from_the_admin_keeps_it_hidden_until_its_time(staff_client, client):
    when = timezone.localtime() + timedelta(days=1)
    data = article_form(
        status="scheduled",
        published_at_0=when.strftime("%Y-%m-%d"),
        published_at_1=when.strftime("%H:%M:%S"),
    )

    assert staff_client.post(reverse("admin:newsroom_article_add"), data).status_code == 302

    article = Article.objects.get(slug="wells-rise-in-the-valley")
    assert article.status == Article.Status.SCHEDULED
    assert client.get(article.get_absolute_url()).status_code == 404


def test_scheduling_without_a_time_is_refused_with_a_message(staff_client):
    response = staff_client.post(
        reverse("admin:newsroom_article_add"), article_form(status="scheduled")
    )

    assert response.status_code == 200
    assert "Choose when the article should appear." in response.content.decode()
    assert not Article.objects.exists()


def test_editing_in_the_admin_refreshes_the_cached_page(staff_client, client):
    article = ArticleFactory(headline="Old headline")
    client.get(article.get_absolute_url())
    data = article_form(
        headline="New headline",
        slug=article.slug,
        category=article.category.pk,
        authors=[a.pk for a in article.authors.all()],
    )
    when = timezone.localtime(article.published_at)
    data.update(published_at_0=when.strftime("%Y-%m-%d"), published_at_1=when.strftime("%H:%M:%S"))

    assert (
        staff_client.post(
            reverse("admin:newsroom_article_change", args=[article.pk]), data
        ).status_code
        == 302
    )

    assert b"New headline" in client.get(article.get_absolute_url()).content


def test_changelist_searches_and_filters(staff_client):
    politics = CategoryFactory(name="Politics", slug="politics")
    ArticleFactory(headline="Coalition talks stall", category=politics)
    ArticleFactory(headline="Port traffic doubles")
    ArticleFactory(headline="Coalition draft", status=Article.Status.DRAFT, published_at=None)

    found = staff_client.get(
        reverse("admin:newsroom_article_changelist"), {"q": "coalition"}
    ).content.decode()
    drafts = staff_client.get(
        reverse("admin:newsroom_article_changelist"), {"status__exact": "draft"}
    ).content.decode()
    in_politics = staff_client.get(
        reverse("admin:newsroom_article_changelist"), {"category__id__exact": politics.pk}
    ).content.decode()

    assert (
        "Coalition talks stall" in found
        and "Coalition draft" in found
        and "Port traffic doubles" not in found
    )
    assert "Coalition draft" in drafts and "Coalition talks stall" not in drafts
    assert "Coalition talks stall" in in_politics and "Port traffic doubles" not in in_politics


def test_changelist_links_to_preview_for_drafts_and_view_for_published(staff_client):
    draft = ArticleFactory(status=Article.Status.DRAFT, published_at=None)
    live = ArticleFactory()

    page = staff_client.get(reverse("admin:newsroom_article_changelist")).content.decode()

    assert (
        f'<a href="{draft.get_absolute_url()}" target="_blank" rel="noopener">Preview</a>' in page
    )
    assert (
        f'<a href="{live.get_absolute_url()}" target="_blank" rel="noopener">View on site</a>'
        in page
    )


def test_authors_and_topics_autocomplete(staff_client):
    AuthorFactory(name="Nadia Saleh")
    AuthorFactory(name="Omar Farid")
    TopicFactory(name="Energy")

    authors = staff_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "newsroom", "model_name": "article", "field_name": "authors", "term": "nad"},
    ).json()
    topics = staff_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "newsroom", "model_name": "article", "field_name": "topics", "term": "ene"},
    ).json()

    assert [r["text"] for r in authors["results"]] == ["Nadia Saleh"]
    assert [r["text"] for r in topics["results"]] == ["Energy"]


def test_the_add_form_prepopulates_the_slug_from_the_headline(staff_client):
    page = staff_client.get(reverse("admin:newsroom_article_add")).content.decode()

    assert "prepopulated_fields" in page or "data-prepopulated-fields" in page
    assert '"dependency_ids": ["#id_headline"]' in page or "#id_headline" in page


def test_renaming_a_category_refreshes_cached_pages(staff_client, client):
    article = ArticleFactory()
    client.get(article.get_absolute_url())
    category = article.category

    response = staff_client.post(
        reverse("admin:newsroom_category_change", args=[category.pk]),
        {"name": "Renamed Section", "slug": category.slug, "description": "", "order": 0},
    )

    assert response.status_code == 302
    assert b"Renamed Section" in client.get(article.get_absolute_url()).content


def test_publish_now_and_back_to_draft_actions(staff_client, client):
    draft = ArticleFactory(headline="Ready to go", status=Article.Status.DRAFT, published_at=None)
    live = ArticleFactory(headline="Pulled story")
    client.get("/")

    staff_client.post(
        reverse("admin:newsroom_article_changelist"),
        {"action": "publish_now", "_selected_action": [draft.pk]},
    )
    staff_client.post(
        reverse("admin:newsroom_article_changelist"),
        {"action": "back_to_draft", "_selected_action": [live.pk]},
    )

    home = client.get("/").content
    assert b"Ready to go" in home
    assert b"Pulled story" not in home
    draft.refresh_from_db()
    assert draft.status == Article.Status.PUBLISHED and draft.published_at is not None


def test_publishing_a_live_article_again_keeps_its_publication_time(staff_client):
    live = ArticleFactory()
    first_published = live.published_at

    staff_client.post(
        reverse("admin:newsroom_article_changelist"),
        {"action": "publish_now", "_selected_action": [live.pk]},
    )

    live.refresh_from_db()
    assert live.published_at == first_published


def test_admin_pages_carry_the_newsrooms_name(client, staff_client, settings):
    login_page = client.get(reverse("admin:login")).content.decode()
    dashboard = staff_client.get(reverse("admin:index")).content.decode()

    for page in (login_page, dashboard):
        assert f"{settings.NEWSROOM_NAME} staff" in page
        assert "Django administration" not in page
        assert "Django site admin" not in page


def test_a_translation_joins_its_story_and_each_version_links_to_the_other(staff_client):
    english = ArticleFactory(headline="Wells rise in the valley")

    english_versions_url = reverse("admin:newsroom_article_change", args=[english.pk])
    add = staff_client.get(english_versions_url)
    translate = re.search(r'href="([^"]+language=ar[^"]*)"', add.content.decode()).group(1)
    assert staff_client.get(translate.replace("&amp;", "&")).status_code == 200
    response = staff_client.post(
        reverse("admin:newsroom_article_add"),
        article_form(
            headline="الآبار ترتفع في الوادي",
            slug="الآبار-ترتفع",
            language="ar",
            translation_of=english.pk,
        ),
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    arabic = Article.objects.get(slug="الآبار-ترتفع")
    assert arabic.story == english.story
    english_page = staff_client.get(english_versions_url).content.decode()
    arabic_page = staff_client.get(
        reverse("admin:newsroom_article_change", args=[arabic.pk])
    ).content.decode()
    assert reverse("admin:newsroom_article_change", args=[arabic.pk]) in english_page
    assert english_versions_url in arabic_page


def test_a_second_version_in_one_language_is_refused_with_a_message(staff_client):
    english = ArticleFactory()
    ArticleFactory(language="ar", story=english.story)

    response = staff_client.post(
        reverse("admin:newsroom_article_add"),
        article_form(slug="another-arabic", language="ar", translation_of=english.pk),
    )

    assert response.status_code == 200
    assert "This story already has a version in that language" in response.content.decode()
    assert not Article.objects.filter(slug="another-arabic").exists()


def test_a_categorys_names_in_other_languages_are_edited_in_the_admin(staff_client, client):
    category = CategoryFactory(name="Economy", slug="economy")

    response = staff_client.post(
        reverse("admin:newsroom_category_change", args=[category.pk]),
        {
            "name": "Economy",
            "slug": "economy",
            "description": "",
            "order": 0,
            "name_ar": "الاقتصاد",
            "description_ar": "",
            "name_he": "כלכלה",
            "description_he": "",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    category.refresh_from_db()
    assert category.translations == {"ar": {"name": "الاقتصاد"}, "he": {"name": "כלכלה"}}
    assert ">الاقتصاد</a>" in client.get("/ar/").content.decode()
