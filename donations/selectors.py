"""Reads of the donations app that pages, emails and tasks share."""

from __future__ import annotations

from django.http import HttpRequest


def reader_state_key(request: HttpRequest) -> str:
    """A short key of what the reader's signed state cookie says ("" for none).

    Cached pages vary on it, so an appeal a reader dismissed, or the 30 quiet days
    after a gift, can be honoured without a session.
    """
    return ""


def appeal_for_newsletter(*, email: str):
    """The appeal to show inside a newsletter sent to `email`, or None."""
    return None
