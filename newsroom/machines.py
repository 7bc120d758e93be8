"""Endpoints only machines call (Stripe's webhook), answered ahead of the readers' middleware.

The middleware below this one in settings.MIDDLEWARE serve people: sessions, the
language of the URL, CSRF, login and two-factor, messages, CSP, clickjacking, lockouts.
A signed webhook uses none of them, and on its path they were about a third of the
CPU of a request (bench/README.md, "Webhooks"). What is above this one still runs for
it: the body's size limit, SecurityMiddleware (the HTTPS redirect, HSTS) and the 503 on
a database that is unavailable; the Host header is checked against ALLOWED_HOSTS here,
as CommonMiddleware would.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string

from newsroom.unavailable import database_unavailable_response


def machine_endpoints() -> dict[str, Callable[[HttpRequest], HttpResponse]]:
    """settings.MACHINE_ENDPOINTS with each view imported: path -> view."""
    return {path: import_string(view) for path, view in settings.MACHINE_ENDPOINTS.items()}


class MachineEndpointMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.endpoints = machine_endpoints()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = self.endpoints.get(request.path_info)
        if view is None:
            return self.get_response(request)
        # Raises DisallowedHost (a 400) for a host not in ALLOWED_HOSTS.
        request.get_host()
        try:
            return view(request)
        except (OperationalError, InterfaceError) as error:
            # The view's exception does not reach DatabaseUnavailableMiddleware's
            # process_exception from here; Stripe retries on the 503.
            return database_unavailable_response(request, error)
