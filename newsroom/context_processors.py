from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict:
    """Names every page may show: the newsroom's own, its address, its public URL."""
    return {
        "NEWSROOM_NAME": settings.NEWSROOM_NAME,
        "ORG_ADDRESS": settings.ORG_ADDRESS,
        "SITE_URL": settings.SITE_URL,
    }
