from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "a-long-production-secret-for-this-test-only-0123456789",
    "STRIPE_SECRET_KEY": "sk_test_x",
    "STRIPE_WEBHOOK_SECRET": "whsec_x",
    "ANYMAIL_WEBHOOK_SECRET": "user:pass",
    "SITE_URL": "https://news.example",
}


def load_settings(
    code: str = "print('loaded')", *, setup: str = "import django; django.setup()", **overrides: str
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in PRODUCTION}
    env.update({k: v for k, v in {**PRODUCTION, **overrides}.items() if v is not None})
    env = {k: v for k, v in env.items() if v != "<unset>"}
    return subprocess.run(
        [sys.executable, "-c", f"{setup}; {code}"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "newsroom.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_settings_load_with_every_secret():
    result = load_settings()

    assert result.returncode == 0, result.stderr
    assert "loaded" in result.stdout


def test_a_missing_secret_in_production_names_the_variable():
    for name in ("DJANGO_SECRET_KEY", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "SITE_URL"):
        result = load_settings(**{name: "<unset>"})

        assert result.returncode != 0
        assert "ImproperlyConfigured" in result.stderr
        assert f"{name} is not set" in result.stderr


LAPTOP = {
    name: "<unset>"
    for name in (
        "DJANGO_SECRET_KEY",
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "ANYMAIL_WEBHOOK_SECRET",
        "SITE_URL",
    )
}


def test_the_laptop_defaults_need_no_secret_once_debug_is_asked_for():
    result = load_settings(
        "from django.conf import settings; print(settings.DEBUG, settings.SITE_URL)",
        DJANGO_DEBUG="1",
        **LAPTOP,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "http://localhost:8000"]


def test_debug_is_off_unless_asked_for():
    result = load_settings(
        "from django.conf import settings; print(settings.DEBUG)", DJANGO_DEBUG="<unset>"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False"]


def test_a_deployment_that_sets_nothing_stops_at_the_first_missing_secret():
    result = load_settings(DJANGO_DEBUG="<unset>", **LAPTOP)

    assert result.returncode != 0
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY is not set" in result.stderr
    assert "DJANGO_DEBUG=1" in result.stderr


def test_a_missing_site_url_in_production_says_how_to_set_it():
    result = load_settings(DJANGO_DEBUG="<unset>", SITE_URL="<unset>")

    assert result.returncode != 0
    assert "ImproperlyConfigured: SITE_URL is not set" in result.stderr
    assert "public address, e.g. `https://" in result.stderr


def test_a_site_url_without_its_scheme_is_refused():
    result = load_settings(SITE_URL="news.example")

    assert result.returncode != 0
    assert "ImproperlyConfigured: SITE_URL is 'news.example'" in result.stderr


def test_production_cache_misses_rather_than_fails_when_redis_refuses():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = (
        "from django.core.cache import cache; from newsroom.celery import app; "
        "print(cache.get('page', 'rendered from the database')); "
        "options = cache._options; "
        "print(options['socket_timeout'], options['socket_connect_timeout']); "
        "transport = app.conf.broker_transport_options; "
        "print(transport['socket_timeout'], transport['socket_connect_timeout'])"
    )
    result = load_settings(code, REDIS_URL=f"redis://127.0.0.1:{port}/0")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["rendered from the database", "0.25 0.25", "1.0 1.0"]


def test_stripe_and_esp_calls_are_bounded_by_default():
    result = load_settings(
        "from django.conf import settings; "
        "from donations.stripe_api import _client; "
        "client = _client()._requestor._get_http_client(); "
        "print(settings.ANYMAIL['REQUESTS_TIMEOUT'], client._timeout, "
        "_client()._requestor._options.max_network_retries)"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["(5,", "20)", "8", "1"]


def test_a_link_signed_before_a_key_rotation_still_opens_with_the_old_key_kept_as_a_fallback():
    old = "the-key-before-the-rotation-0123456789abcdefghijklmnopqrstuvwxyz"
    check = (
        "from django.core import signing; "
        f"token = signing.dumps('reader', key={old!r}, salt='unsubscribe'); "
        "print(signing.loads(token, salt='unsubscribe'))"
    )

    kept = load_settings(check, DJANGO_SECRET_KEY_FALLBACKS=old)
    dropped = load_settings(check)

    assert kept.returncode == 0, kept.stderr
    assert kept.stdout.strip() == "reader"
    assert "BadSignature" in dropped.stderr


def test_resend_as_the_esp_in_production_needs_its_webhook_signing_secret():
    resend = {"EMAIL_BACKEND": "anymail.backends.resend.EmailBackend"}

    missing = load_settings(**resend)
    given = load_settings(
        "from django.conf import settings; print(settings.ANYMAIL['RESEND_SIGNING_SECRET'])",
        ANYMAIL_RESEND_SIGNING_SECRET="whsec_c2VjcmV0",
        **resend,
    )

    assert missing.returncode != 0
    assert "ANYMAIL_RESEND_SIGNING_SECRET is not set" in missing.stderr
    assert given.returncode == 0, given.stderr
    assert given.stdout.split() == ["whsec_c2VjcmV0"]


def test_a_resend_signing_secret_without_svix_installed_stops_the_process():
    result = load_settings(
        setup="import sys; sys.modules['svix'] = None; import django; django.setup()",
        EMAIL_BACKEND="anymail.backends.resend.EmailBackend",
        ANYMAIL_RESEND_SIGNING_SECRET="whsec_c2VjcmV0",
    )

    assert result.returncode != 0
    assert "install django-anymail[resend]" in result.stderr
