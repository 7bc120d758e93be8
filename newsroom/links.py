"""Public links: every absolute URL the site hands out is on SITE_URL."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings


def absolute(url: str) -> str:
    """The public URL of a path on this site; a URL that is already absolute stays as it is.

    SITE_URL, not the request's host: emails, feeds and Stripe redirects are read away
    from any request, and a forged Host header must not reach them.
    """
    return url if url.startswith(("http://", "https://")) else settings.SITE_URL + url


def site_host() -> str:
    """SITE_URL's host name: the domain of our Message-IDs and List-Ids."""
    return urlsplit(settings.SITE_URL).hostname or "localhost"
