"""A confirmation link confirms the address; it binds only the browser that signed up."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from subscriptions import selectors, tokens
from subscriptions.follows import COOKIE, SIGNUP_COOKIE
from subscriptions.models import Follow, Subscriber, Subscription
from tests.newsroom.factories import CategoryFactory, TopicFactory
from tests.subscriptions.factories import SubscriptionFactory
from tests.subscriptions.helpers import confirm_path, signup

pytestmark = pytest.mark.django_db

FOLLOW = reverse("subscriptions:follow")
STATE = reverse("subscriptions:follow_state")


@pytest.fixture
def sections(db):
    return CategoryFactory(slug="politics"), TopicFactory(slug="water")


def _follow_both(client: Client) -> None:
    client.post(FOLLOW, {"kind": "category", "slug": "politics"})
    client.post(FOLLOW, {"kind": "topic", "slug": "water"})


def _attackers_link(daily, mailoutbox) -> str:
    """An address signed up and confirmed in its owner's browser; its link, still valid."""
    attacker = Client()
    signup(attacker, "attacker@mail.example", daily)
    path = confirm_path(mailoutbox[-1])
    attacker.get(path)
    return path


def _reader(daily) -> Subscriber:
    return SubscriptionFactory(newsletter=daily, subscriber__email="reader@mail.example").subscriber


def _csrf(response) -> str:
    match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', response.content)
    assert match, response.content
    return match.group(1).decode()


def test_someone_elses_link_confirms_but_does_not_bind_this_browser(daily, mailoutbox, sections):
    path = _attackers_link(daily, mailoutbox)
    victim = Client()
    _follow_both(victim)

    response = victim.get(path)

    assert response.status_code == 200
    assert COOKIE not in response.cookies
    assert victim.get(STATE).json() == {
        "categories": ["politics"],
        "topics": ["water"],
        "subscriber": False,
    }
    attacker = Subscriber.objects.get(email="attacker@mail.example")
    assert not Follow.objects.filter(subscriber=attacker).exists()
    assert selectors.subscriber_export(subscriber=attacker)["follows"] == []


def test_a_pending_address_is_confirmed_from_any_browser_without_a_merge(
    daily, mailoutbox, sections
):
    signup(Client(), "elsewhere@mail.example", daily)
    phone = Client()
    _follow_both(phone)

    response = phone.get(confirm_path(mailoutbox[0]))

    assert response.status_code == 200
    assert Subscription.objects.get().status == Subscription.Status.ACTIVE
    assert not Follow.objects.exists()
    assert COOKIE not in response.cookies


def test_another_browser_is_offered_a_choice_and_sees_the_address_masked(
    daily, mailoutbox, sections
):
    path = _attackers_link(daily, mailoutbox)
    victim = Client()
    _follow_both(victim)

    page = victim.get(path).content.decode()

    assert "attacker@mail.example" not in page
    assert "a•••@m•••.example" in page
    assert "on this browser only" in page
    assert reverse("subscriptions:confirm_browser", kwargs={"token": path.split("/")[3]}) in page
    assert 'value="link"' in page and 'value="apart"' in page


def test_the_browser_that_signed_up_is_bound_and_offered_nothing(client, daily, mailoutbox):
    signup(client, "mine@mail.example", daily)

    response = client.get(confirm_path(mailoutbox[0]))

    assert COOKIE in response.cookies
    assert b"mine@mail.example" in response.content
    assert b"confirm_browser" not in response.content and b"/browser/" not in response.content


def test_linking_this_browser_deliberately_merges_its_follows(daily, mailoutbox, sections):
    signup(Client(), "reader@mail.example", daily)
    path = confirm_path(mailoutbox[0])
    phone = Client(enforce_csrf_checks=True)
    _follow_both(phone)
    page = phone.get(path)

    response = phone.post(f"{path}browser/", {"choice": "link", "csrfmiddlewaretoken": _csrf(page)})

    assert response.status_code == 200
    assert b"This browser is now linked" in response.content
    reader = Subscriber.objects.get()
    assert [(f.category.slug if f.category else f.topic.slug) for f in reader.follows.all()] == [
        "politics",
        "water",
    ]
    assert phone.get(STATE).json()["subscriber"] is True


def test_keeping_them_apart_changes_nothing(daily, mailoutbox, sections):
    path = _attackers_link(daily, mailoutbox)
    victim = Client(enforce_csrf_checks=True)
    _follow_both(victim)
    page = victim.get(path)

    response = victim.post(
        f"{path}browser/", {"choice": "apart", "csrfmiddlewaretoken": _csrf(page)}
    )

    assert response.status_code == 200
    assert b"stay on this browser only" in response.content
    assert COOKIE not in response.cookies
    assert not Follow.objects.exists()
    assert victim.get(STATE).json()["subscriber"] is False


def test_linking_a_browser_needs_the_pages_csrf_token(daily, mailoutbox, sections):
    path = _attackers_link(daily, mailoutbox)
    victim = Client(enforce_csrf_checks=True)
    _follow_both(victim)

    response = victim.post(f"{path}browser/", {"choice": "link"})

    assert response.status_code == 403
    assert not Follow.objects.exists()
    assert victim.get(STATE).json()["subscriber"] is False


def test_linking_a_browser_needs_a_valid_link(client, daily, sections):
    response = client.post(
        reverse("subscriptions:confirm_browser", kwargs={"token": "forged"}), {"choice": "link"}
    )

    assert response.status_code == 400
    assert COOKIE not in response.cookies


@pytest.mark.parametrize(
    "header", [{"HTTP_ORIGIN": "https://evil.example"}, {"HTTP_SEC_FETCH_SITE": "cross-site"}]
)
def test_a_sign_up_posted_from_another_site_does_not_mark_the_browser(
    client, daily, mailoutbox, sections, header
):
    _follow_both(client)

    response = signup(client, "attacker@mail.example", daily, **header)
    confirmed = client.get(confirm_path(mailoutbox[0]))

    assert SIGNUP_COOKIE not in response.cookies
    assert COOKIE not in confirmed.cookies
    assert not Follow.objects.exists()


def test_a_sign_up_from_our_own_pages_marks_the_browser(client, daily, mailoutbox, sections):
    _follow_both(client)

    signup(
        client,
        "own@mail.example",
        daily,
        HTTP_ORIGIN="http://testserver",
        HTTP_SEC_FETCH_SITE="same-origin",
    )
    client.get(confirm_path(mailoutbox[0]))

    assert Follow.objects.count() == 2


def test_preferences_and_unsubscribe_links_act_on_their_reader_but_bind_no_browser(
    daily, mailoutbox, sections
):
    _attackers_link(daily, mailoutbox)
    attacker = Subscriber.objects.get()
    victim = Client()
    _follow_both(victim)

    pages = [
        victim.get(tokens.preferences_url(subscriber=attacker)),
        victim.get(tokens.unsubscribe_url(subscriber=attacker)),
        victim.post(tokens.unsubscribe_url(subscriber=attacker)),
    ]

    assert [page.status_code for page in pages] == [200, 200, 200]
    assert all(COOKIE not in page.cookies for page in pages)
    assert Subscription.objects.get().status == Subscription.Status.UNSUBSCRIBED
    assert not Follow.objects.exists()
    assert victim.get(STATE).json()["subscriber"] is False


def test_the_preferences_page_links_this_browser_only_when_asked(daily, mailoutbox, sections):
    path = urlsplit(tokens.preferences_url(subscriber=_reader(daily))).path
    phone = Client(enforce_csrf_checks=True)
    _follow_both(phone)
    page = phone.get(path)
    assert b"are on this browser only" in page.content

    response = phone.post(path, {"action": "link_browser", "csrfmiddlewaretoken": _csrf(page)})

    assert response.status_code == 303 and COOKIE in response.cookies
    assert Follow.objects.count() == 2
    assert phone.get(STATE).json()["subscriber"] is True
    assert b"This browser is now linked" in phone.get(response["Location"]).content
    assert b"link_browser" not in phone.get(path).content
