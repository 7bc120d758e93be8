"""The page's language comes from its URL alone: `/` is the default language, `/ar/` Arabic."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, reverse
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


def language_versions(request: HttpRequest, *, versions: dict[str, str] | None) -> list[dict]:
    """This page in each language, for the switcher and the hreflang alternates.

    `versions` maps language codes to the URLs of the page's versions, when the page has
    its own set (an article's translations); otherwise every language has this page at
    its own prefix. A language without a version links to its front page, and is not an
    alternate of this one.
    """
    current = translation.get_language()
    match = getattr(request, "resolver_match", None)
    links = []
    for code, name in settings.LANGUAGES:
        url = versions.get(code) if versions is not None else None
        with translation.override(code):
            front = reverse("home")
            if versions is None and match is not None:
                # The route this request resolved to, reversed in `code` (translate_url
                # without resolving the path again).
                try:
                    url = reverse(match.view_name, args=match.args, kwargs=match.kwargs)
                except NoReverseMatch:
                    url = None  # an unnamed route: only the fronts are known
        info = translation.get_language_info(code)
        links.append(
            {
                "code": code,
                "name": name,
                "dir": "rtl" if info["bidi"] else "ltr",
                "url": url or front,
                "alternate": url is not None,
                "current": code == current,
            }
        )
    return links
