"""Helpers of the subscriptions tests: signing up through the form, links from emails,
waiting for a real worker."""

from __future__ import annotations

import re
import time

from django.test import TestCase
from django.urls import reverse


def signup(client, email: str, *newsletters, **extra):
    headers = {key: extra.pop(key) for key in list(extra) if key.startswith("HTTP_")}
    data = {
        "email": email,
        "newsletters": [n.pk for n in newsletters],
        "time_zone": "Europe/Berlin",
        "source": "footer",
        **extra,
    }
    # The request commits here, as outside a test: its outbox row is sent on commit.
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(
            reverse("subscriptions:subscribe"),
            data,
            HTTP_USER_AGENT="Mozilla/5.0 (test)",
            REMOTE_ADDR="203.0.113.7",
            **headers,
        )


def link_in(message, name: str) -> str:
    """The path of the first link to `name` (confirm, unsubscribe, ...) in an email's text."""
    match = re.search(r"https?://[^/\s]+(/[^\s>]*/" + name + r"/[^\s>]+/)", message.body)
    if match is None:
        match = re.search(r"https?://[^/\s]+(/" + name + r"/[^\s>]+/)", message.body)
    assert match, f"no {name} link in {message.body!r}"
    return match.group(1)


def confirm_path(message) -> str:
    match = re.search(r"https?://[^/\s]+(/newsletters/confirm/[^\s]+/)", message.body)
    assert match, message.body
    return match.group(1)


def wait_for(condition, *, timeout: float = 30, every: float = 0.2, what: str = "the worker"):
    """`condition()`'s first true value, asked every `every` seconds for `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
