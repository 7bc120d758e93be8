"""A page's language is named by its URL, and by nothing the browser sends."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_default_language_is_served_without_a_prefix(client):
    response = client.get("/")

    assert response.status_code == 200
    assert response["Content-Language"] == "en"


@pytest.mark.parametrize("code", ["ar", "he"])
def test_other_languages_are_served_under_their_code(client, code):
    response = client.get(f"/{code}/")

    assert response.status_code == 200
    assert response["Content-Language"] == code


def test_browser_language_neither_redirects_nor_varies_the_page(client):
    response = client.get("/", HTTP_ACCEPT_LANGUAGE="ar", HTTP_COOKIE="django_language=he")

    assert response.status_code == 200
    assert response["Content-Language"] == "en"
    assert "Accept-Language" not in response.get("Vary", "")


def test_machines_addresses_have_no_language_prefix(client):
    assert client.get("/healthz").status_code in (200, 503)
    assert client.get("/ar/healthz").status_code == 404
