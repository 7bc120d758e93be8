"""Where each checkout's time goes: `bench/checkout.py --stages` serves this instead.

The site's WSGI application, with each stage of a request timed: the rate limits, the
appeal read, the form, each SQL statement and its connection's health check, each Redis
round trip, the Stripe call, garbage collections, and the CPU the process used. One JSON
line per request goes to `$CHECKOUT_STAGES_DIR/<pid>.jsonl`, which `bench/checkout.py`
sums up. The wrappers cost a few microseconds each.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import time
from pathlib import Path

import redis.connection
from django.db import connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from newsroom.wsgi import application as site

_timings: dict[str, float] | None = None
_out = None


def _add(stage: str, seconds: float) -> None:
    if _timings is not None:
        _timings[stage] = _timings.get(stage, 0.0) + seconds * 1000


def _timed(owner, name: str, stage: str) -> None:
    function = getattr(owner, name)

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            _add(stage, time.perf_counter() - start)

    setattr(owner, name, timed)


def _install() -> None:
    # Imported here, once the site's import above has set Django up.
    from donations import forms, selectors, stripe_api
    from newsroom import ratelimit

    _timed(ratelimit, "allow", "rate limits")
    _timed(selectors, "appeal_for_reader", "appeal")
    _timed(forms.DonateForm, "is_valid", "form")
    _timed(stripe_api, "checkout_session_create", "stripe")
    _timed(BaseDatabaseWrapper, "connect", "db connect")
    _timed(type(connections["default"]), "is_usable", "db health check")
    _timed(redis.connection.AbstractConnection, "send_packed_command", "redis")
    _timed(redis.connection.AbstractConnection, "read_response", "redis")


_install()

_gc_start = 0.0


def _collection(phase: str, info: dict) -> None:
    global _gc_start
    if phase == "start":
        _gc_start = time.perf_counter()
    else:
        _add(f"gc gen{info['generation']}", time.perf_counter() - _gc_start)


gc.callbacks.append(_collection)


def _sql(execute, sql, params, many, context):
    start = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        _add(f"sql {sql.split(maxsplit=1)[0]}", time.perf_counter() - start)


def application(environ, start_response):
    global _timings, _out
    if _out is None:
        directory = Path(os.environ["CHECKOUT_STAGES_DIR"])
        _out = (directory / f"{os.getpid()}.jsonl").open("w", buffering=1)
    _timings = {}
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    with connection.execute_wrapper(_sql):
        result = site(environ, start_response)
        body = b"".join(result)
        if hasattr(result, "close"):
            result.close()
    timings, _timings = _timings, None
    timings["total"] = (time.perf_counter() - start) * 1000
    used = resource.getrusage(resource.RUSAGE_SELF)
    timings["cpu"] = (used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime) * 1000
    _out.write(json.dumps({"method": environ["REQUEST_METHOD"], **timings}) + "\n")
    return [body]
