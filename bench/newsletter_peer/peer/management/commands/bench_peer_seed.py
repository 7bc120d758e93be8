"""Seed django-newsletter with the digest's edition and N subscribers, ready to send.

    python manage.py bench_peer_seed --content edition.json --subscribers 10000

`edition.json` (written by bench/newsletter_compare.py from our digest's draft edition):
{"newsletter": "Mideast Daily", "subject": "...", "domain": "news.example",
 "articles": [{"headline": "...", "dek": "...", "url": "https://..."}, ...]}

Every run starts over: the newsletter, its subscriptions, message and submission are
deleted and created again, and the submission is left prepared (as the admin's
"submit" action leaves it) for `manage.py submit_newsletter` to send.
"""

import json
from datetime import timedelta
from pathlib import Path

from django.contrib.sites.models import Site
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from newsletter.models import Article, Message, Newsletter, Submission, Subscription
from newsletter.utils import make_activation_code

SLUG = "mideast-daily"


class Command(BaseCommand):
    help = (
        "Seed django-newsletter with one message and N subscribers (bench/newsletter_compare.py)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--content", required=True, help="the edition's JSON")
        parser.add_argument("--subscribers", type=int, default=10_000)

    def handle(self, *args, content, subscribers, **options):
        path = Path(content)
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        edition = json.loads(path.read_text())
        if not edition.get("articles"):
            raise CommandError(f"{path}: the edition has no articles")
        if subscribers < 1:
            raise CommandError("--subscribers must be at least 1")
        now = timezone.now()
        with transaction.atomic():
            Site.objects.update_or_create(
                pk=1, defaults={"domain": edition["domain"], "name": edition["newsletter"]}
            )
            Newsletter.objects.filter(slug=SLUG).delete()
            newsletter = Newsletter.objects.create(
                title=edition["newsletter"],
                slug=SLUG,
                email="daily@newsroom.example",
                sender=edition["newsletter"],
                send_html=True,
                enable_unsubscribe=True,
            )
            newsletter.site.set([1])
            # bulk_create skips Subscription.save(), which only fills subscribe_date.
            Subscription.objects.bulk_create(
                [
                    Subscription(
                        newsletter=newsletter,
                        email_field=f"peer{n}@readers.example",
                        name_field="",
                        subscribed=True,
                        subscribe_date=now,
                        activation_code=make_activation_code(),
                    )
                    for n in range(subscribers)
                ],
                batch_size=2000,
            )
            message = Message.objects.create(
                title=edition["subject"], slug="edition", newsletter=newsletter
            )
            Article.objects.bulk_create(
                [
                    Article(
                        post=message,
                        sortorder=10 * (position + 1),
                        title=article["headline"],
                        text=article["dek"],
                        url=article["url"],
                    )
                    for position, article in enumerate(edition["articles"])
                ]
            )
            submission = Submission.from_message(message)
            # What the admin's "submit" action does; a minute back, as submit_queue
            # sends only submissions whose publish_date has passed.
            Submission.objects.filter(pk=submission.pk).update(
                prepared=True, publish_date=now - timedelta(minutes=1)
            )
        queued = submission.subscriptions.count()
        self.stdout.write(
            f"newsletter {SLUG}: {queued} subscriptions on the submission, "
            f"{len(edition['articles'])} articles"
        )
