from __future__ import annotations

import io
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from PIL import Image

from newsroom.models import Article, Author, Category, Topic

pytestmark = pytest.mark.django_db


def run_seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seed_demo_loads_a_newsroom_and_prints_the_login(client):
    output = run_seed()

    assert Category.objects.count() == 5
    assert Author.objects.count() == 4
    assert Topic.objects.count() >= 4
    assert Article.objects.count() >= 12
    assert Article.objects.filter(status=Article.Status.DRAFT).count() == 1
    assert Article.objects.filter(status=Article.Status.SCHEDULED).count() == 1
    assert Article.objects.filter(language="ar").count() >= 3
    assert Article.objects.filter(language="he").count() >= 3
    assert Article.objects.filter(top_story_rank__isnull=False).count() >= 3
    photo = Article.objects.exclude(lead_photo="").first()
    with photo.lead_photo.open("rb") as handle:
        assert Image.open(handle).format == "JPEG"
    assert photo.lead_photo_caption and photo.lead_photo_credit
    password = output.split("password: ")[1].split()[0]
    editor = get_user_model().objects.get(username="editor")
    assert editor.is_staff and editor.check_password(password)
    assert "http://localhost:8000/" in output
    assert client.get("/").status_code == 200


def test_seed_demo_twice_creates_nothing_twice_and_resets_the_password():
    first = run_seed()
    counts = (
        Article.objects.count(),
        Category.objects.count(),
        Topic.objects.count(),
        Author.objects.count(),
    )

    second = run_seed()

    assert counts == (
        Article.objects.count(),
        Category.objects.count(),
        Topic.objects.count(),
        Author.objects.count(),
    )
    assert get_user_model().objects.filter(username="editor").count() == 1
    new_password = second.split("password: ")[1].split()[0]
    assert new_password != first.split("password: ")[1].split()[0]
    assert get_user_model().objects.get(username="editor").check_password(new_password)


def test_seed_demo_tells_stories_in_three_languages_some_translated(client):
    run_seed()

    for code in ("en", "ar", "he"):
        front = client.get("/" if code == "en" else f"/{code}/").content.decode()
        headlines = Article.objects.published().filter(language=code, top_story_rank=1)
        assert headlines.exists() and headlines.first().headline in front
    stories = Counter(Article.objects.values_list("story", flat=True))
    assert max(stories.values()) == 3  # one story in all three languages
    assert sum(1 for versions in stories.values() if versions > 1) >= 4
    water = Category.objects.get(slug="climate-water")
    assert water.translated("name", language="ar") == "المناخ والمياه"
    assert water.translated("name", language="he") == "אקלים ומים"
    assert Author.objects.get(slug="nadia-saleh").translated("name", language="ar") == "نادية صالح"
    assert "المناخ والمياه" in client.get("/ar/").content.decode()
