"""WSGI entry point for gunicorn: `gunicorn newsroom.wsgi`."""

import gc
import os

from django.apps import apps
from django.core.wsgi import get_wsgi_application
from django.urls import reverse

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newsroom.settings")
# Before the settings are read: this process serves requests (settings.WEB_PROCESS).
os.environ.setdefault("NEWSROOM_PROCESS", "web")

application = get_wsgi_application()
# Import every view and build the URL resolver now, rather than on the first request.
reverse("healthz")
# What each app loads on its first request (an SDK's modules, a validator's compiled
# expressions), loaded now: not on a reader's request, and frozen with the rest below.
for config in apps.get_app_configs():
    if hasattr(config, "warm_up"):
        config.warm_up()
# What the application loaded (models, views, URL patterns: about 200,000 objects) lives as
# long as the process. Frozen out of the collector's sight, a full collection walks only
# what requests made since, instead of holding one request for tens of milliseconds.
# docs.python.org/3/library/gc.html#gc.freeze
gc.freeze()
