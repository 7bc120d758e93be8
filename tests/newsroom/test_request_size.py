"""A request declaring a body larger than the limit is refused before its body is read."""

from __future__ import annotations

import io

import pytest
from django.test import RequestFactory
from django.test.client import ClientHandler
from django.urls import reverse

from donations.models import Gift, StripeEvent
from subscriptions.models import Subscriber
from tests.helpers import login_staff

pytestmark = pytest.mark.django_db

TEN_MB = 10 * 1024 * 1024


class WatchedBody(io.RawIOBase):
    """A request body that counts how much of it the server reads."""

    def __init__(self, size: int):
        self.size = size
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.size - self.read_bytes)
        buffer[:n] = b"a" * n
        self.read_bytes += n
        return n


def send(path: str, size: int, content_type: str):
    """POST a body of `size` bytes through the full handler and middleware stack."""
    body = WatchedBody(size)
    environ = RequestFactory()._base_environ(
        PATH_INFO=path,
        REQUEST_METHOD="POST",
        CONTENT_TYPE=content_type,
        CONTENT_LENGTH=str(size),
        **{"wsgi.input": body},
    )
    return ClientHandler()(environ), body


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/donate/", "application/x-www-form-urlencoded"),
        ("/webhooks/stripe/", "application/json"),
        ("/newsletters/subscribe/", "multipart/form-data; boundary=xyz"),
    ],
)
def test_a_ten_megabyte_body_gets_413_unread_and_creates_nothing(path, content_type):
    response, body = send(path, TEN_MB, content_type)

    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/plain")
    assert b"This request is too large" in response.content
    assert body.read_bytes == 0
    assert Gift.objects.count() == 0
    assert StripeEvent.objects.count() == 0
    assert Subscriber.objects.count() == 0


def test_the_limit_is_configurable(client, settings):
    settings.MAX_REQUEST_BODY_BYTES = 1000

    small = client.post("/webhooks/stripe/", b"{}" * 400, content_type="application/json")
    large = client.post("/webhooks/stripe/", b"{}" * 600, content_type="application/json")

    assert small.status_code == 400  # read, and refused for its missing signature
    assert large.status_code == 413


def test_the_admin_takes_larger_uploads_than_public_forms(client, settings):
    settings.MAX_REQUEST_BODY_BYTES = 1000
    settings.ADMIN_MAX_REQUEST_BODY_BYTES = 100_000
    login_staff(client)
    body = {"q": "x" * 5000}

    assert client.post(reverse("admin:newsroom_article_changelist"), body).status_code != 413
    assert client.post(reverse("donations:donate"), body).status_code == 413


def test_a_content_length_that_is_not_a_number_is_refused(client):
    response = client.generic(
        "POST",
        "/donate/",
        b"amount=5",
        content_type="application/x-www-form-urlencoded",
        CONTENT_LENGTH="ten",
    )

    assert response.status_code == 400
    assert b"Content-Length" in response.content
