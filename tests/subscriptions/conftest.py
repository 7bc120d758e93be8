"""Fixtures of the subscriptions tests: a newsletter, task retries that run at once, and a
real worker that writes its emails to files."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsroom.celery import app as celery_app
from tests.subscriptions.factories import NewsletterFactory


@pytest.fixture
def eager_retries():
    """In-process tasks retry at once instead of raising Retry (Celery's eager apply)."""
    celery_app.conf.task_eager_propagates = False
    yield
    celery_app.conf.task_eager_propagates = True


@pytest.fixture
def daily(db):
    return NewsletterFactory()


@pytest.fixture
def worker_outbox(celery_worker_factory, tmp_path) -> Path:
    """A real worker started with Django's file email backend: the folder its emails land in."""
    outbox = tmp_path / "emails"
    celery_worker_factory(
        {
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(outbox),
        }
    )
    return outbox
