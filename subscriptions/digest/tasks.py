"""Celery tasks of the digest: planning and sending batches (thin: ids in, services do the work)."""

from __future__ import annotations

import logging
import random

from celery import shared_task

from subscriptions.digest import plan, send

logger = logging.getLogger(__name__)

# A batch of 1,000 through an ESP's API takes seconds; these only stop a hung call.
SEND_SOFT_TIME_LIMIT = 240
SEND_TIME_LIMIT = 300
SEND_MAX_RETRIES = 6
SEND_TASK_OPTIONS = {
    "bind": True,
    "ignore_result": True,
    # Acknowledged only after the service returns, so a batch whose worker dies is
    # redelivered; each batch's "sending" state makes that redelivery safe.
    "acks_late": True,
    "reject_on_worker_lost": True,
    "max_retries": SEND_MAX_RETRIES,
    "soft_time_limit": SEND_SOFT_TIME_LIMIT,
    "time_limit": SEND_TIME_LIMIT,
}


def backoff(retries: int) -> int:
    """Exponential back-off with jitter: about 30 s, 1, 2, 4, 8, 16 min."""
    return 30 * 2**retries + random.randint(0, 15)


@shared_task(
    name="subscriptions.digest_plan", ignore_result=True, soft_time_limit=240, time_limit=280
)
def digest_plan_task() -> None:
    """Queue the subscribers whose local send hour has come (beat, every five minutes)."""
    for result in plan.digest_plan():
        if result.queued or result.suppressed:
            logger.info(
                "digest: %s queued %s in %s groups, %s suppressed",
                result.edition,
                result.queued,
                len(result.groups),
                result.suppressed,
            )


@shared_task(name=plan.SEND_BATCH_TASK, **SEND_TASK_OPTIONS)
def digest_send_batch_task(self, batch_id: int) -> str:
    """Send one batch of an edition (queue `digests`, settings.CELERY_TASK_ROUTES)."""
    try:
        outcome = send.edition_send_batch(batch_id=batch_id, task_id=self.request.id or "")
    except send.BatchSendError as exc:
        if self.request.retries >= self.max_retries:
            send.batch_fail(batch_id=batch_id, error=str(exc))
            return "failed"
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from exc
    return outcome.state


@shared_task(name="subscriptions.digest_send_batches", **SEND_TASK_OPTIONS)
def digest_send_batches_task(self, batch_ids: list[int]) -> str:
    """Send a pack of small batches of an edition; retry only the ones the ESP failed."""
    pack = send.edition_send_batches(batch_ids=batch_ids, task_id=self.request.id or "")
    if not pack.retry:
        return "sent"
    failed = sorted(pack.retry)
    if self.request.retries >= self.max_retries:
        for batch_id in failed:
            send.batch_fail(batch_id=batch_id, error=pack.retry[batch_id])
        return "failed"
    error = send.BatchSendError("; ".join(f"batch {pk}: {pack.retry[pk]}" for pk in failed))
    raise self.retry(args=[failed], exc=error, countdown=backoff(self.request.retries))
