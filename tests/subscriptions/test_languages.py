"""Mideast Daily in the reader's language: chosen on signing up, changed on the preferences page."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.test import TestCase
from django.urls import reverse
from django.utils import dateformat, timezone, translation

from subscriptions.models import Subscriber
from tests.subscriptions.digest.helpers import news, plan_and_send, subscribe

pytestmark = pytest.mark.django_db

ARABIC_STORY = "استئناف محادثات وقف إطلاق النار في القاهرة"
HEBREW_STORY = "חידוש השיחות על הפסקת האש בקהיר"
ENGLISH_STORY = "Ceasefire talks resume in Cairo"


def signup_at(client, path: str, newsletter, **extra):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(
            path,
            {"email": "salma@mail.example", "newsletters": [newsletter.pk], **extra},
            REMOTE_ADDR="203.0.113.7",
        )


def path_of(url: str) -> str:
    return urlsplit(url).path


def test_a_reader_signing_up_at_the_arabic_page_gets_it_all_in_arabic(
    client, daily, mailoutbox, site_url, django_capture_on_commit_callbacks
):
    news(headline=ENGLISH_STORY, top_story_rank=1)
    news(headline=ARABIC_STORY, language="ar", top_story_rank=1)

    page = signup_at(client, "/ar/newsletters/subscribe/", daily)

    assert '<html lang="ar" dir="rtl">' in page.content.decode()
    [confirmation] = mailoutbox
    html = confirmation.alternatives[0][0]
    assert confirmation.subject == "أكّد اشتراكك في Mideast Daily"
    assert '<html lang="ar" dir="rtl">' in html
    assert 'dir="rtl"' in html.split("<table", 1)[1].split(">", 1)[0]
    assert "أكّد اشتراكي" in html and "Confirm my subscription" not in html
    confirm = re.search(r"https://news.example(/ar/newsletters/confirm/[^\s]+/)", confirmation.body)
    assert confirm, confirmation.body

    confirmed = client.get(confirm.group(1)).content.decode()
    assert '<html lang="ar" dir="rtl">' in confirmed and "تمّ اشتراكك" in confirmed

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    digest = mailoutbox[1]
    html = digest.alternatives[0][0]
    assert '<html lang="ar" dir="rtl">' in html
    # Outlook's table layout ignores CSS direction: the tables and cells say it themselves.
    assert re.search(r'<table[^>]*class="card"[^>]*dir="rtl"', html)
    assert 'align="right"' in html and 'align="left"' not in html
    assert "أبرز القصص" in html and "صباح الخير" in html
    assert ARABIC_STORY in html and ARABIC_STORY in digest.subject
    assert ENGLISH_STORY not in html
    with translation.override("ar"):
        month = dateformat.format(timezone.localdate(), "F")
        weekday = dateformat.format(timezone.localdate(), "l")
    assert month in digest.subject
    assert f"{weekday}، " in html  # the Arabic comma
    assert re.search(r"https://news.example/ar/preferences/[^\"]+/", html)
    assert "https://news.example/ar/unsubscribe/" in digest.extra_headers["List-Unsubscribe"]


def test_the_page_language_is_only_the_default_the_reader_chooses(client, daily, mailoutbox):
    signup_at(client, "/ar/newsletters/subscribe/", daily, language="he")

    assert Subscriber.objects.get().language == "he"
    assert '<html lang="he" dir="rtl">' in mailoutbox[0].alternatives[0][0]


def test_a_language_the_site_lacks_is_refused_and_nobody_is_signed_up(client, daily, mailoutbox):
    response = signup_at(client, "/newsletters/subscribe/", daily, language="fr")

    assert response.status_code == 400
    assert "Choose Arabic, Hebrew or English." in response.content.decode()
    assert not Subscriber.objects.exists() and not mailoutbox


def test_changing_the_language_on_the_preferences_page_changes_the_next_digest(
    client, daily, mailoutbox, site_url, django_capture_on_commit_callbacks
):
    news(headline=ARABIC_STORY, language="ar", top_story_rank=1)
    news(headline=HEBREW_STORY, language="he", top_story_rank=1)
    reader = subscribe(daily, language="ar")
    with translation.override("ar"):
        page = client.get(reverse("subscriptions:preferences", kwargs={"token": _token(reader)}))
    assert '<html lang="ar" dir="rtl">' in page.content.decode()

    saved = client.post(
        page.wsgi_request.path,
        {"action": "save", "newsletters": [daily.pk], "time_zone": "UTC", "language": "he"},
    )

    # The page answers in the language just chosen.
    assert saved.status_code == 303 and saved["Location"].startswith("/he/preferences/")
    plan_and_send(django_capture_on_commit_callbacks, send_now=True)
    [digest] = mailoutbox
    html = digest.alternatives[0][0]
    assert '<html lang="he" dir="rtl">' in html
    assert HEBREW_STORY in html and ARABIC_STORY not in html


def test_readers_of_each_language_share_one_render_per_followed_set(
    daily, mailoutbox, django_capture_on_commit_callbacks
):
    from subscriptions.digest import render

    news(headline=ENGLISH_STORY, top_story_rank=1)
    news(headline=ARABIC_STORY, language="ar", top_story_rank=1)
    for language in ("en", "en", "ar", "ar", "ar"):
        subscribe(daily, language=language)
    render._RENDERS.clear()

    [result] = plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    assert len(result.groups) == 2 and len(render._RENDERS) == 2
    bodies = {message.to[0]: message.alternatives[0][0] for message in mailoutbox}
    assert sum(ARABIC_STORY in html for html in bodies.values()) == 3
    assert sum(ENGLISH_STORY in html for html in bodies.values()) == 2


def test_a_reader_of_a_language_without_news_today_gets_no_empty_digest(
    daily, mailoutbox, django_capture_on_commit_callbacks
):
    news(headline=ENGLISH_STORY, top_story_rank=1)
    subscribe(daily, language="en")
    subscribe(daily, language="he")

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    [digest] = mailoutbox
    assert ENGLISH_STORY in digest.subject


def _token(subscriber) -> str:
    from subscriptions import tokens

    return path_of(tokens.preferences_url(subscriber=subscriber)).rstrip("/").rsplit("/", 1)[1]


def test_a_followed_section_is_named_and_linked_in_the_readers_language(
    daily, mailoutbox, django_capture_on_commit_callbacks
):
    from tests.newsroom.factories import CategoryFactory

    economy = CategoryFactory(
        name="Economy", slug="economy", translations={"ar": {"name": "الاقتصاد"}}
    )
    daily.top_stories_count = 1
    daily.save()
    news(headline=ARABIC_STORY, language="ar", top_story_rank=1)
    news(headline="حركة الميناء تتضاعف", language="ar", category=economy)
    subscribe(daily, language="ar", follows=[economy])

    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    [digest] = mailoutbox
    html = digest.alternatives[0][0]
    assert "الاقتصاد" in html and ">Economy<" not in html
    assert "/ar/category/economy/" in html


DAILY_IN_ARABIC = {
    "ar": {"name": "الشرق الأوسط اليوم", "description": "أهم أخبار المنطقة كل صباح."}
}


def test_the_arabic_pages_name_the_newsletter_in_arabic_where_staff_gave_it(client, daily):
    daily.translations = DAILY_IN_ARABIC
    daily.save()

    arabic = client.get("/ar/newsletters/").content.decode()
    english = client.get("/newsletters/").content.decode()
    hebrew = client.get("/he/newsletters/").content.decode()

    assert "الشرق الأوسط اليوم" in arabic and "أهم أخبار المنطقة كل صباح." in arabic
    assert "Mideast Daily" not in arabic.split("<main", 1)[1]
    assert "Mideast Daily" in english and "الشرق الأوسط اليوم" not in english
    # No Hebrew name given: the site's own stands in.
    assert "Mideast Daily" in hebrew and "الشرق الأوسط اليوم" not in hebrew


def test_an_arabic_reader_gets_the_newsletters_arabic_name_in_every_email(
    client, daily, mailoutbox, site_url, django_capture_on_commit_callbacks
):
    daily.translations = DAILY_IN_ARABIC
    daily.save()
    news(headline=ARABIC_STORY, language="ar", top_story_rank=1)

    signup_at(client, "/ar/newsletters/subscribe/", daily)
    [confirmation] = mailoutbox
    confirm = re.search(r"https://news.example(/ar/newsletters/confirm/[^\s]+/)", confirmation.body)
    client.get(confirm.group(1))
    plan_and_send(django_capture_on_commit_callbacks, send_now=True)

    digest = mailoutbox[1]
    assert confirmation.subject == "أكّد اشتراكك في الشرق الأوسط اليوم"
    assert "الشرق الأوسط اليوم" in confirmation.alternatives[0][0]
    assert digest.subject.startswith("الشرق الأوسط اليوم")
    html = digest.alternatives[0][0]
    assert re.search(r'<div class="masthead-name"[^>]*>الشرق الأوسط اليوم</div>', html)
    assert "Mideast Daily" not in digest.alternatives[0][0]


def test_the_preferences_page_names_newsletters_and_sections_in_the_readers_language(client, daily):
    from tests.newsroom.factories import CategoryFactory

    daily.translations = DAILY_IN_ARABIC
    daily.save()
    CategoryFactory(name="Economy", slug="economy", translations={"ar": {"name": "الاقتصاد"}})
    reader = subscribe(daily, language="ar")
    with translation.override("ar"):
        url = reverse("subscriptions:preferences", kwargs={"token": _token(reader)})

    page = client.get(url).content.decode()

    assert "الشرق الأوسط اليوم" in page and "الاقتصاد" in page
    assert "Mideast Daily" not in page and ">Economy<" not in page


def test_an_arabic_reader_who_leaves_reads_that_their_subscription_ended(client, daily):
    from subscriptions import tokens

    reader = subscribe(daily, language="ar")

    page = client.post(path_of(tokens.unsubscribe_url(subscriber=reader))).content.decode()

    # The page's own title, not the staff dashboard's column ("they unsubscribed").
    assert "<title>أُلغي الاشتراك ·" in page and "ألغوا الاشتراك" not in page
