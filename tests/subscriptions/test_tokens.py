"""Links and cookies name a reader by a random public id: no row id, no address."""

from __future__ import annotations

import json
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
import time_machine
from django.core import signing
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from subscriptions import tokens
from subscriptions.follows import COOKIE, SALT
from subscriptions.models import Subscriber, Subscription
from tests.subscriptions.factories import SubscriberFactory, SubscriptionFactory
from tests.subscriptions.helpers import confirm_path, signup

pytestmark = pytest.mark.django_db

STATE = reverse("subscriptions:follow_state")


def readable(signed: str) -> dict:
    """What anyone who sees a token or cookie can read from it, without the key."""
    data = signed.split(":")[0]
    raw = signing.b64_decode(data.removeprefix(".").encode())
    return json.loads(zlib.decompress(raw) if data.startswith(".") else raw)


def _token(url: str) -> str:
    return urlsplit(url).path.split("/")[-2]


def _older(purpose: str, subscriber, **extra) -> str:
    """A link as made before public ids: it names the row id."""
    payload = {"s": subscriber.pk, "e": tokens.fingerprint(subscriber.email), **extra}
    return signing.dumps(payload, salt=purpose, compress=True)


@pytest.fixture
def member(daily):
    return SubscriptionFactory(newsletter=daily, subscriber__email="reader@mail.example")


@pytest.mark.parametrize(
    "url",
    [
        lambda s, n: tokens.confirm_url(subscriber=s),
        lambda s, n: tokens.preferences_url(subscriber=s),
        lambda s, n: tokens.unsubscribe_url(subscriber=s),
        lambda s, n: tokens.unsubscribe_url(subscriber=s, newsletter=n),
    ],
    ids=["confirm", "preferences", "unsubscribe", "unsubscribe-one"],
)
def test_a_link_shows_neither_the_row_id_nor_the_address(member, url):
    subscriber = member.subscriber
    link = url(subscriber, member.newsletter)

    payload = readable(_token(link))

    assert "s" not in payload
    assert payload["p"] == subscriber.public_id.hex
    # Only the newsletter keeps its row id: the list of newsletters is public.
    named = [value for key, value in payload.items() if key != "n"]
    assert subscriber.pk not in named and str(subscriber.pk) not in named
    assert "reader" not in link and "reader" not in json.dumps(payload)
    assert set(payload) <= {"p", "e", "n"}


def test_the_follows_cookie_shows_neither_the_row_id_nor_the_address(client, daily, mailoutbox):
    signup(client, "reader@mail.example", daily)
    client.get(confirm_path(mailoutbox[0]))
    subscriber = Subscriber.objects.get()

    payload = readable(client.cookies[COOKIE].value)

    assert payload == {"p": subscriber.public_id.hex, "e": tokens.fingerprint(subscriber.email)}


def test_every_subscriber_has_a_different_public_id(db):
    ids = {SubscriberFactory().public_id for _ in range(5)}

    assert len(ids) == 5


def test_an_older_confirmation_link_still_confirms(client, daily, mailoutbox):
    signup(Client(), "early@mail.example", daily)
    token = _older(tokens.CONFIRM, Subscriber.objects.get())

    response = client.get(reverse("subscriptions:confirm", kwargs={"token": token}))

    assert response.status_code == 200
    assert Subscription.objects.get().status == Subscription.Status.ACTIVE


def test_an_older_confirmation_link_still_expires_after_a_week(client, daily, mailoutbox):
    signup(Client(), "early@mail.example", daily)
    token = _older(tokens.CONFIRM, Subscriber.objects.get())

    with time_machine.travel(timezone.now() + timedelta(days=7, minutes=1)):
        response = client.get(reverse("subscriptions:confirm", kwargs={"token": token}))

    assert response.status_code == 400
    assert Subscription.objects.get().status == Subscription.Status.PENDING


def test_older_preferences_and_unsubscribe_links_still_work(client, member):
    subscriber = member.subscriber
    preferences = _older(tokens.PREFERENCES, subscriber)
    unsubscribe = _older(tokens.UNSUBSCRIBE, subscriber, n=member.newsletter.pk)

    page = client.get(reverse("subscriptions:preferences", kwargs={"token": preferences}))
    done = client.post(reverse("subscriptions:unsubscribe", kwargs={"token": unsubscribe}))

    assert page.status_code == 200 and b"reader@mail.example" in page.content
    assert done.status_code == 200
    member.refresh_from_db()
    assert member.status == Subscription.Status.UNSUBSCRIBED


def test_an_older_follows_cookie_still_names_its_reader(client, member):
    client.cookies[COOKIE] = signing.dumps(
        {"s": member.subscriber.pk, "e": tokens.fingerprint(member.subscriber.email)},
        salt=SALT,
        compress=True,
    )

    assert client.get(STATE).json()["subscriber"] is True


@pytest.mark.parametrize(
    "payload",
    [
        lambda s: {"p": s.public_id.hex, "e": tokens.fingerprint(s.email)},
        lambda s: {"s": s.pk, "e": tokens.fingerprint(s.email)},
    ],
    ids=["public-id", "row-id"],
)
def test_a_forged_link_is_refused_in_either_form(client, member, payload):
    forged = signing.dumps(payload(member.subscriber), key="guessed", salt=tokens.UNSUBSCRIBE)

    response = client.post(reverse("subscriptions:unsubscribe", kwargs={"token": forged}))

    assert response.status_code == 400
    member.refresh_from_db()
    assert member.status == Subscription.Status.ACTIVE


def test_a_signed_link_with_a_malformed_public_id_is_refused(client, member):
    token = signing.dumps(
        {"p": "not-a-uuid", "e": tokens.fingerprint(member.subscriber.email)},
        salt=tokens.PREFERENCES,
    )

    response = client.get(reverse("subscriptions:preferences", kwargs={"token": token}))

    assert response.status_code == 400


def test_a_link_for_a_deleted_reader_is_refused_though_its_row_id_comes_back(client, member):
    subscriber = member.subscriber
    url = tokens.preferences_url(subscriber=subscriber)
    pk = subscriber.pk
    subscriber.delete()
    Subscriber.objects.create(pk=pk, email="reader@mail.example")

    response = client.get(urlsplit(url).path)

    assert response.status_code == 400


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_existing_readers_distinct_public_ids():
    before = [("subscriptions", "0007_subscriber_public_id")]
    after = [("subscriptions", "0009_subscriber_public_id_unique")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old_apps = executor.loader.project_state(before).apps
    OldSubscriber = old_apps.get_model("subscriptions", "Subscriber")
    for n in range(3):
        OldSubscriber.objects.create(email=f"old{n}@mail.example")

    executor = MigrationExecutor(connection)
    executor.migrate(after)
    new_apps = executor.loader.project_state(after).apps
    ids = list(new_apps.get_model("subscriptions", "Subscriber").objects.values_list("public_id"))

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert len(ids) == 3 and None not in {i for (i,) in ids} and len(set(ids)) == 3


# Links as signing.dumps(..., compress=True) made them before tokens were signed in
# tokens.make_token, under this key, on 1 November 2026 at noon UTC, for this reader.
OLD_KEY = "insecure-laptop-only-key-change-me-0123456789abcdefghijklmnopqrstuvwxyz"
SIGNED_AT = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
OLD_READER = {
    "public_id": uuid.UUID("0f6b2c1e9d8a4b7c8e5f3a2b1c0d9e8f"),
    "email": "Reader@Mail.example",
}
OLD_PREFERENCES = (
    "eyJwIjoiMGY2YjJjMWU5ZDhhNGI3YzhlNWYzYTJiMWMwZDllOGYiLCJlIjoiOTBiZmE4OWI1NjllNzljZiJ9"
    ":1xNUEC:VJ_nS6L8pHP4Sf4_gLsVtVp4ZONmtTqrvV53PpR8UiM"
)
OLD_UNSUBSCRIBE_FROM_3 = (
    "eyJwIjoiMGY2YjJjMWU5ZDhhNGI3YzhlNWYzYTJiMWMwZDllOGYiLCJlIjoiOTBiZmE4OWI1NjllNzljZiIsIm4iOjN9"
    ":1xNUEC:KGi4aXwMU4mehd-bFS_wpED5j_isz_-KRHzSidErACk"
)


@pytest.fixture
def old_reader(settings):
    settings.SECRET_KEY = OLD_KEY
    return SubscriberFactory(**OLD_READER)


def test_a_preferences_link_sent_before_still_opens_until_it_expires(client, old_reader):
    url = reverse("subscriptions:preferences", kwargs={"token": OLD_PREFERENCES})

    with time_machine.travel(SIGNED_AT + timedelta(days=89)):
        page = client.get(url)
    with time_machine.travel(SIGNED_AT + timedelta(days=91)):
        expired = client.get(url)

    assert page.status_code == 200 and b"reader@mail.example" in page.content.lower()
    assert expired.status_code == 400


def test_an_unsubscribe_link_sent_before_still_names_its_reader_and_newsletter(old_reader):
    with time_machine.travel(SIGNED_AT + timedelta(days=30)):
        payload = tokens.read_token(
            tokens.UNSUBSCRIBE, OLD_UNSUBSCRIBE_FROM_3, max_age=tokens.UNSUBSCRIBE_MAX_AGE
        )

    assert payload == {"p": OLD_READER["public_id"].hex, "e": "90bfa89b569e79cf", "n": 3}


def test_links_are_signed_as_they_were(old_reader):
    newsletter = SimpleNamespace(pk=3)

    with time_machine.travel(SIGNED_AT, tick=False):
        preferences = tokens.preferences_url(subscriber=old_reader)
        unsubscribe = tokens.unsubscribe_url(subscriber=old_reader, newsletter=newsletter)

    assert _token(preferences) == OLD_PREFERENCES
    assert _token(unsubscribe) == OLD_UNSUBSCRIBE_FROM_3


def test_a_link_for_one_purpose_is_refused_for_another(client, member):
    preferences = _token(tokens.preferences_url(subscriber=member.subscriber))

    response = client.post(reverse("subscriptions:unsubscribe", kwargs={"token": preferences}))

    assert response.status_code == 400
    member.refresh_from_db()
    assert member.status == Subscription.Status.ACTIVE


def test_a_link_with_its_signature_altered_is_refused(client, member):
    token = _token(tokens.preferences_url(subscriber=member.subscriber))
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")

    response = client.get(reverse("subscriptions:preferences", kwargs={"token": altered}))

    assert response.status_code == 400


def test_a_link_sent_before_the_key_was_rotated_still_works(client, old_reader, settings):
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-new-key-" + "x" * 50, [OLD_KEY]
    url = reverse("subscriptions:preferences", kwargs={"token": OLD_PREFERENCES})

    with time_machine.travel(SIGNED_AT + timedelta(days=1)):
        page = client.get(url)

    assert page.status_code == 200


def test_a_link_signed_with_a_key_no_longer_kept_is_refused(client, old_reader, settings):
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-new-key-" + "x" * 50, []
    url = reverse("subscriptions:preferences", kwargs={"token": OLD_PREFERENCES})

    with time_machine.travel(SIGNED_AT + timedelta(days=1)):
        page = client.get(url)

    assert page.status_code == 400


@pytest.mark.parametrize("language", ["ar", "he", "en"])
def test_each_readers_links_open_their_pages_in_their_language(client, member, language):
    member.subscriber.language = language
    links = [
        tokens.preferences_url(subscriber=member.subscriber),
        tokens.unsubscribe_url(subscriber=member.subscriber, newsletter=member.newsletter),
    ]

    pages = [client.get(urlsplit(link).path) for link in links]

    assert [page.status_code for page in pages] == [200, 200]
    assert [page["Content-Language"] for page in pages] == [language, language]


@pytest.mark.parametrize("newsletter", [SimpleNamespace(pk=3), None], ids=["list", "all"])
def test_a_readers_two_links_made_together_are_those_made_one_by_one(old_reader, newsletter):
    with time_machine.travel(SIGNED_AT, tick=False):
        together = tokens.reader_links(subscriber=old_reader, newsletter=newsletter)
        one_by_one = (
            tokens.preferences_url(subscriber=old_reader),
            tokens.unsubscribe_url(subscriber=old_reader, newsletter=newsletter),
        )

    assert together == one_by_one
    assert _token(together[0]) == OLD_PREFERENCES


@pytest.mark.django_db
def test_a_batchs_links_made_together_are_each_readers_own_in_their_language():
    readers = [SubscriberFactory(language=code) for code in ("en", "ar", "he", "en")]
    newsletter = SimpleNamespace(pk=3)

    with time_machine.travel(SIGNED_AT, tick=False):
        together = list(tokens.readers_links(readers, newsletter=newsletter))
        one_by_one = [tokens.reader_links(subscriber=r, newsletter=newsletter) for r in readers]

    assert together == one_by_one
    assert len({urlsplit(preferences).path.split("/")[1] for preferences, _ in together}) == 3
