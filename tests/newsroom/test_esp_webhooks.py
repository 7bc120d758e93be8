"""The newsroom's copy of anymail's webhook routes stays anymail's (checked at each upgrade)."""

from __future__ import annotations

from anymail import urls as anymail_urls
from django.urls import URLPattern
from django.utils.module_loading import import_string

from newsroom.esp_webhooks import ANYMAIL_URLPATTERNS

# Set by as_view() for the class it was given, and by webhook_view() for the class's path.
CLASS_ATTRIBUTES = {"view_class", "view_initkwargs", "view_class_path"}


def route(pattern: URLPattern, view_class: type, view_initkwargs: dict) -> tuple:
    """What the URL resolver routes by, and what the routed view is and carries."""
    decorations = {k: v for k, v in pattern.callback.__dict__.items() if k not in CLASS_ATTRIBUTES}
    return (
        type(pattern.pattern),
        str(pattern.pattern),
        pattern.name,
        pattern.default_args,
        view_class,
        view_initkwargs,
        decorations,
    )


def test_the_webhook_routes_are_anymails_own():
    anymails = [
        route(pattern, pattern.callback.view_class, pattern.callback.view_initkwargs)
        for pattern in anymail_urls.urlpatterns
    ]
    # webhook_view() calls as_view() with no arguments.
    ours = [
        route(pattern, import_string(pattern.callback.view_class_path), {})
        for pattern in ANYMAIL_URLPATTERNS
    ]

    assert ours == anymails
