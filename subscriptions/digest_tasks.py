"""Celery tasks of the digest: planning and sending batches."""

from __future__ import annotations
