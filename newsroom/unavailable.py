"""A database that is down, hung or too slow answers 503 with a page, never a 500.

Three bounds turn a database that does not answer into an error within seconds: the
connect timeout (a new connection), the statement timeout (a statement the server is
slow to finish; the server cancels it) and, in web processes, the watchdog below (an
open connection whose server has stopped answering altogether, which cannot cancel
anything). The middleware turns that error into a page that says to come back
shortly, with `Retry-After` (RFC 9110 §10.2.3), and one log line per kind of failure a
minute instead of a traceback per request.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from newsroom import faults

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30
# Beyond the statement timeout, the time the server's own cancellation may take to arrive.
CANCEL_GRACE_SECONDS = 2


def log_once_a_minute(kind: str, error: BaseException) -> None:
    """Log `error` as one line, at most once per FAULT_LOG_SECONDS per `kind` in this process."""
    faults.report(logger, kind, error)


def database_unavailable(request: HttpRequest) -> HttpResponse:
    # The template leaves out every part of the layout that reads the database.
    response = render(request, "newsroom/database_unavailable.html", status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class _Watchdog:
    """One thread per web process that cuts the database socket of a request stuck on it.

    A connection seen waiting for the server's answer at every look for longer than the
    bound has met a server that stopped answering (a slow statement is cancelled by the
    server before then): shutting the socket down makes the driver raise at once, and
    the request gets the 503 page instead of holding its worker. Only the wait counts,
    not the request's age, so a request slow elsewhere (a call to Stripe) is left alone.
    """

    LOOK_EVERY_SECONDS = 0.25

    def __init__(self) -> None:
        # Per request thread: its connection, and since when it has been seen waiting.
        self._watched: dict[int, list] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, *, seconds: float, database) -> int:
        token = threading.get_ident()
        with self._lock:
            self._watched[token] = [database, None, seconds]
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="db-watchdog")
                self._thread.start()
        return token

    def forget(self, token: int) -> None:
        with self._lock:
            self._watched.pop(token, None)

    def _run(self) -> None:
        while True:
            time.sleep(self.LOOK_EVERY_SECONDS)
            now = time.monotonic()
            with self._lock:
                watched = list(self._watched.items())
            for token, entry in watched:
                try:
                    self._look(token, entry, now)
                except Exception:  # a connection closed under our eyes: the thread lives on
                    entry[1] = None

    def _look(self, token: int, entry: list, now: float) -> None:
        database, waiting_since, seconds = entry
        pgconn = getattr(getattr(database, "connection", None), "pgconn", None)
        if pgconn is None or not _waiting(pgconn):
            entry[1] = None
        elif waiting_since is None:
            entry[1] = now
        elif now - waiting_since >= seconds:
            _cut(pgconn)
            self.forget(token)


def _waiting(pgconn) -> bool:
    from psycopg.pq import TransactionStatus

    # ACTIVE: a command was sent and its result has not come back yet.
    return pgconn.transaction_status == TransactionStatus.ACTIVE


def _cut(pgconn) -> None:
    with contextlib.suppress(OSError), socket.socket(fileno=os.dup(pgconn.socket)) as sock:
        sock.shutdown(socket.SHUT_RDWR)


_watchdog = _Watchdog()


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.bound = (
            settings.DATABASE_STATEMENT_TIMEOUT + CANCEL_GRACE_SECONDS
            if settings.WEB_PROCESS
            and settings.USING_POSTGRES
            and settings.DATABASE_STATEMENT_TIMEOUT
            else None
        )

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.bound is None:
            return self.get_response(request)
        # The wrapper itself, not django.db.connection: that proxy is per thread.
        token = _watchdog.watch(seconds=self.bound, database=connections[DEFAULT_DB_ALIAS])
        try:
            return self.get_response(request)
        finally:
            _watchdog.forget(token)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        return database_unavailable_response(request, exception)


def database_unavailable_response(request: HttpRequest, error: BaseException) -> HttpResponse:
    """The 503 page for a request the database failed, logged once a minute."""
    log_once_a_minute("database unavailable", error)
    response = database_unavailable(request)
    # Django's own "Service Unavailable: <path>" line per request (django.utils.log.
    # log_response honours this mark): the line a minute above stands for them all.
    response._has_been_logged = True
    return response
