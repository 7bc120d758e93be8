"""Each donor's statement for a year: `python manage.py send_giving_statements --year 2026`."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from donations import services


class Command(BaseCommand):
    help = "Email every donor of a year their giving statement (once per donor and year)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--year", type=int, default=None, help="The year of the gifts (default: last year)."
        )

    def handle(self, *args, year: int | None, **options) -> None:
        this_year = timezone.localdate().year
        year = year or this_year - 1
        if not 2000 <= year <= this_year:
            raise CommandError(f"--year {year}: give a year between 2000 and {this_year}.")
        sent = services.giving_statements_send(year=year)
        self.stdout.write(f"Sent {sent} giving statement(s) for {year}.")
