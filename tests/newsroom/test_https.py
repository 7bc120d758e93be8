"""Behind a TLS-terminating proxy: plain HTTP is redirected, HTTPS gets HSTS and secure cookies."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def production_https(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    settings.SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    settings.ALLOWED_HOSTS = ["news.example"]
    return Client(HTTP_HOST="news.example")


def test_plain_http_through_the_proxy_is_redirected_to_https(production_https):
    response = production_https.get("/donate/", HTTP_X_FORWARDED_PROTO="http")

    assert response.status_code == 301
    assert response["Location"] == "https://news.example/donate/"


def test_https_through_the_proxy_is_served_with_hsts_and_a_strict_referrer_policy(production_https):
    response = production_https.get("/donate/", HTTP_X_FORWARDED_PROTO="https")

    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert response["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"


def test_a_client_cannot_fake_https_without_the_proxy_header_value(production_https):
    response = production_https.get("/donate/", HTTP_X_FORWARDED_PROTO="HTTPS, http")

    assert response.status_code == 301


def test_the_health_check_answers_over_plain_http_for_the_load_balancer(production_https):
    assert production_https.get("/healthz", HTTP_X_FORWARDED_PROTO="http").status_code != 301
