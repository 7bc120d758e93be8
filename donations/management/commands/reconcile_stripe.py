"""Fill in what a lost webhook missed: `python manage.py reconcile_stripe --since 2d`."""

from __future__ import annotations

import re
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from donations import services

UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str) -> timedelta:
    match = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", value)
    if not match:
        raise CommandError(f"--since {value!r}: write a number and a unit, like 2d, 12h or 30m.")
    return timedelta(**{UNITS[match[2]]: int(match[1])})


class Command(BaseCommand):
    help = (
        "Apply the Stripe events of the handled types that the site never stored or processed, "
        "record any gift a lost webhook missed, and retry events waiting or failed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--since", default="2d", help="How far back to look, up to 30d: 30m, 12h, 2d, 1w."
        )

    def handle(self, *args, since: str, **options) -> None:
        try:
            counts = services.stripe_reconcile(since=parse_since(since))
        except services.ReconcileWindowTooLong as exc:
            raise CommandError(f"--since {since}: {exc}") from exc
        self.stdout.write(
            f"Listed {counts['events']} Stripe event(s): stored {counts['events_stored']} "
            f"the site had missed, processed {counts['events_processed']}, "
            f"{counts['events_failed']} failed. "
            f"Checked {counts['sessions']} checkout sessions and {counts['invoices']} invoices; "
            f"recovered {counts['recovered']} gift(s); "
            f"processed {counts['retried']} waiting event(s) again."
        )
