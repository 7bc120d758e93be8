from __future__ import annotations

import pytest


@pytest.mark.django_db
def test_healthz_reports_each_service(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["cache"] == "ok"
    assert body["broker"] in {"ok", "in-process"}


@pytest.mark.django_db
def test_healthz_answers_503_when_the_cache_is_down(client, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["cache"].startswith("down")
