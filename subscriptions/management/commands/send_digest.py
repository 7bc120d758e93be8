"""Compose and send (or preview) the digest by hand.

manage.py send_digest                          # who is due now, as beat would
manage.py send_digest --newsletter mideast-daily --now   # everyone, today's edition
manage.py send_digest --dry-run                # what would be sent; nothing written
manage.py send_digest --to editor@example.org  # one preview copy; nobody's delivery
"""

from __future__ import annotations

import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email
from django.utils import timezone

from subscriptions.digest import compose, plan, send, staff
from subscriptions.models import DeliveryBatch, Edition, Newsletter

# In-process sends retry an ESP error a few times before giving a batch up.
ATTEMPTS = 4


class Command(BaseCommand):
    help = "Compose the day's edition and send it to who is due, with progress and a summary."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--newsletter", metavar="SLUG", help="Only this newsletter (default: every active one)."
        )
        parser.add_argument(
            "--now",
            action="store_true",
            help=(
                "Do not wait for each reader's local send hour: "
                "send today's edition to everyone owed it."
            ),
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Show what would be sent; write and send nothing.",
        )
        parser.add_argument(
            "--to", metavar="EMAIL", help="Send one preview copy to this address only."
        )

    def handle(
        self, *args, newsletter: str | None, now: bool, dry_run: bool, to: str | None, **options
    ) -> None:
        newsletters = Newsletter.objects.filter(active=True)
        if newsletter:
            if not newsletters.filter(slug=newsletter).exists():
                known = ", ".join(newsletters.values_list("slug", flat=True)) or "none"
                raise CommandError(
                    f"No active newsletter {newsletter!r}. Active newsletters: {known}."
                )
            newsletters = newsletters.filter(slug=newsletter)
        if to:
            try:
                validate_email(to)
            except ValidationError as exc:
                raise CommandError(f"{to!r} is not an email address.") from exc
            return self.send_preview(newsletters, to=to, dry_run=dry_run)
        if dry_run:
            return self.dry_run(newsletter, send_now=now)
        return self.send(newsletter, send_now=now)

    def send_preview(self, newsletters, *, to: str, dry_run: bool) -> None:
        today = timezone.localdate()
        for item in newsletters:
            edition = compose.edition_draft(newsletter=item, date=today, now=timezone.now())
            if edition.state == Edition.State.SKIPPED:
                self.stdout.write(f"{item.name}: nothing to preview. {edition.skip_reason}")
                continue
            if dry_run:
                self.stdout.write(f"{item.name}: would send a preview of {today} to {to}.")
                continue
            staff.edition_send_test(edition=edition, to=to)
            self.stdout.write(
                self.style.SUCCESS(f"{item.name}: a preview of {today} went to {to}.")
            )

    def dry_run(self, slug: str | None, *, send_now: bool) -> None:
        runs = plan.digest_dry_run(newsletter_slug=slug, send_now=send_now)
        if not runs:
            self.stdout.write(
                "Nobody is due now (no local send hour has come). Use --now to send anyway."
            )
        for run in runs:
            edition = run.edition
            self.stdout.write(self.style.MIGRATE_HEADING(f"{edition} (dry run, nothing written)"))
            if edition.state in (Edition.State.SKIPPED, Edition.State.PAUSED):
                self.stdout.write(
                    f"  not sent: {edition.skip_reason or edition.get_state_display()}"
                )
                continue
            view = compose.edition_view(edition=edition, followed=None)
            self.stdout.write("  Top stories:")
            for article in view.top:
                self.stdout.write(f"    - {article.headline}")
            for section in view.sections:
                self.stdout.write(f"  {section.title}:")
                for article in section.articles:
                    self.stdout.write(f"    - {article.headline}")
            self.stdout.write(
                f"  would queue {run.recipients} reader(s) in {run.groups} distinct email(s); "
                f"{run.suppressed} suppressed"
            )

    def send(self, slug: str | None, *, send_now: bool) -> None:
        """Send what is due; fail (exit status 1) naming each batch that failed or is in doubt."""
        results = plan.digest_plan(newsletter_slug=slug, send_now=send_now, enqueue=False)
        problems: list[str] = []
        if not results:
            self.stdout.write(
                "Nobody is due now (no local send hour has come). Use --now to send anyway."
            )
        for result in results:
            edition = result.edition
            self.stdout.write(self.style.MIGRATE_HEADING(str(edition)))
            if edition.state == Edition.State.SKIPPED:
                self.stdout.write(f"  not sent: {edition.skip_reason}")
                continue
            if edition.state == Edition.State.PAUSED:
                self.stdout.write("  not sent: the edition is paused (resume it in the admin).")
                continue
            total = result.queued
            done = 0
            for batch_id in result.batch_ids:
                done += self.send_batch(batch_id)
                self.progress(done, total)
            if total:
                self.stdout.write("")
            counts = staff.edition_progress(edition)
            self.stdout.write(
                f"  queued {result.queued}, sent {counts['sent']}, "
                f"suppressed {counts['suppressed']}, "
                f"failed {counts['failed']}, in doubt {counts['in_doubt']}"
            )
            problems += self.unsent(edition, result.batch_ids)
        if problems:
            raise CommandError(
                "Not every batch was sent:\n"
                + "\n".join(problems)
                + "\nIn-doubt batches are settled from the ESP's log where it can tell; "
                "otherwise resend or record them as sent under the edition in the admin."
            )

    def unsent(self, edition: Edition, batch_ids: list[int]) -> list[str]:
        """A line per batch of this run that ended failed or in doubt, with its error."""
        return [
            f"  {edition}: batch {batch.pk} {batch.get_state_display().lower()}: {batch.error}"
            for batch in DeliveryBatch.objects.filter(
                pk__in=batch_ids,
                state__in=[DeliveryBatch.State.FAILED, DeliveryBatch.State.IN_DOUBT],
            )
        ]

    def send_batch(self, batch_id: int) -> int:
        """Send one batch in this process, retrying what the ESP refused; return its size."""
        size = DeliveryBatch.objects.get(pk=batch_id).size
        task_id = send.new_task_id()
        for attempt in range(ATTEMPTS):
            try:
                send.edition_send_batch(batch_id=batch_id, task_id=task_id)
                return size
            except send.BatchSendError as exc:
                if attempt == ATTEMPTS - 1:
                    send.batch_fail(batch_id=batch_id, error=str(exc))
                    self.stderr.write(f"\n  batch {batch_id} failed: {exc}")
                    return size
                # As long as the ESP asked (a 429's Retry-After), or a growing pause.
                time.sleep(max(2**attempt, exc.retry_after or 0))
        return size

    def progress(self, done: int, total: int) -> None:
        width = 30
        filled = int(width * done / total) if total else width
        bar = "#" * filled + "-" * (width - filled)
        self.stdout.write(f"\r  [{bar}] {done}/{total}", ending="")
        self.stdout.flush()
