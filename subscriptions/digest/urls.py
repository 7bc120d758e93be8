"""URLs of the digest's public pages (the web version and archive of each newsletter)."""

from __future__ import annotations

from django.urls import path, re_path

from subscriptions.digest import views

urlpatterns: list = [
    path(
        "newsletters/<slug:slug>/archive/",
        views.edition_archive,
        name="edition_archive",
    ),
    re_path(
        r"^newsletters/(?P<slug>[-\w]+)/(?P<date>\d{4}-\d{2}-\d{2})/$",
        views.edition_detail,
        name="edition",
    ),
]
