"""The project's URLs, plus stand-ins for content pages the digest links to.

The digest's emails link to articles, categories and topics (un-namespaced names
`article`, `category`, `topic`, owned by the content app). While one of them is not
routed yet, these tests route it to a bare view so links can still be built; once the
content app routes it, its own route is used.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.urls import NoReverseMatch, path, reverse

from newsroom.urls import urlpatterns as project_urlpatterns


def _standin(request, slug):
    return HttpResponse(slug)


def _missing(name: str) -> bool:
    try:
        reverse(name, kwargs={"slug": "x"}, urlconf="newsroom.urls")
    except NoReverseMatch:
        return True
    return False


urlpatterns = [
    *project_urlpatterns,
    *[
        path(f"_standin/{name}/<str:slug>/", _standin, name=name)
        for name in ("article", "category", "topic")
        if _missing(name)
    ],
]
