"""Root URLs: the newsroom's pages, then each app's, then staff and machines."""

from __future__ import annotations

import functools

from django.conf import settings
from django.conf.urls.i18n import i18n_patterns
from django.contrib import admin
from django.contrib.sitemaps.views import sitemap
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404
from django.urls import URLPattern, include, path, re_path
from django.views.static import serve

from newsroom import feeds, views
from newsroom.caching import public_page
from newsroom.machines import machine_endpoints
from newsroom.security import StaffLoginForm
from newsroom.sitemaps import SITEMAPS, news_sitemap

# Slugs may be written in Arabic or Hebrew (SlugField(allow_unicode=True)); \w matches them.
SLUG = r"(?P<slug>[-\w]+)"

# The admin login asks for the authenticator's code too, once a staff member has one.
admin.site.login_form = StaffLoginForm


def esp_webhooks() -> list[URLPattern]:
    """django-anymail's tracking webhooks, and the inbound webhook of INBOUND_EMAIL_ESP.

    anymail.urls routes every ESP's inbound and tracking webhooks, and a view whose
    ESP lacks its key (or boto3, for Amazon SES) raises on every request: a 500 for
    anyone who posts to it. Each answers 404 instead while its ESP is not configured;
    an inbound webhook answers 404 unless its ESP is INBOUND_EMAIL_ESP, so mail is
    taken only from the ESP the newsroom receives it through.
    """
    from anymail import urls as anymail_urls
    from anymail.exceptions import AnymailConfigurationError

    def not_found_until_configured(view, inbound_esp: str = ""):
        @functools.wraps(view)
        def webhook(request, *args, **kwargs):
            if inbound_esp and inbound_esp != settings.INBOUND_EMAIL_ESP:
                raise Http404("Mail is not received through this email provider.")
            try:
                return view(request, *args, **kwargs)
            except AnymailConfigurationError:
                raise Http404("This email provider's webhook is not configured.") from None

        return webhook

    inbound = {
        route.name.removesuffix("_inbound_webhook")
        for route in anymail_urls.urlpatterns
        if route.name.endswith("_inbound_webhook")
    }
    if settings.INBOUND_EMAIL_ESP and settings.INBOUND_EMAIL_ESP not in inbound:
        raise ImproperlyConfigured(
            f"INBOUND_EMAIL_ESP={settings.INBOUND_EMAIL_ESP!r} is not an email provider "
            f"that receives mail; use one of {', '.join(sorted(inbound))}, or leave it empty."
        )
    return [
        URLPattern(
            route.pattern,
            not_found_until_configured(
                route.callback,
                route.name.removesuffix("_inbound_webhook")
                if route.name.endswith("_inbound_webhook")
                else "",
            ),
            route.default_args,
            route.name,
        )
        for route in anymail_urls.urlpatterns
        if route.name.endswith(("_tracking_webhook", "_inbound_webhook"))
    ]


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
