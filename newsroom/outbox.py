"""The transactional outbox: a task a change needs is stored with the change, then sent.

`outbox_enqueue` writes the row in the caller's transaction and, once that commits, hands
it to the broker. A broker that refuses or hangs leaves the row pending (the request
answers as usual) and `outbox_send_pending`, run by beat every minute, sends it later.
A row is marked sent only after the broker accepted it, so a task can arrive twice:
every task queued here must be idempotent. Without a broker (tasks eager) the task runs
in this process on commit instead. Tasks are known by their Celery name, so any app can
queue through here without newsroom importing it.

`task_send` is the same hand-over without a row, for a caller whose own stored state
already says what is still owed and who queues it again from there (a Stripe event that
is still `received`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from newsroom.celery import app
from newsroom.models import OutboxMessage

logger = logging.getLogger(__name__)

# A request must not wait on a broker that hangs; beat tries again a minute later.
SEND_TIMEOUT_SECONDS = 1.0
# Younger pending rows belong to the commit that is sending them right now.
RETRY_AFTER = timedelta(minutes=1)
# After this many refusals a row is failed and shown as such to staff; it is not retried.
MAX_ATTEMPTS = 10
# Sent rows are kept this long for staff to see, then deleted: their arguments can hold
# a reader's address.
KEEP_SENT = timedelta(days=7)
BATCH_SIZE = 500

# One broker connection per process and thread, kept open: opening one costs a request more
# than the publish itself (a TCP connect, a PING, the queue's declaration).
_local = threading.local()


def outbox_enqueue(*, task: str, kwargs: dict) -> OutboxMessage:
    """Store `task` with its arguments in the current transaction; send it once that commits."""
    message = OutboxMessage.objects.create(task=task, kwargs=kwargs)
    transaction.on_commit(lambda: _send([message]), robust=True)
    return message


def outbox_send_pending(*, now: datetime | None = None) -> int:
    """Send the rows that are still pending a while after their commit; return how many went."""
    now = now or timezone.now()
    OutboxMessage.objects.filter(
        state=OutboxMessage.State.SENT, sent_at__lt=now - KEEP_SENT
    ).delete()
    waiting = OutboxMessage.objects.filter(
        state=OutboxMessage.State.PENDING, created_at__lte=now - RETRY_AFTER
    ).order_by("created_at", "id")[:BATCH_SIZE]
    return _send(list(waiting))


def task_send(*, task: str, kwargs: dict, countdown: float = 0) -> bool:
    """Hand `task` to the broker once, bounded; return False when it was refused.

    A worker runs it `countdown` seconds from now at the earliest. Without a broker (tasks
    eager) the task runs here at once, and False means it failed.
    """
    if app.conf.task_always_eager:
        try:
            _task_named(task).apply(kwargs=kwargs, throw=True)
        except Exception:
            logger.warning("task %s failed in process", task, exc_info=True)
            return False
        return True
    try:
        _publish(_connection(), task, kwargs, countdown=countdown)
    except Exception as error:
        _connection_drop()
        logger.warning("task %s not sent: %r", task, error)
        return False
    return True


def _connection():
    """This process's and thread's broker connection, opened on first use."""
    url = app.conf.broker_write_url or app.conf.broker_url
    # A forked worker must not share its parent's socket; a changed broker URL gets its own.
    key = (os.getpid(), url)
    if getattr(_local, "key", None) != key:
        _local.key = key
        _local.connection = app.connection_for_write(
            transport_options={
                # One try, bounded: kombu's own retries would hold the request for seconds.
                "max_retries": 0,
                "socket_connect_timeout": SEND_TIMEOUT_SECONDS,
                "socket_timeout": SEND_TIMEOUT_SECONDS,
            },
        )
    return _local.connection


def _publish(connection, task: str, kwargs: dict, *, countdown: float = 0) -> None:
    if connection.transport.driver_type == "redis":
        _redis_push(connection, task, kwargs, countdown=countdown)
    else:
        app.send_task(
            task, kwargs=kwargs, connection=connection, retry=False, countdown=countdown or None
        )


# Celery's message protocol 2: the body is (args, kwargs, embed); nothing is chained.
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


@cache
def _message_template(task: str) -> tuple[str, dict]:
    """`task`'s queue and the headers and properties Celery would give its message."""
    route = app.amqp.router.route({}, task, (), {})
    queue = route["queue"].name
    message = app.amqp.create_task_message(
        "template", task, (), {}, reply_to="", ignore_result=app.conf.task_ignore_result
    )
    return queue, {"headers": message.headers, "properties": message.properties}


def _redis_push(connection, task: str, kwargs: dict, *, countdown: float = 0) -> None:
    """Push `task`'s message onto its queue's Redis list in one command.

    The message is the one `send_task` would publish, as kombu's Redis transport stores
    it (`Channel.basic_publish` then `_put`), made from a template built once per task:
    `send_task` spends several times the push itself on routing, reprs and signals for
    every call, and the webhook sends one per event, the worker one per email it owes.
    Priority 0 is the queue's own key; a countdown is the message's `eta` header, as
    Celery writes it (ISO 8601, aware).
    """
    queue, template = _message_template(task)
    channel = connection.default_channel
    task_id = str(uuid.uuid4())
    eta = (datetime.now(UTC) + timedelta(seconds=countdown)).isoformat() if countdown else None
    body, body_encoding = channel.encode_body(
        json.dumps([[], kwargs, _EMBED]), channel.body_encoding
    )
    message = {
        "body": body,
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            **template["headers"],
            "id": task_id,
            "root_id": task_id,
            "kwargsrepr": repr(kwargs),
            "eta": eta,
        },
        "properties": {
            **template["properties"],
            "correlation_id": task_id,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": body_encoding,
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    channel.client.lpush(channel._q_for_pri(queue, 0), json.dumps(message))


def _connection_drop() -> None:
    """Forget a connection the broker failed on; the next send opens a new one."""
    connection = getattr(_local, "connection", None)
    _local.key = _local.connection = None
    if connection is not None:
        try:
            connection.release()
        except Exception:
            # Closing a connection that never opened can raise too.
            logger.debug("outbox: closing a failed broker connection", exc_info=True)


def _claim(message: OutboxMessage) -> bool:
    # Compare-and-set on the attempt count: two beat runs racing send a row once.
    claimed = OutboxMessage.objects.filter(
        pk=message.pk, state=OutboxMessage.State.PENDING, attempts=message.attempts
    ).update(attempts=F("attempts") + 1)
    message.attempts += 1
    return bool(claimed)


def _sent(message: OutboxMessage) -> None:
    OutboxMessage.objects.filter(pk=message.pk).update(
        state=OutboxMessage.State.SENT, sent_at=timezone.now(), last_error=""
    )


def _refused(message: OutboxMessage, error: BaseException) -> None:
    logger.warning("outbox: %s #%s not sent: %r", message.task, message.pk, error)
    state = (
        OutboxMessage.State.FAILED
        if message.attempts >= MAX_ATTEMPTS
        else OutboxMessage.State.PENDING
    )
    OutboxMessage.objects.filter(pk=message.pk).update(
        state=state, last_error=f"{type(error).__name__}: {error}"[:2000]
    )


def _send(messages: list[OutboxMessage]) -> int:
    if app.conf.task_always_eager:
        return sum(_run_here(message) for message in messages if _claim(message))
    sent = 0
    try:
        connection = _connection()
        for message in messages:
            if not _claim(message):
                continue
            try:
                _publish(connection, message.task, message.kwargs)
            except Exception as error:
                # The broker is away: the rest of the batch would wait on it too.
                _connection_drop()
                _refused(message, error)
                break
            _sent(message)
            sent += 1
    except Exception:
        _connection_drop()
        logger.warning("outbox: broker connection failed", exc_info=True)
    return sent


def _task_named(name: str):
    task = app.tasks.get(name)
    if task is None:
        app.loader.import_default_modules()
        task = app.tasks.get(name)
    if task is None:
        raise LookupError(f"no task named {name!r}")
    return task


def _run_here(message: OutboxMessage) -> int:
    try:
        _task_named(message.task).apply(kwargs=message.kwargs, throw=True)
    except Exception as error:
        _refused(message, error)
        return 0
    _sent(message)
    return 1
