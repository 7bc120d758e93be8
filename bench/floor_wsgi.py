"""The framework's floor: the same settings and middleware, one view returning a fixed string.

Served by gunicorn beside the real site in `bench/pages.py`, so the two are measured
in one run on one machine.
"""

from __future__ import annotations

import os
import sys

from django.http import HttpResponse
from django.urls import path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newsroom.settings")


def floor(request):
    return HttpResponse("floor", content_type="text/plain")


urlpatterns = [path("floor", floor)]

from django.conf import settings  # noqa: E402

settings.ROOT_URLCONF = sys.modules[__name__].__name__

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
