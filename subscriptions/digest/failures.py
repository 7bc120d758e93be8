"""What a failed ESP call proves: that the ESP took nothing (retry it), or nothing at all.

A retry is safe only when the error shows the request never reached the ESP, or
reached it and was refused whole: the connection was never made (refused, DNS, a
connect timeout), the ESP answered 4xx (a validation error, or 429 asking us to come
back later), an SMTP server refused the message with a reply code, or anymail
refused the message before any request. Anything after the request may have
reached the ESP (a read timeout, a connection reset or closed after sending, a 5xx,
an answer we could not read) leaves the outcome unknown: the batch is in doubt.
"""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests
from anymail.exceptions import AnymailAPIError, AnymailError
from urllib3.exceptions import MaxRetryError, NewConnectionError


class SmtpNothingSent(smtplib.SMTPException):
    """The SMTP conversation failed before the message's DATA: the server took nothing."""


# An SMTP server answering with a reply code refused that message (RFC 5321 §4.2);
# SMTPServerDisconnected has no code: the server may have taken the DATA already.
SMTP_REFUSALS = (
    SmtpNothingSent,
    smtplib.SMTPConnectError,
    smtplib.SMTPHeloError,
    smtplib.SMTPAuthenticationError,
    smtplib.SMTPNotSupportedError,
    smtplib.SMTPSenderRefused,
    smtplib.SMTPRecipientsRefused,
    smtplib.SMTPDataError,
)
# The connection was never made: nothing was sent.
NEVER_CONNECTED = (
    requests.ConnectTimeout,
    NewConnectionError,  # refused, unreachable, and NameResolutionError (DNS)
    ConnectionRefusedError,
    socket.gaierror,
)


@dataclass(frozen=True)
class Verdict:
    """`refused`: the ESP provably took nothing, so a retry sends nobody a second copy."""

    refused: bool
    retry_after: int | None = None


def verdict(exc: BaseException | None) -> Verdict:
    """Whether the failed call `exc` provably left the ESP without the batch."""
    if exc is None:
        return Verdict(refused=False)
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int):
        if status == 429:
            return Verdict(refused=True, retry_after=retry_after(response))
        # 4xx: the ESP read the request and refused it whole (RFC 9110 §15.5).
        return Verdict(refused=400 <= status < 500)
    for cause in _causes(exc):
        if isinstance(cause, NEVER_CONNECTED + SMTP_REFUSALS):
            return Verdict(refused=True)
    # anymail's own refusals (an unsupported feature, a bad address, missing settings)
    # come before any request; its API errors come from one.
    if isinstance(exc, AnymailError) and not isinstance(exc, AnymailAPIError):
        return Verdict(refused=True)
    return Verdict(refused=False)


def retry_after(response) -> int | None:
    """Seconds a 429's Retry-After asks for (delay-seconds or an HTTP-date, RFC 9110 §10.2.3)."""
    value = (getattr(response, "headers", None) or {}).get("Retry-After", "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return int(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0, round((when - datetime.now(UTC)).total_seconds()))


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it wraps: its cause and context, and requests' and urllib3's reasons."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
        if isinstance(current, MaxRetryError) and current.reason is not None:
            pending.append(current.reason)
        if isinstance(current, requests.RequestException):
            pending += [arg for arg in current.args if isinstance(arg, BaseException)]
