"""Sending a batch exactly once: claim it, call the ESP, record its answer."""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from subscriptions.digest import render
from subscriptions.digest.esp import Recipient, Result, prepare_messages, send_messages
from subscriptions.models import Delivery, DeliveryBatch, Edition, Subscriber, Subscription
from subscriptions.selectors import suppressed_among

logger = logging.getLogger(__name__)

# A batch found "sending" for longer than this belongs to a dead worker: the task's
# hard time limit (tasks.SEND_TIME_LIMIT) has long killed any live one.
SENDING_STALE_AFTER = timedelta(minutes=15)


class BatchSendError(Exception):
    """The ESP (or SMTP server) failed for a batch; the batch is queued again for a retry."""


@dataclass
class BatchOutcome:
    state: str
    sent: int = 0
    suppressed: int = 0
    failed: int = 0


def edition_send_batch(*, batch_id: int, task_id: str) -> BatchOutcome:
    """Send one batch exactly once; raise BatchSendError (batch queued again) on ESP errors."""
    started = _start(batch_id=batch_id, task_id=task_id)
    if isinstance(started, BatchOutcome):
        return started
    batch, prepared, suppressed = started
    report = send_messages(edition=batch.edition, prepared=prepared)
    return _settle(batch=batch, results=report.results, error=report.error, suppressed=suppressed)


@dataclass
class PackOutcome:
    """What became of each batch of a pack; `retry` holds the ones to try again, with why."""

    outcomes: dict[int, BatchOutcome] = field(default_factory=dict)
    retry: dict[int, str] = field(default_factory=dict)


def edition_send_batches(*, batch_ids: list[int], task_id: str) -> PackOutcome:
    """Send a pack of small batches, their ESP calls overlapping; each batch exactly once.

    The planner packs the batches of rare followed sets (one set, one email, one ESP
    call), which sent one at a time would leave the worker idle on every round trip.
    Each batch keeps its own claim, committed before its call, and its own record of
    the answer, so a pack is exactly as safe as its batches sent one by one: an ESP
    error stays in its batch (queued again for the retry, the others recorded as sent),
    a redelivered pack finds its sent batches sent, and a worker dying leaves in doubt
    only the batches whose calls were in flight (at most settings.ESP_CONCURRENT_CALLS).

    The database work stays in this thread; the others build each reader's merge data
    and wait for the ESP.
    """
    pack = PackOutcome()
    editions: set[int] = set()
    in_flight: dict[Future, tuple[DeliveryBatch, int]] = {}

    def settle(futures: Iterable[Future]) -> None:
        for future in futures:
            batch, suppressed = in_flight.pop(future)
            try:
                report = future.result()
            except Exception:
                # Not an ESP answer we know (a bug, a backend's own error): whether the
                # call went out is unknown, so the batch stays "sending" and the planner
                # reports it in doubt once stale, as for a worker that died.
                logger.exception("digest: batch %s failed during its ESP call", batch.pk)
                pack.outcomes[batch.pk] = BatchOutcome(state=DeliveryBatch.State.SENDING)
                continue
            try:
                pack.outcomes[batch.pk] = _settle(
                    batch=batch,
                    results=report.results,
                    error=report.error,
                    suppressed=suppressed,
                    mark_done=False,
                )
            except BatchSendError as exc:
                pack.retry[batch.pk] = str(exc)

    calls = max(1, settings.ESP_CONCURRENT_CALLS)
    appeals_running = render._appeals_running()  # once for the pack: the sends take seconds
    with ThreadPoolExecutor(max_workers=calls, thread_name_prefix="digest-esp") as pool:
        for batch_id in batch_ids:
            if len(in_flight) >= calls:
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                settle(done)
            try:
                started = _start(
                    batch_id=batch_id,
                    task_id=task_id,
                    mark_done=False,
                    appeals_running=appeals_running,
                )
            except BatchSendError as exc:
                pack.retry[batch_id] = str(exc)
                continue
            if isinstance(started, BatchOutcome):
                pack.outcomes[batch_id] = started
                continue
            batch, prepared, suppressed = started
            editions.add(batch.edition_id)
            future = pool.submit(send_messages, edition=batch.edition, prepared=prepared)
            in_flight[future] = (batch, suppressed)
        settle(list(in_flight))
    for edition_id in editions or _editions_of(batch_ids):
        mark_edition_sent_if_done(edition_id)
    return pack


def _editions_of(batch_ids: list[int]) -> set[int]:
    return set(DeliveryBatch.objects.filter(pk__in=batch_ids).values_list("edition_id", flat=True))


def _start(
    *, batch_id: int, task_id: str, mark_done: bool = True, appeals_running: bool | None = None
):
    """Claim a batch and render its emails: (batch, prepared, suppressed) or its outcome."""
    claim = _claim(batch_id=batch_id, task_id=task_id)
    if isinstance(claim, BatchOutcome):
        if claim.state == DeliveryBatch.State.IN_DOUBT and mark_done:
            # Nothing is left to send; the in-doubt batch waits for staff in the admin.
            mark_edition_sent_if_done(DeliveryBatch.objects.get(pk=batch_id).edition_id)
        return claim
    batch, recipients, suppressed = claim
    if not recipients:
        _finish(batch=batch, results={}, error="", mark_done=mark_done)
        return BatchOutcome(state=DeliveryBatch.State.SENT, suppressed=suppressed)
    try:
        prepared = prepare_messages(
            edition=batch.edition,
            followed=batch.followed,
            recipients=recipients,
            appeals_running=appeals_running,
        )
    except Exception as exc:
        # Nothing reached the ESP yet: the batch can safely wait for a retry.
        _finish(batch=batch, results={}, error=f"Rendering failed: {exc!r}")
        raise BatchSendError(f"Rendering failed: {exc!r}") from exc
    return batch, prepared, suppressed


def _settle(
    *,
    batch: DeliveryBatch,
    results: dict[int, Result],
    error: str,
    suppressed: int,
    mark_done: bool = True,
) -> BatchOutcome:
    """Record the ESP's answer for a batch; raise BatchSendError if it must be retried."""
    _finish(batch=batch, results=results, error=error, mark_done=mark_done)
    if error:
        raise BatchSendError(error)
    failed = sum(1 for r in results.values() if not r.ok)
    return BatchOutcome(
        state=DeliveryBatch.State.SENT,
        sent=len(results) - failed,
        suppressed=suppressed,
        failed=failed,
    )


def _claim(*, batch_id: int, task_id: str):
    """Lock the batch, drop who may no longer be emailed, claim the rest, commit."""
    now = timezone.now()
    with transaction.atomic():
        batch = (
            # The batch's row only: locking its edition too would make every claim of
            # every worker wait its turn on that one row.
            DeliveryBatch.objects.select_for_update(of=("self",))
            .select_related("edition__newsletter")
            .filter(pk=batch_id)
            .first()
        )
        if batch is None:
            return BatchOutcome(state="missing")
        if batch.state == DeliveryBatch.State.SENDING:
            redelivered = bool(task_id) and batch.task_id == task_id
            stale = batch.started_at is not None and batch.started_at < now - SENDING_STALE_AFTER
            if redelivered or stale:
                # The worker that called the ESP died before recording the answer: some
                # or all of these emails may have gone. Staff decide; we never resend.
                batch.deliveries.filter(state=Delivery.State.CLAIMED).update(
                    state=Delivery.State.IN_DOUBT
                )
                batch.state = DeliveryBatch.State.IN_DOUBT
                batch.error = "The worker stopped during the ESP call; the outcome is unknown."
                batch.save(update_fields=["state", "error"])
                logger.warning("digest: batch %s is in doubt", batch.pk)
                return BatchOutcome(state=DeliveryBatch.State.IN_DOUBT)
            return BatchOutcome(state="busy")
        if batch.state != DeliveryBatch.State.QUEUED:
            return BatchOutcome(state=batch.state)
        if batch.edition.state == Edition.State.PAUSED:
            return BatchOutcome(state="paused")

        # One query for the deliveries, their readers and whether each is still
        # subscribed: in small batches every query costs per reader.
        # FOR UPDATE OF the deliveries only: a deleted reader is a NULL outer join.
        rows = list(
            batch.deliveries.select_for_update(skip_locked=True, of=("self",))
            .filter(state=Delivery.State.QUEUED)
            .annotate(
                subscribed=Exists(
                    Subscription.objects.filter(
                        subscriber=OuterRef("subscriber_id"),
                        newsletter=batch.edition.newsletter_id,
                        status=Subscription.Status.ACTIVE,
                    )
                )
            )
            .values_list(
                "pk",
                "subscriber_id",
                "subscriber__email",
                "subscriber__name",
                "subscriber__language",
                "subscribed",
            )
        )
        # The one suppression check, right before the ESP call.
        suppressed = suppressed_among([row[2] for row in rows if row[1] is not None])
        dropped: dict[str, list[int]] = defaultdict(list)
        recipients: list[Recipient] = []
        for delivery_id, subscriber_id, email, name, language, subscribed in rows:
            if subscriber_id is None:
                dropped["The subscriber was deleted before sending."].append(delivery_id)
            elif email in suppressed:
                dropped["On the suppression list."].append(delivery_id)
            elif not subscribed:
                dropped["Unsubscribed before sending."].append(delivery_id)
            else:
                # The language names each reader's greeting and links (render.recipient_values).
                subscriber = Subscriber(pk=subscriber_id, email=email, name=name, language=language)
                recipients.append(Recipient(delivery_id, subscriber))
        for reason, ids in dropped.items():
            Delivery.objects.filter(pk__in=ids).update(
                state=Delivery.State.SUPPRESSED, error=reason
            )
        Delivery.objects.filter(pk__in=[r.delivery_id for r in recipients]).update(
            state=Delivery.State.CLAIMED
        )
        batch.state = DeliveryBatch.State.SENDING
        batch.task_id = task_id
        batch.started_at = now
        batch.attempts += 1
        batch.save(update_fields=["state", "task_id", "started_at", "attempts"])
    # Committed: from here on a crash leaves the batch "sending", which is what lets a
    # redelivered task tell "maybe sent" from "never tried".
    return batch, recipients, sum(len(ids) for ids in dropped.values())


def _finish(
    *, batch: DeliveryBatch, results: dict[int, Result], error: str, mark_done: bool = True
) -> None:
    now = timezone.now()
    with transaction.atomic():
        _record_sent([(pk, r.message_id[:200]) for pk, r in results.items() if r.ok], sent_at=now)
        refused: dict[str, list[int]] = defaultdict(list)
        for pk, r in results.items():
            if not r.ok:
                refused[r.error[:300]].append(pk)
        for reason, ids in refused.items():
            Delivery.objects.filter(pk__in=ids).update(state=Delivery.State.FAILED, error=reason)
        # Whoever was claimed but not attempted (the ESP failed first) waits for the retry.
        Delivery.objects.filter(batch=batch, state=Delivery.State.CLAIMED).update(
            state=Delivery.State.QUEUED
        )
        batch.state = DeliveryBatch.State.QUEUED if error else DeliveryBatch.State.SENT
        batch.error = error[:2000]
        batch.finished_at = None if error else now
        batch.save(update_fields=["state", "error", "finished_at"])
    if not error and mark_done:
        mark_edition_sent_if_done(batch.edition_id)


def _record_sent(rows: list[tuple[int, str]], *, sent_at: datetime) -> None:
    """Mark deliveries sent with their ESP message ids, in as few statements as possible."""
    by_id: dict[str, list[int]] = defaultdict(list)
    for pk, message_id in rows:
        by_id[message_id].append(pk)
    if len(by_id) <= 10 or db_connection.vendor != "postgresql":
        # One id for the whole call (Mailgun, SES) or one per recipient elsewhere.
        if len(by_id) <= 10:
            for message_id, ids in by_id.items():
                Delivery.objects.filter(pk__in=ids).update(
                    state=Delivery.State.SENT, esp_message_id=message_id, sent_at=sent_at, error=""
                )
        else:
            Delivery.objects.bulk_update(
                [
                    Delivery(
                        pk=pk,
                        state=Delivery.State.SENT,
                        esp_message_id=mid,
                        sent_at=sent_at,
                        error="",
                    )
                    for pk, mid in rows
                ],
                ["state", "esp_message_id", "sent_at", "error"],
                batch_size=500,
            )
        return
    # A message id per recipient (Postmark, SendGrid): one UPDATE ... FROM (VALUES ...)
    # instead of bulk_update's CASE per row, which costs more to build than to run.
    table = Delivery._meta.db_table
    values = ", ".join(["(%s::bigint, %s)"] * len(rows))
    params: list = [Delivery.State.SENT.value, sent_at]
    for pk, message_id in rows:
        params += [pk, message_id]
    with db_connection.cursor() as cursor:
        # The table name is ours; every value is a parameter.
        cursor.execute(
            f"UPDATE {table} AS d SET state = %s, sent_at = %s, error = '', "  # noqa: S608
            f"esp_message_id = v.message_id FROM (VALUES {values}) AS v(id, message_id) "
            "WHERE d.id = v.id",
            params,
        )


def mark_edition_sent_if_done(edition_id: int) -> None:
    # One UPDATE after our commit: of two batches finishing together, the later one
    # sees both committed (READ COMMITTED), so the edition cannot stay "sending".
    outstanding = DeliveryBatch.objects.filter(
        edition=OuterRef("pk"),
        state__in=[DeliveryBatch.State.QUEUED, DeliveryBatch.State.SENDING],
    )
    Edition.objects.filter(pk=edition_id, state=Edition.State.SENDING).exclude(
        Exists(outstanding)
    ).update(state=Edition.State.SENT)


def batch_fail(*, batch_id: int, error: str) -> None:
    """Give up on a batch after its last retry: its waiting deliveries are failed."""
    with transaction.atomic():
        batch = DeliveryBatch.objects.select_for_update().get(pk=batch_id)
        if batch.state != DeliveryBatch.State.QUEUED:
            return
        batch.deliveries.filter(state=Delivery.State.QUEUED).update(
            state=Delivery.State.FAILED, error=error[:300]
        )
        batch.state = DeliveryBatch.State.FAILED
        batch.error = error[:2000]
        batch.finished_at = timezone.now()
        batch.save(update_fields=["state", "error", "finished_at"])
    mark_edition_sent_if_done(batch.edition_id)


def new_task_id() -> str:
    return f"inline-{uuid.uuid4()}"
