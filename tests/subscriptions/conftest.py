"""Fixtures of the subscriptions tests: a newsletter, and task retries that run at once."""

from __future__ import annotations

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
