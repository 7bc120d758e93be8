"""/healthz: which part is down, for anyone; how it failed, for the log only."""

from __future__ import annotations

import logging
import socket
import time
from urllib.parse import urlsplit

import pytest
from django.db import OperationalError, connections

from newsroom.celery import app as celery_app
from tests.conftest import skip_or_fail
from tests.faultproxy import FaultProxy

pytestmark = pytest.mark.django_db

DRIVER_TEXT = (
    'connection to server at "db-primary.internal" (10.20.30.40), port 5432 failed: '
    "Connection refused"
)


def closed_port() -> int:
    """A local TCP port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_healthz_reports_each_service(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["cache"] == "ok"
    assert body["broker"] in {"ok", "in-process"}


def test_healthz_answers_503_when_the_cache_is_down(client, settings, caplog):
    port = closed_port()
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
        }
    }
    with caplog.at_level(logging.ERROR, logger="newsroom.health"):
        response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["cache"] == "down"
    assert "127.0.0.1" not in response.content.decode()
    assert str(port) not in response.content.decode()
    assert [r.getMessage() for r in caplog.records if "cache is down" in r.getMessage()]


def test_healthz_names_a_failed_database_without_the_drivers_text(client, monkeypatch, caplog):
    def refuse(*args, **kwargs):
        raise OperationalError(DRIVER_TEXT)

    # On the class: the check runs in a thread of its own, with its own connection.
    monkeypatch.setattr(type(connections["default"]), "cursor", refuse)
    with caplog.at_level(logging.ERROR, logger="newsroom.health"):
        response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down" and body["database"] == "down"
    for secret in ("db-primary.internal", "10.20.30.40", "5432", "OperationalError", "refused"):
        assert secret not in response.content.decode()
    logged = [r for r in caplog.records if r.name == "newsroom.health"]
    assert len(logged) == 1 and logged[0].exc_info is None
    assert "database is down: OperationalError" in logged[0].getMessage()
    assert "db-primary.internal" in logged[0].getMessage()
    assert "\n" not in logged[0].getMessage()


def test_healthz_names_an_unreachable_broker_without_its_address(
    client, settings, monkeypatch, caplog
):
    port = closed_port()
    url = f"redis://127.0.0.1:{port}/1"
    settings.CELERY_BROKER_URL = url
    # The write URL too: Celery prefers CELERY_BROKER_URL from the environment (as in CI).
    monkeypatch.setitem(celery_app.conf, "broker_url", url)
    monkeypatch.setattr(celery_app.conf, "broker_write_url", url)
    with caplog.at_level(logging.ERROR, logger="newsroom.health"):
        response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "down",
        "database": "ok",
        "cache": "ok",
        "broker": "down",
    }
    logged = " ".join(r.getMessage() for r in caplog.records if r.name == "newsroom.health")
    assert "broker is down" in logged and str(port) in logged


# --- bounded, cached, and liveness apart -------------------------------------------------


def test_liveness_touches_no_service(client, monkeypatch, redis_cache_proxy):
    redis_cache_proxy.mode = "hang"

    def refuse(*args, **kwargs):
        raise OperationalError(DRIVER_TEXT)

    monkeypatch.setattr(type(connections["default"]), "cursor", refuse)

    response = client.get("/healthz/live")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readiness_has_its_own_address_too(client):
    response = client.get("/healthz/ready")

    assert response.status_code == 200
    assert response.json()["cache"] == "ok"


def test_a_hung_cache_is_named_down_within_the_checks_time(client, redis_cache_proxy, settings):
    redis_cache_proxy.mode = "hang"

    started = time.monotonic()
    response = client.get("/healthz")
    seconds = time.monotonic() - started

    assert response.status_code == 503
    assert response.json()["cache"] == "down"
    assert response.json()["database"] == "ok"
    assert seconds < 2, f"{seconds:.1f} s"


def test_no_check_holds_the_request_past_its_time_whatever_the_clients_timeout(
    client, redis_cache_proxy, settings
):
    # A client that would wait 5 s: the check is still given HEALTHZ_CHECK_TIMEOUT_SECONDS.
    default = settings.CACHES["default"]
    options = {**default["OPTIONS"], "socket_timeout": 5, "socket_connect_timeout": 5}
    settings.CACHES = {"default": {**default, "OPTIONS": options}}
    redis_cache_proxy.mode = "hang"

    started = time.monotonic()
    response = client.get("/healthz")
    seconds = time.monotonic() - started

    assert response.status_code == 503
    assert response.json()["cache"] == "down"
    assert seconds < 2, f"{seconds:.1f} s"


def test_the_answer_is_kept_in_the_process_not_in_redis(client, redis_cache_proxy, settings):
    assert client.get("/healthz").status_code == 200  # checked now (the suite keeps nothing)
    settings.HEALTHZ_CACHE_SECONDS = 60
    redis_cache_proxy.mode = "refuse"

    assert client.get("/healthz").status_code == 200  # the kept answer, Redis not asked

    settings.HEALTHZ_CACHE_SECONDS = 0
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["cache"] == "down"


def test_a_hung_broker_is_named_down(client, monkeypatch, settings):
    if not settings.CELERY_BROKER_URL:
        skip_or_fail("a broker fault test needs CELERY_BROKER_URL")
    where = urlsplit(settings.CELERY_BROKER_URL)
    with FaultProxy(where.hostname, where.port or 6379) as proxy:
        url = f"redis://{proxy.address}{where.path}"
        monkeypatch.setitem(celery_app.conf, "broker_url", url)
        monkeypatch.setattr(celery_app.conf, "broker_write_url", url)
        assert client.get("/healthz").json()["broker"] == "ok"
        proxy.mode = "hang"

        response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["broker"] == "down"
