"""Root URLs: the newsroom's pages, then each app's, then staff and machines."""

from __future__ import annotations

from django.conf import settings
from django.conf.urls.i18n import i18n_patterns
from django.contrib import admin
from django.contrib.sitemaps.views import sitemap
from django.urls import include, path, re_path
from django.views.static import serve

from newsroom import feeds, views
from newsroom.caching import public_page
from newsroom.esp_webhooks import esp_webhooks
from newsroom.machines import machine_endpoints
from newsroom.security import StaffLoginForm
from newsroom.sitemaps import SITEMAPS, news_sitemap

# Slugs may be written in Arabic or Hebrew (SlugField(allow_unicode=True)); \w matches them.
SLUG = r"(?P<slug>[-\w]+)"

# The admin login asks for the authenticator's code too, once a staff member has one.
admin.site.login_form = StaffLoginForm


# Machines' and staff's addresses have one URL whatever the language.
urlpatterns = [
    # Answered by newsroom.machines.MachineEndpointMiddleware; routed too, for reverse().
    *(
        path(route.removeprefix("/"), view, name=view.__name__)
        for route, view in machine_endpoints().items()
    ),
    path("healthz", views.healthz, name="healthz"),
    path("healthz/ready", views.healthz, name="healthz_ready"),
    path("healthz/live", views.healthz_live, name="healthz_live"),
    path(
        "sitemap.xml",
        public_page(sitemap),
        {"sitemaps": SITEMAPS},
        name="sitemap",
    ),
    path("news-sitemap.xml", news_sitemap, name="news_sitemap"),
    path("robots.txt", views.robots_txt, name="robots_txt"),
    # The staff app's pages (two-factor setup) first: the admin's catch-all would answer them.
    path(settings.ADMIN_URL, include("staff.urls")),
    path(settings.ADMIN_URL, admin.site.urls),
    path("webhooks/anymail/", include((esp_webhooks(), "anymail"))),
    # Uploaded photos; a CDN in front of the site caches them.
    path("media/<path:path>", serve, {"document_root": settings.MEDIA_ROOT}),
]

# Readers' pages: the site's default language at `/`, each other language under its code
# (`/ar/`, `/he/`), so that the URL alone names a page's language and stays cacheable.
urlpatterns += i18n_patterns(
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
    path("", include("donations.urls")),
    path("", include("subscriptions.urls")),
    prefix_default_language=False,
)
