"""Public links: every absolute URL the site hands out is on SITE_URL."""

from __future__ import annotations

from django.conf import settings


def absolute(url: str) -> str:
    """The public URL of a path on this site; a URL that is already absolute stays as it is.

    SITE_URL, not the request's host: emails, feeds and Stripe redirects are read away
    from any request, and a forged Host header must not reach them.
    """
    return url if url.startswith(("http://", "https://")) else settings.SITE_URL + url
