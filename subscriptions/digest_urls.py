"""URLs of the digest's public pages (the web version and archive of each newsletter)."""

from __future__ import annotations

urlpatterns: list = []
