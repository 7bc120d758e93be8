"""sitemap.xml (django.contrib.sitemaps) and the Google News sitemap of the last 48 hours.

Every page is listed in each language with its alternates (`xhtml:link`, hreflang); an
article lists the versions of its story, each under its own language's prefix.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.sitemaps import Sitemap
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe

from newsroom import selectors
from newsroom.caching import public_page
from newsroom.links import absolute
from newsroom.models import Article, Author


class _SiteSitemap(Sitemap):
    """Locations on SITE_URL, the public address, whatever host the request came to."""

    limit = 5000
    # Pages that exist in every language: one <url> each, every language its alternate.
    i18n = True
    alternates = True
    x_default = True

    def get_protocol(self, protocol=None) -> str:
        return urlsplit(settings.SITE_URL).scheme or "https"

    def get_domain(self, site=None) -> str:
        return urlsplit(settings.SITE_URL).netloc


class ArticleSitemap(_SiteSitemap):
    changefreq = "daily"
    priority = 0.8
    # An article exists in its own language only; its alternates are its story's versions.
    i18n = False

    def items(self):
        return (
            Article.objects.published()
            .only("slug", "language", "story", "updated_at", "published_at")
            .order_by("-published_at", "-id")
        )

    def lastmod(self, item: Article):
        return item.updated_at

    def get_urls(self, page=1, site=None, protocol=None) -> list[dict]:
        urls = super().get_urls(page=page, site=site, protocol=protocol)
        stories: dict = {}
        versions = (
            Article.objects.published()
            .filter(story__in={url["item"].story for url in urls})
            .only("slug", "language", "story")
        )
        for version in versions:
            stories.setdefault(version.story, []).append(version)
        for url in urls:
            story = stories.get(url["item"].story, [])
            if len(story) < 2:
                continue  # no translation: nothing to point to
            url["alternates"] = [
                {"location": absolute(v.get_absolute_url()), "lang_code": v.language} for v in story
            ]
            default = next((v for v in story if v.language == settings.LANGUAGE_CODE), None)
            if default is not None:
                url["alternates"].append(
                    {"location": absolute(default.get_absolute_url()), "lang_code": "x-default"}
                )
        return urls


class SectionSitemap(_SiteSitemap):
    changefreq = "hourly"
    priority = 0.6

    def items(self) -> list:
        return [*selectors.categories(), *selectors.topics()]


class PageSitemap(_SiteSitemap):
    changefreq = "hourly"
    priority = 1.0

    def items(self) -> list[str]:
        return ["home", "browse"]

    def location(self, item: str) -> str:
        return reverse(item)


class AuthorSitemap(_SiteSitemap):
    changefreq = "weekly"
    priority = 0.3

    def items(self):
        return Author.objects.all()


SITEMAPS = {
    "pages": PageSitemap,
    "articles": ArticleSitemap,
    "sections": SectionSitemap,
    "authors": AuthorSitemap,
}


@require_safe
@public_page
def news_sitemap(request: HttpRequest) -> HttpResponse:
    """Articles of the last 48 hours, in the Google News sitemap format.

    https://developers.google.com/search/docs/crawling-indexing/sitemaps/news-sitemap
    """
    articles = selectors.articles_since(hours=48)[:1000]
    return render(
        request,
        "newsroom/news_sitemap.xml",
        {
            "entries": [
                {
                    "loc": absolute(article.get_absolute_url()),
                    "language": article.language,
                    "published": article.published_at.isoformat(),
                    "title": article.headline,
                }
                for article in articles
            ],
            "publication": settings.NEWSROOM_NAME,
        },
        content_type="application/xml; charset=utf-8",
    )
