"""WSGI entry point for gunicorn: `gunicorn newsroom.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newsroom.settings")
# Before the settings are read: this process serves requests (settings.WEB_PROCESS).
os.environ.setdefault("NEWSROOM_PROCESS", "web")

application = get_wsgi_application()
