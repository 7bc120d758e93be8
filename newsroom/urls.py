"""Root URLs: the newsroom's pages, then each app's, then staff and machines."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.static import serve

from newsroom import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("webhooks/anymail/", include("anymail.urls")),
    path("", include("donations.urls")),
    path("", include("subscriptions.urls")),
    # Uploaded photos; a CDN in front of the site caches them.
    path("media/<path:path>", serve, {"document_root": settings.MEDIA_ROOT}),
]
