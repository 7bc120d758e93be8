"""Links and cookies name a reader by a random public id: no row id, no address."""

from __future__ import annotations

import json
import zlib
from datetime import timedelta
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
