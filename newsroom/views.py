"""The newsroom's public pages."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


def _check(probe) -> str:
    try:
        probe()
    except Exception as exc:  # any failure means "down"; its text helps the operator
        return f"down: {exc.__class__.__name__}: {exc}"[:300]
    return "ok"


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _cache() -> None:
    cache.set("healthz", "1", 10)
    if cache.get("healthz") != "1":
        raise RuntimeError("cache did not return what was stored")


def _broker() -> None:
    if not settings.CELERY_BROKER_URL:
        return  # tasks run in-process: there is no broker to be down
    from newsroom.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Report the database, cache and broker; 503 when any of them is down."""
    state = {
        "database": _check(_database),
        "cache": _check(_cache),
        "broker": _check(_broker) if settings.CELERY_BROKER_URL else "in-process",
    }
    healthy = all(value in ("ok", "in-process") for value in state.values())
    return JsonResponse(
        {"status": "ok" if healthy else "down", **state}, status=200 if healthy else 503
    )
