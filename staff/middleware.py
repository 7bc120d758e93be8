"""The admin in each staff member's own language."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import translation

from newsroom.security import admin_prefix
from staff.services import staff_language


class StaffLanguageMiddleware:
    """Under ADMIN_URL, speak the language the signed-in staff member chose.

    After the authentication middleware, which names the user. Staff pages are never
    cached, so the language may follow the person rather than the URL; readers' pages
    keep the URL's (newsroom.i18n.UrlLanguageMiddleware).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if not request.path_info.startswith(admin_prefix()) or not (
            user is not None and user.is_authenticated and user.is_staff
        ):
            return self.get_response(request)
        language = staff_language(user=user)
        if not language:
            return self.get_response(request)
        previous = translation.get_language()
        translation.activate(language)
        request.LANGUAGE_CODE = language
        try:
            response = self.get_response(request)
        finally:
            translation.activate(previous)
        response.headers["Content-Language"] = language
        return response
