"""Reads of the subscriptions app that pages, emails and tasks share."""

from __future__ import annotations

from collections.abc import Iterable

from subscriptions.models import Suppression, email_hash


def suppressed_among(emails: Iterable[str]) -> set[str]:
    """The addresses among `emails` that must not be emailed (the one suppression check)."""
    by_hash = {email_hash(email): email for email in emails}
    found = Suppression.objects.filter(email_sha256__in=list(by_hash)).values_list(
        "email_sha256", flat=True
    )
    return {by_hash[digest] for digest in found}
