"""/healthz: which part is down, for anyone; how it failed, for the log only."""

from __future__ import annotations

import logging
import socket

import pytest
from django.db import OperationalError, connections

from newsroom.celery import app as celery_app

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
