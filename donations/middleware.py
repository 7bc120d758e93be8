"""Reader tokens from email links become the reader-state cookie, then a clean URL."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.cache import add_never_cache_headers

from donations import reader_state


class ReaderTokenMiddleware:
    """On a GET with `?rt=<token>`, set the reader state and redirect to the URL without it.

    The redirect keeps pages cacheable (the cached copy varies on the cookie's key, not
    on a token) and leaves no token in the address bar to be shared or bookmarked.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method not in ("GET", "HEAD") or reader_state.LINK_PARAM not in request.GET:
            return self.get_response(request)
        query = request.GET.copy()
        token = query.pop(reader_state.LINK_PARAM)[-1]
        clean = request.path + (f"?{query.urlencode()}" if query else "")
        response = HttpResponseRedirect(clean)
        state = reader_state.read(request)
        if reader_state.token_apply(state, token):
            reader_state.write(response, state)
        add_never_cache_headers(response)
        response["Referrer-Policy"] = "no-referrer"
        return response
