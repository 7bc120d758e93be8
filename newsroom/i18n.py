"""The page's language comes from its URL alone: `/` is the default language, `/ar/` Arabic."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation


class UrlLanguageMiddleware:
    """Activate the language named by the URL's prefix, or the site's default without one.

    Django's LocaleMiddleware falls back to the cookie and Accept-Language and adds
    `Vary: Accept-Language`, so one URL would have several bodies; a shared cache
    (ours, a CDN's) could then serve one reader's language to another. Here the URL
    decides, and the response varies by nothing but the URL.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        language = translation.get_language_from_path(request.path_info) or settings.LANGUAGE_CODE
        translation.activate(language)
        request.LANGUAGE_CODE = language
        try:
            response = self.get_response(request)
        finally:
            translation.deactivate()
        response.headers.setdefault("Content-Language", language)
        return response
