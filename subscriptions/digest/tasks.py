"""Celery tasks of the digest: planning and sending batches (thin: ids in, services do the work)."""

from __future__ import annotations

import logging
import random

from celery import shared_task
from celery.signals import worker_process_shutdown, worker_shutdown
from django.utils import timezone

from subscriptions.digest import esp_smtp, in_doubt, plan, send

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


def retry_countdown(retries: int, errors: list[send.BatchSendError]) -> int:
    """The back-off, or longer when the ESP asked for longer (a 429's Retry-After)."""
    asked = [exc.retry_after for exc in errors if exc.retry_after is not None]
    return max([backoff(retries), *asked])


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
    """Send one batch of an edition (queue `digests`, settings.CELERY_TASK_ROUTES).

    Retried only when the ESP provably took nothing (send.BatchSendError); a batch
    whose outcome is unknown is in doubt and never retried by itself.
    """
    try:
        outcome = send.edition_send_batch(batch_id=batch_id, task_id=self.request.id or "")
    except send.BatchSendError as exc:
        if self.request.retries >= self.max_retries:
            send.batch_fail(batch_id=batch_id, error=str(exc))
            return "failed"
        raise self.retry(exc=exc, countdown=retry_countdown(self.request.retries, [exc])) from exc
    return outcome.state


@shared_task(name="subscriptions.digest_send_batches", **SEND_TASK_OPTIONS)
def digest_send_batches_task(self, batch_ids: list[int]) -> str:
    """Send a pack of small batches of an edition; retry only the ones the ESP refused."""
    pack = send.edition_send_batches(batch_ids=batch_ids, task_id=self.request.id or "")
    if not pack.retry:
        return "sent"
    failed = sorted(pack.retry)
    if self.request.retries >= self.max_retries:
        for batch_id in failed:
            send.batch_fail(batch_id=batch_id, error=str(pack.retry[batch_id]))
        return "failed"
    error = send.BatchSendError("; ".join(f"batch {pk}: {pack.retry[pk]}" for pk in failed))
    countdown = retry_countdown(self.request.retries, list(pack.retry.values()))
    raise self.retry(args=[failed], exc=error, countdown=countdown)


@shared_task(name="subscriptions.digest_settle_in_doubt", ignore_result=True, time_limit=600)
def digest_settle_in_doubt_task() -> None:
    """Ask the ESP which readers of in-doubt batches got their email (beat, every 10 minutes)."""
    for settled in in_doubt.batches_settle(now=timezone.now()):
        logger.info(
            "digest: in-doubt batch %s settled: %s sent, %s queued again",
            settled.batch_id,
            settled.sent,
            settled.resent,
        )


@worker_process_shutdown.connect  # a prefork child ends with os._exit: atexit never runs
@worker_shutdown.connect  # the solo and threads pools send from the worker's own process
def close_smtp_connections(**kwargs) -> None:
    """QUIT the SMTP connections kept between batches, as the worker process stops."""
    esp_smtp.close_connections()
