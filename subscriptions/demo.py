"""Demo newsletters and subscribers for `manage.py seed_demo`."""

from __future__ import annotations

from django.db import transaction

from newsroom.models import Category, Topic
from subscriptions import services
from subscriptions.models import Follow, Newsletter, Subscriber, Subscription

DEMO_READERS = [
    ("noor.demo@reader.example", "Noor", "Asia/Amman", 2),
    ("daniel.demo@reader.example", "Daniel", "Europe/Berlin", 3),
]


def seed() -> list[str]:
    """Create the demo data of this app; return lines to print. Running it twice is harmless."""
    lines: list[str] = []
    with transaction.atomic():
        daily, created = Newsletter.objects.get_or_create(
            slug="mideast-daily",
            defaults={
                "name": "Mideast Daily",
                "description": "The stories that matter across the region, in your inbox before breakfast.",
                "cadence": Newsletter.Cadence.DAILY,
                "send_hour": 6,
            },
        )
        lines.append(f"newsletter {daily.name}: {'created' if created else 'already there'}")
        categories = list(Category.objects.order_by("order", "name"))
        topics = list(Topic.objects.order_by("name"))
        consent = services.consent_text_current()
        meta = services.RequestMeta(source="demo-seed")
        for index, (email, name, zone, count) in enumerate(DEMO_READERS):
            subscriber, made = Subscriber.objects.get_or_create(
                email=email, defaults={"name": name, "time_zone": zone}
            )
            if made:
                services._record(
                    subscriber=subscriber,
                    newsletter=daily,
                    action="subscribe",
                    meta=meta,
                    consent_text=consent,
                )
                Subscription.objects.create(subscriber=subscriber, newsletter=daily)
                services.subscription_confirm(
                    subscriber=subscriber,
                    meta=meta,
                    follows=services.FollowRefs(
                        category_ids=tuple(c.pk for c in categories[index : index + count]),
                        topic_ids=tuple(t.pk for t in topics[index : index + 1]),
                    ),
                )
            follows = Follow.objects.filter(subscriber=subscriber).count()
            lines.append(
                f"subscriber {email}: {'created' if made else 'already there'}, confirmed, {follows} follows"
            )
    return lines
