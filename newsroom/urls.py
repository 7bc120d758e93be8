"""Root URLs: the newsroom's pages, then each app's, then staff and machines."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.sitemaps.views import sitemap
from django.urls import include, path, re_path
from django.views.static import serve

from newsroom import feeds, otp_views, views
from newsroom.caching import public_page
from newsroom.security import StaffLoginForm
from newsroom.sitemaps import SITEMAPS, news_sitemap

# Slugs may be written in Arabic or Hebrew (SlugField(allow_unicode=True)); \w matches them.
SLUG = r"(?P<slug>[-\w]+)"

# The admin login asks for the authenticator's code too, once a staff member has one.
admin.site.login_form = StaffLoginForm

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("", views.home, name="home"),
    re_path(rf"^articles/{SLUG}/$", views.article, name="article"),
    re_path(rf"^category/{SLUG}/$", views.category, name="category"),
    re_path(rf"^category/{SLUG}/feed/$", public_page(feeds.CategoryFeed()), name="category_feed"),
    re_path(rf"^topic/{SLUG}/$", views.topic, name="topic"),
    re_path(rf"^topic/{SLUG}/feed/$", public_page(feeds.TopicFeed()), name="topic_feed"),
    re_path(rf"^author/{SLUG}/$", views.author, name="author"),
    path("search/", views.search, name="search"),
    path("browse/", views.browse, name="browse"),
    path("feed/", public_page(feeds.SiteFeed()), name="feed"),
    path(
        "sitemap.xml",
        public_page(sitemap),
        {"sitemaps": SITEMAPS},
        name="sitemap",
    ),
    path("news-sitemap.xml", news_sitemap, name="news_sitemap"),
    path("robots.txt", views.robots_txt, name="robots_txt"),
    # Staff set up two-factor sign-in before the admin opens (newsroom.security).
    path(f"{settings.ADMIN_URL}two-factor/", otp_views.setup, name="staff_otp_setup"),
    path(settings.ADMIN_URL, admin.site.urls),
    path("webhooks/anymail/", include("anymail.urls")),
    path("", include("donations.urls")),
    path("", include("subscriptions.urls")),
    # Uploaded photos; a CDN in front of the site caches them.
    path("media/<path:path>", serve, {"document_root": settings.MEDIA_ROOT}),
]
