from __future__ import annotations

from subscriptions import digest_urls

app_name = "subscriptions"

urlpatterns: list = [
    *digest_urls.urlpatterns,
]
