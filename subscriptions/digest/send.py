"""Sending a batch exactly once: render it, claim it, call the ESP, record its answer."""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from queue import SimpleQueue
from typing import TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, FilteredRelation, OuterRef, Q
from django.utils import timezone

from newsroom.mail import RenderedEmail
from subscriptions.digest import ledger, render
from subscriptions.digest.esp import (
    Reader,
    Recipient,
    Result,
    SendReport,
    prepare_messages,
    send_messages,
)
from subscriptions.digest.failures import verdict
from subscriptions.models import Delivery, DeliveryBatch, Edition, Subscriber, Subscription
from subscriptions.selectors import suppressed_among

logger = logging.getLogger(__name__)
T = TypeVar("T")

# A batch found "sending" for longer than this belongs to a dead worker: the task's
# hard time limit (tasks.SEND_TIME_LIMIT) has long killed any live one.
SENDING_STALE_AFTER = timedelta(minutes=15)


class BatchSendError(Exception):
    """The ESP provably took nothing of a batch; the batch is queued again for a retry.

    `retry_after` is how long the ESP asked us to wait (a 429's Retry-After), if it did.
    """

    def __init__(self, message: str, *, retry_after: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class BatchOutcome:
    state: str
    sent: int = 0
    suppressed: int = 0
    failed: int = 0


def edition_send_batch(*, batch_id: int, task_id: str) -> BatchOutcome:
    """Send one batch exactly once.

    Raise BatchSendError (the batch queued again) when the ESP provably took nothing;
    any other failure of the call leaves the batch in doubt, never retried by itself.
    """
    started = _start(batch_id=batch_id, task_id=task_id)
    if isinstance(started, BatchOutcome):
        return started
    batch, prepared, suppressed = started
    report = _call_esp(
        edition=batch.edition,
        prepared=prepared,
        on_accepted=partial(_record_accepted, edition_id=batch.edition_id),
    )
    return _settle(batch=batch, report=report, suppressed=suppressed)


def _call_esp(**kwargs) -> SendReport:
    """esp.send_messages, with an error it lets through (opening the connection, a
    backend's own bug) reported like the others, for failures.verdict to judge."""
    try:
        return send_messages(**kwargs)
    except Exception as exc:
        return SendReport({}, f"{type(exc).__name__}: {exc}", exc)


@dataclass
class PackOutcome:
    """What became of each batch of a pack; `retry` holds the ones to try again, with why."""

    outcomes: dict[int, BatchOutcome] = field(default_factory=dict)
    retry: dict[int, BatchSendError] = field(default_factory=dict)


# How often a pack's thread records the messages its calls reported accepted (SMTP).
ACCEPTED_POLL_SECONDS = 0.05


def edition_send_batches(*, batch_ids: list[int], task_id: str) -> PackOutcome:
    """Send a pack of small batches, their ESP calls overlapping; each batch exactly once.

    The planner packs the batches of rare followed sets (one set, one email, one ESP
    call), which sent one at a time would leave the worker idle on every round trip.
    Each batch keeps its own claim, committed before its call, and its own record of
    the answer, so a pack is exactly as safe as its batches sent one by one: an ESP
    error stays in its batch (queued again for the retry, or in doubt, the others
    recorded as sent), a redelivered pack finds its sent batches sent, and a worker
    dying leaves in doubt only the batches whose calls were in flight (at most
    settings.ESP_CONCURRENT_CALLS).

    The database work stays in this thread; the others build each reader's merge data
    and wait for the ESP, and hand over each message accepted on its own (SMTP) through
    `accepted`, recorded here within ACCEPTED_POLL_SECONDS.
    """
    pack = PackOutcome()
    editions: set[int] = set()
    in_flight: dict[Future, tuple[DeliveryBatch, int]] = {}
    accepted: SimpleQueue[tuple[int, str, Result]] = SimpleQueue()

    def record_accepted() -> None:
        rows: dict[int, list[tuple[str, str]]] = defaultdict(list)
        while not accepted.empty():
            edition_id, key, result = accepted.get()
            rows[edition_id].append((key, result.message_id))
        for edition_id, sent in rows.items():
            _record_sent(sent, edition_id=edition_id, sent_at=timezone.now())

    def settle_one_or_more() -> None:
        done: set[Future] = set()
        while not done:
            done, _ = wait(in_flight, timeout=ACCEPTED_POLL_SECONDS, return_when=FIRST_COMPLETED)
            record_accepted()
        for future in done:
            batch, suppressed = in_flight.pop(future)
            try:
                pack.outcomes[batch.pk] = _settle(
                    batch=batch, report=future.result(), suppressed=suppressed, mark_done=False
                )
            except BatchSendError as exc:
                pack.retry[batch.pk] = exc

    calls = max(1, settings.ESP_CONCURRENT_CALLS)
    appeals_running = render._appeals_running()  # once for the pack: the sends take seconds
    with ThreadPoolExecutor(max_workers=calls, thread_name_prefix="digest-esp") as pool:
        for batch_id in batch_ids:
            if len(in_flight) >= calls:
                settle_one_or_more()
            try:
                started = _start(
                    batch_id=batch_id,
                    task_id=task_id,
                    mark_done=False,
                    appeals_running=appeals_running,
                )
            except BatchSendError as exc:
                pack.retry[batch_id] = exc
                continue
            if isinstance(started, BatchOutcome):
                pack.outcomes[batch_id] = started
                continue
            batch, prepared, suppressed = started
            editions.add(batch.edition_id)
            future = pool.submit(
                _call_esp,
                edition=batch.edition,
                prepared=prepared,
                on_accepted=partial(_put_accepted, accepted, batch.edition_id),
            )
            in_flight[future] = (batch, suppressed)
        while in_flight:
            settle_one_or_more()
    for edition_id in editions or _editions_of(batch_ids):
        mark_edition_sent_if_done(edition_id)
    return pack


def _put_accepted(accepted: SimpleQueue, edition_id: int, rows: list[tuple[str, Result]]) -> None:
    for key, result in rows:
        accepted.put((edition_id, key, result))


def _editions_of(batch_ids: list[int]) -> set[int]:
    return set(DeliveryBatch.objects.filter(pk__in=batch_ids).values_list("edition_id", flat=True))


def _start(
    *, batch_id: int, task_id: str, mark_done: bool = True, appeals_running: bool | None = None
):
    """Claim a batch and render its emails: (batch, prepared, suppressed) or its outcome.

    The claim reads the readers still due and renders their emails before it commits:
    a worker that dies while rendering leaves the batch queued, and its redelivered task
    simply sends it.
    """
    try:
        claim = _claim(batch_id=batch_id, task_id=task_id, appeals_running=appeals_running)
    except RenderingFailed as exc:
        # Nothing is claimed and nothing reached the ESP: the batch waits for a retry.
        error = f"Rendering failed: {exc.__cause__!r}"
        DeliveryBatch.objects.filter(pk=batch_id).update(error=error[:2000])
        raise BatchSendError(error) from exc.__cause__
    if isinstance(claim, BatchOutcome):
        if claim.state == DeliveryBatch.State.IN_DOUBT and mark_done:
            # Nothing is left to send; the in-doubt batch waits to be settled.
            mark_edition_sent_if_done(DeliveryBatch.objects.get(pk=batch_id).edition_id)
        return claim
    batch, prepared, suppressed = claim
    if not prepared:
        _finish(batch=batch, results={}, state=DeliveryBatch.State.SENT, mark_done=mark_done)
        return BatchOutcome(state=DeliveryBatch.State.SENT, suppressed=suppressed)
    return batch, prepared, suppressed


class RenderingFailed(Exception):
    """Rendering a batch's emails raised (its __cause__); the claim is rolled back."""


def _prepare(
    *, batch: DeliveryBatch, recipients: list[Recipient], appeals_running: bool | None
) -> list[tuple[RenderedEmail, list[Recipient]]]:
    """Render what the batch's readers get, once per followed set of theirs (and appeal)."""
    if not recipients:
        return []
    if appeals_running is None:
        appeals_running = render._appeals_running()
    by_id = {recipient.subscriber.pk: recipient for recipient in recipients}
    prepared: list[tuple[RenderedEmail, list[Recipient]]] = []
    for followed, readers in ledger.batch_groups(batch):
        if group := [by_id[pk] for pk in readers if pk in by_id]:
            prepared += prepare_messages(
                edition=batch.edition,
                followed=followed,
                recipients=group,
                appeals_running=appeals_running,
            )
    return prepared


def _settle(
    *, batch: DeliveryBatch, report: SendReport, suppressed: int, mark_done: bool = True
) -> BatchOutcome:
    """Record the ESP's answer for a batch; raise BatchSendError if it must be retried."""
    results = report.results
    sent = sum(1 for r in results.values() if r.ok)
    if report.error:
        found = verdict(report.exception)
        if found.refused:
            _finish(
                batch=batch,
                results=results,
                state=DeliveryBatch.State.QUEUED,
                error=report.error,
                mark_done=mark_done,
            )
            raise BatchSendError(report.error, retry_after=found.retry_after)
        _finish(
            batch=batch,
            results=results,
            state=DeliveryBatch.State.IN_DOUBT,
            error=f"The ESP call failed after it may have reached the ESP: {report.error}",
            mark_done=mark_done,
        )
        logger.warning("digest: batch %s is in doubt (%s)", batch.pk, report.error)
        return BatchOutcome(state=DeliveryBatch.State.IN_DOUBT, sent=sent, suppressed=suppressed)
    _finish(batch=batch, results=results, state=DeliveryBatch.State.SENT, mark_done=mark_done)
    return BatchOutcome(
        state=DeliveryBatch.State.SENT,
        sent=sent,
        suppressed=suppressed,
        failed=len(results) - sent,
    )


def _readers(batch: DeliveryBatch) -> tuple[list[Recipient], dict[str, list[int]]]:
    """The batch's waiting readers who may still be emailed, in its order, and the
    others (subscriber ids) by reason.

    Waiting: in the batch's list without a row of their own (ledger). One query for
    the readers and whether each is still subscribed: in small batches every query
    costs per reader.
    """
    waiting = ledger.readers_waiting(batch)
    rows = {
        row[0]: row
        for row in Subscriber.objects.filter(pk__any_of=waiting)
        .order_by()
        .annotate(
            # The readers' ids again in the join: without them PostgreSQL read every
            # active subscription of the newsletter (a scan of the whole table, hashed)
            # for each batch; with them, an index scan of the batch's few hundred.
            active=FilteredRelation(
                "subscriptions",
                condition=Q(
                    subscriptions__subscriber_id__any_of=waiting,
                    subscriptions__newsletter=batch.edition.newsletter_id,
                    subscriptions__status=Subscription.Status.ACTIVE,
                ),
            )
        )
        .values_list("pk", "email", "name", "public_id", "language", "active__id")
    }
    suppressed = suppressed_among([row[1] for row in rows.values()])
    dropped: dict[str, list[int]] = defaultdict(list)
    recipients: list[Recipient] = []
    for subscriber_id in waiting:
        row = rows.get(subscriber_id)
        if row is None:
            # Deleted since planning: the id names nobody now (ledger), and no row can.
            dropped[DELETED].append(subscriber_id)
            continue
        _, email, name, public_id, language, subscription_id = row
        if email in suppressed:
            dropped["On the suppression list."].append(subscriber_id)
        elif subscription_id is None:
            dropped["Unsubscribed before sending."].append(subscriber_id)
        else:
            # The public id signs the reader's links (tokens); the language names their
            # greeting and links (render.recipient_values).
            reader = Reader(subscriber_id, email, name, public_id, language)
            recipients.append(Recipient(ledger.reader_key(batch.pk, subscriber_id), reader))
    return recipients, dropped


DELETED = "The subscriber was deleted before sending."


def _lock_batch(batch_id: int) -> DeliveryBatch | None:
    """The batch with its edition and newsletter, its row locked until the transaction ends."""
    return (
        # The batch's row only: locking its edition too would make every claim of every
        # worker wait its turn on that one row.
        DeliveryBatch.objects.select_for_update(of=("self",))
        .select_related("edition__newsletter")
        .filter(pk=batch_id)
        .first()
    )


def _claim(*, batch_id: int, task_id: str, appeals_running: bool | None):
    """Claim a queued batch: (batch, its due readers' emails rendered, suppressed), or the
    outcome of a batch that is not queued, in one transaction holding the batch's lock.

    Readers who unsubscribed or were suppressed since planning are set apart here, read
    under the lock that the claim commits: nobody is sent whom the commit does not name.
    A batch found "sending" by its own task again, or long after its start, belongs to
    a worker that died during the ESP call: it is reported in doubt here.
    """
    now = timezone.now()
    with transaction.atomic():
        batch = _lock_batch(batch_id)
        if batch is None:
            return BatchOutcome(state="missing")
        if batch.state == DeliveryBatch.State.SENDING:
            redelivered = bool(task_id) and batch.task_id == task_id
            stale = batch.started_at is not None and batch.started_at < now - SENDING_STALE_AFTER
            if redelivered or stale:
                # The worker that called the ESP died before recording the answer: the
                # readers it had not recorded (no row of their own) may or may not have
                # their email. They are settled by asking the ESP where it can tell, by
                # staff elsewhere; never resent by themselves.
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
        # The batch's row lock covers its readers: their own rows are written only by
        # holders of it (the send, in_doubt, staff).
        due, dropped = _readers(batch)
        try:
            # Rendered once per followed set and kept by the process (render.py): under
            # the lock only the first batch of a set waits for it.
            prepared = _prepare(batch=batch, recipients=due, appeals_running=appeals_running)
        except Exception as exc:
            raise RenderingFailed from exc
        ledger.readers_set_apart(
            edition_id=batch.edition_id,
            fates={
                pk: ledger.Fate(Delivery.State.SUPPRESSED, batch.pk, error=reason)
                for reason, ids in dropped.items()
                if reason != DELETED
                for pk in ids
            },
        )
        batch.state = DeliveryBatch.State.SENDING
        batch.task_id = task_id
        batch.started_at = now
        batch.attempts += 1
        batch.error = ""
        batch.save(update_fields=["state", "task_id", "started_at", "attempts", "error"])
    # Committed: from here on a crash leaves the batch "sending", which is what lets a
    # redelivered task tell "maybe sent" from "never tried".
    return batch, prepared, sum(len(ids) for ids in dropped.values())


def _record_accepted(accepted: list[tuple[str, Result]], *, edition_id: int) -> None:
    """Record messages the ESP accepted before the batch's end (SMTP), in one statement."""
    _record_sent(
        [(key, r.message_id) for key, r in accepted], edition_id=edition_id, sent_at=timezone.now()
    )


def _finish(
    *,
    batch: DeliveryBatch,
    results: dict[str, Result],
    state: str,
    error: str = "",
    mark_done: bool = True,
) -> None:
    """Record the batch's new state, and the readers whose fate is not the batch's.

    A sent batch's readers are sent by its state alone: rows only for those the ESP
    refused. A batch queued again or in doubt also records the readers the ESP did
    take, so that neither its retry nor its resend sends them a second copy.
    """
    now = timezone.now()
    with transaction.atomic():
        if state != DeliveryBatch.State.SENT:
            _record_sent(
                [(key, r.message_id) for key, r in results.items() if r.ok],
                edition_id=batch.edition_id,
                sent_at=now,
            )
        ledger.readers_set_apart(
            edition_id=batch.edition_id,
            fates={
                subscriber_id: ledger.Fate(Delivery.State.FAILED, batch_id, error=r.error)
                for batch_id, subscriber_id, r in _by_reader(results.items())
                if not r.ok
            },
        )
        batch.state = state
        batch.error = error[:2000]
        batch.finished_at = now if state == DeliveryBatch.State.SENT else None
        batch.save(update_fields=["state", "error", "finished_at"])
    if state != DeliveryBatch.State.QUEUED and mark_done:
        mark_edition_sent_if_done(batch.edition_id)


def _record_sent(rows: list[tuple[str, str]], *, edition_id: int, sent_at: datetime) -> None:
    """Give readers the ESP took a row of their own, with its message id: those of a
    batch not (yet) recorded as sent, e.g. each one SMTP accepts, before the next."""
    ledger.readers_set_apart(
        edition_id=edition_id,
        fates={
            subscriber_id: ledger.Fate(
                Delivery.State.SENT, batch_id, esp_message_id=message_id, sent_at=sent_at
            )
            for batch_id, subscriber_id, message_id in _by_reader(rows)
        },
    )


def _by_reader(rows: Iterable[tuple[str, T]]) -> Iterator[tuple[int, int, T]]:
    """(batch id, subscriber id, value) from (reader key, value): the key each message
    was sent under (ledger.reader_key)."""
    for key, value in rows:
        parsed = ledger.parse_reader_key(key)
        if parsed is not None:
            yield *parsed, value


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
        # Its waiting readers are failed with it: they have no row of their own.
        batch.state = DeliveryBatch.State.FAILED
        batch.error = error[:2000]
        batch.finished_at = timezone.now()
        batch.save(update_fields=["state", "error", "finished_at"])
    mark_edition_sent_if_done(batch.edition_id)


def new_task_id() -> str:
    return f"inline-{uuid.uuid4()}"
