"""The least Django project django-newsletter sends from, for bench/newsletter_compare.py.

Configured from the environment the benchmark sets: the database, and the SMTP sink
that Django's SMTP backend delivers to (the same sink our digest sends to).
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "bench-only-peer-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sites",
    "sorl.thumbnail",
    "newsletter",
    "peer",
]
ROOT_URLCONF = "peer.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
    }
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("PEER_DATABASE_NAME", "newsroom_bench_peer"),
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": "5432",
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
SITE_ID = 1
STATIC_URL = "/static/"
MEDIA_URL = "/media/"

EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = os.environ.get("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "8830"))
DEFAULT_FROM_EMAIL = "Mideast Daily <daily@newsroom.example>"

# django-newsletter's settings (its docs, "Settings"): links over HTTPS as ours are, and
# the thumbnailer named so it does not warn (the benchmark's articles have no images).
# No NEWSLETTER_EMAIL_DELAY or NEWSLETTER_BATCH_SIZE: it sends as fast as it can.
NEWSLETTER_USE_HTTPS = True
NEWSLETTER_THUMBNAIL = "sorl-thumbnail"
NEWSLETTER_CONFIRM_EMAIL = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"newsletter": {"handlers": ["console"], "level": "INFO"}},
}
