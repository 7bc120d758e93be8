"""Following categories and topics: a cookie for anonymous readers, /for-you/, a JSON state."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.http import HttpResponse
from django.urls import reverse
from django.utils import timezone

from newsroom.models import Article
from subscriptions.follows import COOKIE, link_subscriber
from subscriptions.models import Follow
from tests.newsroom.factories import ArticleFactory, CategoryFactory, TopicFactory
from tests.subscriptions.factories import SubscriberFactory

pytestmark = pytest.mark.django_db


FOLLOW = "/follow/"


def state(client) -> dict:
    return client.get(reverse("subscriptions:follow_state")).json()


def test_follow_without_javascript_answers_with_a_page_and_sets_the_cookie(client):
    CategoryFactory(name="Politics", slug="politics")

    response = client.post(
        FOLLOW, {"kind": "category", "slug": "politics", "next": "/category/politics/"}
    )

    assert response.status_code == 200
    assert "You follow <bdi>Politics</bdi>" in response.content.decode()
    assert b'href="/category/politics/"' in response.content
    assert COOKIE in response.cookies
    assert response.cookies[COOKIE]["httponly"]
    assert state(client) == {"categories": ["politics"], "topics": [], "subscriber": False}


def test_the_plain_button_toggles(client):
    CategoryFactory(slug="politics")

    client.post(FOLLOW, {"kind": "category", "slug": "politics", "action": "toggle"})
    response = client.post(FOLLOW, {"kind": "category", "slug": "politics", "action": "toggle"})

    assert b"You no longer follow" in response.content
    assert state(client)["categories"] == []


def test_with_javascript_it_answers_json(client):
    TopicFactory(name="Water", slug="water")

    response = client.post(
        FOLLOW,
        {"kind": "topic", "slug": "water", "action": "follow"},
        HTTP_ACCEPT="application/json",
    )
    again = client.post(
        FOLLOW,
        {"kind": "topic", "slug": "water", "action": "follow"},
        HTTP_ACCEPT="application/json",
    )

    assert response.json() == {"kind": "topic", "slug": "water", "name": "Water", "following": True}
    assert again.json()["following"] is True
    assert state(client)["topics"] == ["water"]


def test_an_unknown_category_is_a_404_and_changes_nothing(client):
    CategoryFactory(slug="politics")
    client.post(FOLLOW, {"kind": "category", "slug": "politics"})

    response = client.post(FOLLOW, {"kind": "category", "slug": "no-such-thing"})

    assert response.status_code == 404
    assert "There is no category “no-such-thing” to follow." in response.content.decode()
    assert COOKIE not in response.cookies
    assert state(client)["categories"] == ["politics"]


def test_an_unknown_kind_is_a_400(client):
    response = client.post(
        FOLLOW, {"kind": "author", "slug": "someone"}, HTTP_ACCEPT="application/json"
    )

    assert response.status_code == 400
    assert response.json() == {"error": "Only categories and topics can be followed."}


def test_a_get_is_not_allowed(client):
    assert client.get(FOLLOW).status_code == 405


def test_an_outside_next_url_is_not_offered(client):
    CategoryFactory(slug="politics")

    response = client.post(
        FOLLOW, {"kind": "category", "slug": "politics", "next": "https://evil.example/"}
    )

    assert b"evil.example" not in response.content


def test_a_tampered_cookie_counts_as_no_follows(client):
    client.cookies[COOKIE] = "eyJjIjpbMV19:forged:signature"

    assert state(client) == {"categories": [], "topics": [], "subscriber": False}


def test_a_linked_browser_writes_the_subscribers_follows(client, rf):
    subscriber = SubscriberFactory()
    politics = CategoryFactory(slug="politics")
    response = HttpResponse()
    link_subscriber(response, subscriber)
    client.cookies[COOKIE] = response.cookies[COOKIE].value

    client.post(FOLLOW, {"kind": "category", "slug": "politics", "action": "follow"})

    assert list(Follow.objects.values_list("subscriber", "category")) == [
        (subscriber.pk, politics.pk)
    ]
    client.post(FOLLOW, {"kind": "category", "slug": "politics", "action": "unfollow"})
    assert not Follow.objects.exists()


def test_for_you_prompts_when_nothing_is_followed(client):
    CategoryFactory(name="Politics")

    response = client.get(reverse("subscriptions:for_you"))

    assert response.status_code == 200
    assert b"Personalise your news" in response.content
    assert b"Follow Politics" in response.content
    assert "no-store" in response["Cache-Control"]


def test_for_you_lists_the_latest_articles_of_what_is_followed_newest_first(client):
    politics, sport = CategoryFactory(slug="politics"), CategoryFactory(slug="sport")
    water = TopicFactory(slug="water")
    now = timezone.now()
    old = ArticleFactory(
        category=politics, headline="Older politics story", published_at=now - timedelta(days=2)
    )
    new = ArticleFactory(
        category=politics, headline="Newer politics story", published_at=now - timedelta(hours=1)
    )
    tagged = ArticleFactory(
        category=sport,
        headline="Stadium water story",
        topics=[water],
        published_at=now - timedelta(hours=5),
    )
    ArticleFactory(category=sport, headline="Unfollowed sport story")
    ArticleFactory(
        category=politics,
        headline="Draft politics story",
        status=Article.Status.DRAFT,
        published_at=None,
    )
    ArticleFactory(
        category=politics,
        headline="Future politics story",
        status=Article.Status.SCHEDULED,
        published_at=now + timedelta(days=1),
    )
    client.post(FOLLOW, {"kind": "category", "slug": "politics"})
    client.post(FOLLOW, {"kind": "topic", "slug": "water"})

    response = client.get(reverse("subscriptions:for_you"))

    body = response.content.decode()
    positions = [body.index(a.headline) for a in (new, tagged, old)]
    assert positions == sorted(positions)
    assert "Unfollowed sport story" not in body
    assert "Draft politics story" not in body
    assert "Future politics story" not in body
    assert "Following" in body  # server-side state on the per-reader page


def test_the_follow_button_include_works_for_categories_and_topics(client):
    from django.template import Context, Template
    from django.test import RequestFactory

    category, topic = (
        CategoryFactory(name="Politics", slug="politics"),
        TopicFactory(name="Water", slug="water"),
    )
    request = RequestFactory().get("/category/politics/")
    template = Template(
        '{% include "subscriptions/_follow_button.html" with category=category %}'
        '{% include "subscriptions/_follow_button.html" with topic=topic %}'
    )

    html = template.render(Context({"request": request, "category": category, "topic": topic}))

    assert 'data-follow-kind="category" data-follow-slug="politics"' in html
    assert 'data-follow-kind="topic" data-follow-slug="water"' in html
    assert 'name="next" value="/category/politics/"' in html
    assert "csrfmiddlewaretoken" not in html
    assert 'aria-pressed="false"' in html


def test_following_works_while_redis_is_down(client, redis_cache_proxy):
    CategoryFactory(name="Politics", slug="politics")
    redis_cache_proxy.mode = "refuse"

    response = client.post(FOLLOW, {"kind": "category", "slug": "politics"})

    assert response.status_code == 200
    assert b"You follow <bdi>Politics</bdi>" in response.content
