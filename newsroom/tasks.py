"""Celery tasks of the newsroom: the outbox's second chance."""

from __future__ import annotations

from celery import shared_task

from newsroom import outbox


@shared_task(name="newsroom.outbox_send_pending")
def outbox_send_pending_task() -> int:
    return outbox.outbox_send_pending()
