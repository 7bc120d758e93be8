"""Stripe events: stored once under their unique id, then processed by a dict of handlers.

docs.stripe.com/webhooks: a redelivered event is stored once (the unique Stripe id),
each type we handle maps to one service, and the outcome and any error are recorded
on the stored event; types we do not handle are stored as ignored.

The stored event is its own outbox: its `received` outcome with `queued_at` empty says
it is owed and not yet handed to the broker. The webhook writes that one row and pushes
no task of its own for it: once the row has committed, a process pushes one
`stripe_events_drain` per short window (`DRAIN_WINDOW_SECONDS`), to run when the window and a
margin have passed, so every event the process committed inside the window is committed
before the drain reads; the drain marks each such event queued and hands its
`stripe_event_process` to the broker. The webhook answers 200 whatever the broker does.
A stored event is always processed: `stripe_event_process` holds the event's row lock
(the same event queued twice runs once), a redelivery of an event still `received` is
queued again, and `stripe_events_requeue_received` (beat, every minute) queues any event
still without `queued_at` (a drain push the broker refused, a drain lost with its worker)
and any still `received` a few minutes after it was last queued.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from time import monotonic

import psycopg
from django.db import InterfaceError, OperationalError, transaction
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.db.models import F, Q
from django.utils import timezone

from donations.models import StripeEvent
from donations.services.gifts import (
    WaitingFor,
    gift_apply_charge_refunded,
    gift_apply_checkout_session,
    gift_apply_invoice_paid,
    gift_flag_dispute,
    plan_apply_subscription,
    plan_record_payment_failed,
)
from newsroom.celery import app
from newsroom.outbox import outbox_enqueue, task_send

logger = logging.getLogger(__name__)


def _checkout_session(obj: dict, event: dict) -> None:
    gift_apply_checkout_session(session=obj, event_type=event["type"])


def _invoice_paid(obj: dict, event: dict) -> None:
    gift_apply_invoice_paid(invoice=obj)


def _invoice_payment_failed(obj: dict, event: dict) -> None:
    plan_record_payment_failed(invoice=obj)


def _subscription(obj: dict, event: dict) -> None:
    plan_apply_subscription(subscription=obj, event_created=event.get("created") or 0)


def _charge_refunded(obj: dict, event: dict) -> None:
    gift_apply_charge_refunded(charge=obj)


def _dispute_created(obj: dict, event: dict) -> None:
    gift_flag_dispute(dispute=obj)


HANDLERS: dict[str, Callable[[dict, dict], None]] = {
    "checkout.session.completed": _checkout_session,
    "checkout.session.async_payment_succeeded": _checkout_session,
    "checkout.session.async_payment_failed": _checkout_session,
    "checkout.session.expired": _checkout_session,
    "invoice.paid": _invoice_paid,
    "invoice.payment_failed": _invoice_payment_failed,
    "customer.subscription.updated": _subscription,
    "customer.subscription.deleted": _subscription,
    "charge.refunded": _charge_refunded,
    "charge.dispute.created": _dispute_created,
}


# The task that processes a stored event, queued through the outbox by its Celery name.
PROCESS_TASK = "donations.stripe_event_process"
# An event still `received` this long after it was queued is queued again: long enough
# for a worker to have taken it, short enough that a refund shows within minutes.
REQUEUE_AFTER = timedelta(minutes=5)
DONE = (StripeEvent.Outcome.PROCESSED, StripeEvent.Outcome.IGNORED)

# The task that hands the events stored since the last drain to the broker.
DRAIN_TASK = "donations.stripe_events_drain"
# A process pushes one drain per window, however many events it accepts in it: the push
# was a third of a new event's CPU in the webhook (bench/README.md, "Webhooks"). Short,
# because it is what a donor waits for beyond the worker.
DRAIN_WINDOW_SECONDS = 0.5
# The drain runs this long after its window ends: the last event the window let through
# committed before the window ended, and the worker's clock may run a little ahead of the
# web process's. A drain that still ran early leaves that event to the minute's requeue.
DRAIN_MARGIN_SECONDS = 0.25
DRAIN_BATCH = 500
# When this process's current window ends (time.monotonic()); 0 before its first push.
_drain_window_ends = 0.0


def _queue(event_ids: Iterable[int], *, now: datetime) -> None:
    """Queue each event's processing through the outbox, in the caller's transaction."""
    event_ids = list(event_ids)
    StripeEvent.objects.filter(pk__in=event_ids).update(queued_at=now)
    for event_id in event_ids:
        outbox_enqueue(task=PROCESS_TASK, kwargs={"event_id": event_id})


def stripe_event_store(*, event: dict) -> tuple[StripeEvent, bool]:
    """Store a verified event under its Stripe id (see `stripe_event_accept`); the stored
    event, without its payload, and whether this call stored it."""
    created = stripe_event_accept(event=event)
    return StripeEvent.objects.defer("payload").get(stripe_id=event["id"]), created


def stripe_event_accept(*, event: dict, payload: str | None = None) -> bool:
    """Store a verified event under its Stripe id; the window's drain queues it.

    `payload` is the event's JSON as Stripe sent it (the webhook's body), stored as it is;
    without it the event is encoded. Returns False when it was already stored; a
    redelivery of an event that is still `received` is queued again, since Stripe
    resending it is our sign it may be lost.
    The webhook's path: one statement, no model instance, each value as the database takes it.
    """
    handled = event["type"] in HANDLERS
    now = timezone.now()
    row = {
        "stripe_id": event["id"],
        "type": event["type"],
        "livemode": bool(event.get("livemode")),
        "payload": json.dumps(event) if payload is None else payload,
        "received_at": now,
        "processed_at": None if handled else now,
        "outcome": StripeEvent.Outcome.RECEIVED if handled else StripeEvent.Outcome.IGNORED,
        "waiting_for": "",
        "error": "",
        "attempts": 0,
        "queued_at": None,
    }
    created, pk, outcome, queued = _insert_or_find(row)
    if not created:
        if pk is None:
            # Not read by the insert's statement (SQLite, or on PostgreSQL a row a
            # concurrent request committed after the statement's snapshot).
            pk, outcome, queued_at = StripeEvent.objects.values_list(
                "pk", "outcome", "queued_at"
            ).get(stripe_id=event["id"])
            queued = queued_at is not None
        if outcome == StripeEvent.Outcome.RECEIVED:
            if queued:
                # Handed over already and not processed: hand it over again.
                _send_on_commit(pk)
            else:
                _drain_on_commit()
        return False
    if handled:
        _drain_on_commit()
    return True


def _insert_or_find(row: dict) -> tuple[bool, int | None, str, bool]:
    """INSERT the event unless its Stripe id is stored already, in one round trip.

    Returns (True, new id, its outcome, False), or (False, the stored event's id, its
    outcome, whether it has a `queued_at`), or (False, None, "", False) when the
    statement did not read the stored event.
    `save()` would raise and undo an IntegrityError for every event Stripe sends twice
    (and the database would log each one) before a second query read the stored event.
    """
    connection = transaction.get_connection()
    if connection.in_atomic_block:
        return _insert_or_find_once(connection, row)
    # Django checks a kept connection with a `SELECT 1` before a request's first statement
    # (conn_health_checks), a round trip as long as the insert's. Alone in autocommit the
    # insert can be tried again (a second try of a stored event finds it), so here the
    # check follows a failure instead: a connection the server dropped (a restart) is
    # opened again and the insert tried once more; a database still away raises, and the
    # webhook answers 503 for Stripe to retry.
    connection.health_check_done = True
    try:
        return _insert_or_find_once(connection, row)
    except (OperationalError, InterfaceError):
        if connection.is_usable():
            raise
        connection.close()
    return _insert_or_find_once(connection, row)


_EVENT_FIELDS = [field for field in StripeEvent._meta.concrete_fields if not field.primary_key]
_DATETIMES = {
    field.attname for field in _EVENT_FIELDS if field.get_internal_type() == "DateTimeField"
}


# Per database vendor: the event's insert-or-find, written once.
_INSERT_STATEMENTS: dict[str, str] = {}


def _insert_statement(connection) -> str:
    """The event's insert-or-find for this connection's database, written once per
    vendor: on PostgreSQL its text is also the key of the connection's prepared statement."""
    statement = _INSERT_STATEMENTS.get(connection.vendor)
    if statement is None:
        statement = _INSERT_STATEMENTS[connection.vendor] = _write_insert_statement(
            connection.vendor, connection.ops.quote_name
        )
    return statement


def _write_insert_statement(vendor: str, quote: Callable[[str], str]) -> str:
    table = quote(StripeEvent._meta.db_table)
    columns = ", ".join(quote(field.column) for field in _EVENT_FIELDS)
    placeholders = ", ".join(["%s"] * len(_EVENT_FIELDS))
    # Only the model's own names are formatted in; every value is a parameter.
    insert = (
        f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) "  # noqa: S608
        f"ON CONFLICT ({quote('stripe_id')}) DO NOTHING "
        f"RETURNING {quote('id')}, {quote('outcome')}, FALSE"
    )
    if vendor != "postgresql":
        return insert
    # The SELECT runs on the statement's snapshot: it sees the row a redelivery
    # collides with, never the one the INSERT adds.
    return (
        f"WITH new AS ({insert}) SELECT TRUE, * FROM new UNION ALL "  # noqa: S608
        f"SELECT FALSE, {quote('id')}, {quote('outcome')}, "
        f"{quote('queued_at')} IS NOT NULL FROM {table} WHERE {quote('stripe_id')} = %s"
    )


def _insert_or_find_once(connection, row: dict) -> tuple[bool, int | None, str, bool]:
    # The JSON as text in the jsonb (or SQLite's text) column; each datetime as the
    # backend takes one (on PostgreSQL, as it is).
    adapt = connection.ops.adapt_datetimefield_value
    values = [
        adapt(row[field.attname]) if field.attname in _DATETIMES else row[field.attname]
        for field in _EVENT_FIELDS
    ]
    statement = _insert_statement(connection)
    if connection.vendor == "postgresql":
        found = _execute_prepared(connection, statement, [*values, row["stripe_id"]])
        if not found:
            return False, None, "", False
        return bool(found[0]), found[1], found[2], bool(found[3])
    with connection.cursor() as cursor:
        cursor.execute(statement, values)
        found = cursor.fetchone()
    return (True, found[0], found[1], False) if found else (False, None, "", False)


class _PreparedCursor(psycopg.Cursor):
    """psycopg's cursor with parameters bound on the server, preparing what it runs."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)


class _PreparedDebugCursor(CursorDebugWrapper):
    """Django's queries log (tests, DEBUG) with the statement as written: a prepared
    execution leaves psycopg no query text for Django to read back."""

    def execute(self, sql, params=None):
        with self.debug_sql(sql, params):
            return CursorWrapper.execute(self, sql, params)


def _execute_prepared(connection, sql: str, params: list) -> tuple | None:
    """Run one statement as a prepared statement of this connection; its first row.

    Django binds parameters on the client, so PostgreSQL parses and plans every
    statement it is sent; the webhook sends this one for every event. Prepared once per
    connection, each event sends only its values: 0.55 to 0.58 ms a statement instead
    of 0.66 to 0.75 on the benchmarks' machine (bench/README.md, "Webhooks"). Django's cursor
    wrapper still runs around it (errors, execute wrappers, the queries log). Poolers in
    transaction mode keep prepared statements from PgBouncer 1.21 on
    (`max_prepared_statements`).
    """
    connection.ensure_connection()
    if connection.connection.prepare_threshold is None:
        # Django turns psycopg's preparing off (its cursors bind on the client and never
        # prepare), and off, `prepare=True` does nothing. A threshold no statement reaches
        # prepares only what is asked for.
        connection.connection.prepare_threshold = sys.maxsize
    raw = _PreparedCursor(connection.connection)
    wrap = _PreparedDebugCursor if connection.queries_logged else CursorWrapper
    with wrap(raw, connection) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _drain_on_commit() -> None:
    """Once the caller's transaction commits, make sure a drain will read what it wrote."""
    transaction.on_commit(_drain_soon, robust=True)


def _drain_soon() -> None:
    """Push a drain for the end of this window, unless this window's drain is pushed already.

    Called after the event's commit: a drain pushed earlier in the window runs after
    the window's end plus the margin, so after that commit. A refused push leaves the
    window's events to the minute's requeue rather than hold each request on a broker
    that is away. Without a broker (tasks eager) the drain runs here, now.
    """
    global _drain_window_ends
    now = monotonic()
    if now < _drain_window_ends and not app.conf.task_always_eager:
        return
    # Threads of one process racing here push two drains; the second finds nothing.
    _drain_window_ends = now + DRAIN_WINDOW_SECONDS
    task_send(task=DRAIN_TASK, kwargs={}, countdown=DRAIN_WINDOW_SECONDS + DRAIN_MARGIN_SECONDS)


def _send(event_id: int) -> bool:
    """Hand the event's task to the broker; a refusal clears `queued_at` for the requeue.

    No outbox row: the event's own `received` state is what is owed, and the next
    requeue run (a minute at most) takes an event without `queued_at`.
    """
    if task_send(task=PROCESS_TASK, kwargs={"event_id": event_id}):
        return True
    StripeEvent.objects.filter(pk=event_id, outcome=StripeEvent.Outcome.RECEIVED).update(
        queued_at=None
    )
    return False


def _send_on_commit(event_id: int) -> None:
    """Hand the event's task to the broker once the caller's transaction commits."""
    transaction.on_commit(lambda: _send(event_id), robust=True)


def stripe_events_drain() -> int:
    """Queue each event stored and not yet queued (`received`, `queued_at` empty).

    A batch is marked queued and committed before its tasks are sent; a drain running
    beside another, or beside the requeue, skips the rows they hold. Returns how many
    the broker took. At a refusal it stops, and the rest of the batch is marked not
    queued, for the requeue's next run.
    """
    sent = 0
    while True:
        with transaction.atomic():
            ids = list(
                StripeEvent.objects.select_for_update(skip_locked=True)
                .filter(outcome=StripeEvent.Outcome.RECEIVED, queued_at__isnull=True)
                .order_by("received_at")
                .values_list("pk", flat=True)[:DRAIN_BATCH]
            )
            StripeEvent.objects.filter(pk__in=ids).update(queued_at=timezone.now())
        for position, event_id in enumerate(ids):
            if not _send(event_id):
                StripeEvent.objects.filter(
                    pk__in=ids[position + 1 :], outcome=StripeEvent.Outcome.RECEIVED
                ).update(queued_at=None)
                return sent
            sent += 1
        if len(ids) < DRAIN_BATCH:
            return sent


def stripe_events_queue(*, event_ids: Iterable[int]) -> int:
    """Queue the given events to be processed again (those not processed or ignored yet)."""
    with transaction.atomic():
        ids = list(
            StripeEvent.objects.filter(pk__in=list(event_ids))
            .exclude(outcome__in=DONE)
            .values_list("pk", flat=True)
        )
        _queue(ids, now=timezone.now())
    return len(ids)


def stripe_events_requeue_received(
    *, older_than: timedelta = REQUEUE_AFTER, now: datetime | None = None
) -> int:
    """Queue again the events still `received` that the broker refused, or that are still
    `received` `older_than` after they were last queued.

    The outbox alone is not enough: it guarantees the broker took the task, not that a
    worker ran it (a broker that lost its queue, a worker gone before recording), and it
    gives a row up after ten refusals; the event's own state says what is still owed.
    """
    now = now or timezone.now()
    cutoff = now - older_than
    with transaction.atomic():
        ids = list(
            StripeEvent.objects.select_for_update(skip_locked=True)
            .filter(outcome=StripeEvent.Outcome.RECEIVED)
            .filter(Q(queued_at__isnull=True) | Q(queued_at__lte=cutoff))
            .order_by("received_at")
            .values_list("pk", flat=True)[:500]
        )
        _queue(ids, now=now)
    return len(ids)


def stripe_event_process(*, event_id: int) -> str:
    """Run an event's handler and record the outcome (and error) on the stored event."""
    failure: Exception | None = None
    with transaction.atomic():
        # The event's row is locked while its handler runs: the same event queued twice
        # (a redelivery, a requeue, staff) runs once, the other run finds it done.
        event = StripeEvent.objects.select_for_update().get(pk=event_id)
        if event.outcome in DONE:
            return event.outcome
        handler = HANDLERS.get(event.type)
        update: dict = {"attempts": F("attempts") + 1, "processed_at": timezone.now()}
        try:
            # A savepoint: a handler that fails leaves this transaction able to record it.
            with transaction.atomic():
                if handler is None:
                    update.update(outcome=StripeEvent.Outcome.IGNORED, error="")
                else:
                    handler(event.payload["data"]["object"], event.payload)
                    update.update(outcome=StripeEvent.Outcome.PROCESSED, error="", waiting_for="")
        except WaitingFor as waiting:
            update.update(
                outcome=StripeEvent.Outcome.WAITING, waiting_for=waiting.stripe_id, error=""
            )
        except Exception as error:
            update.update(outcome=StripeEvent.Outcome.FAILED, error=traceback.format_exc()[-4000:])
            failure = error
        StripeEvent.objects.filter(pk=event_id).update(**update)
    if failure is not None:
        raise failure
    return update["outcome"]


def stripe_events_retry_waiting(*, received_before: datetime | None = None) -> int:
    """Process again, here, the events waiting, failed or still `received` (the reconcile).

    Events `received` in the last few minutes are left to the task already queued for them.
    """
    retried = 0
    received_before = received_before or timezone.now() - REQUEUE_AFTER
    pending = StripeEvent.objects.filter(
        Q(outcome__in=[StripeEvent.Outcome.WAITING, StripeEvent.Outcome.FAILED])
        | Q(outcome=StripeEvent.Outcome.RECEIVED, received_at__lte=received_before)
    ).values_list("pk", flat=True)
    for event_id in pending:
        try:
            stripe_event_process(event_id=event_id)
        except Exception:
            logger.exception("Stripe event %s failed again", event_id)
        retried += 1
    return retried
