"""Demo appeals for `manage.py seed_demo` (idempotent: appeals are keyed by internal name)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from donations.models import Appeal, Frequency, Placement

APPEALS = [
    {
        "name": "Winter fund: reporters on the ground",
        "placement": Placement.SITE_BANNER,
        "priority": 200,
        "headline": "Winter is when the story gets hardest to reach",
        "body": (
            "Roads close, power fails and the news slows to a trickle from the places that "
            "need it most. Help us keep reporters where the story is this season."
        ),
        "cta_label": "Fund a reporter",
        "default_frequency": Frequency.MONTHLY,
        "goal_cents": 15_000_000,
        "days": 45,
    },
    {
        "name": "In-article: reader-funded",
        "placement": Placement.IN_ARTICLE,
        "after_paragraph": 3,
        "priority": 100,
        "headline": "This story is free because readers pay for it",
        "body": (
            "We carry no advertising and have no owner to please. What you are reading "
            "exists because people like you chip in, a few dollars at a time."
        ),
        "cta_label": "Chip in",
        "default_frequency": Frequency.ONE_TIME,
        "days": 365,
    },
    {
        "name": "After-article: become a member",
        "placement": Placement.AFTER_ARTICLE,
        "priority": 100,
        "audience": Appeal.Audience.NON_DONORS,
        "headline": "Make it monthly and we can plan ahead",
        "body": (
            "A monthly gift lets our editors commit to investigations that take months, "
            "not days. Cancel whenever you like, from a link in every receipt."
        ),
        "cta_label": "Give monthly",
        "default_frequency": Frequency.MONTHLY,
        "days": 365,
    },
    {
        "name": "After-article: welcome back",
        "placement": Placement.AFTER_ARTICLE,
        "priority": 150,
        "audience": Appeal.Audience.LAPSED_DONORS,
        "headline": "You backed us before. Will you again?",
        "body": (
            "Your last gift helped put a correspondent in three border towns. A new one "
            "keeps that coverage going into the new year."
        ),
        "cta_label": "Renew my support",
        "default_frequency": Frequency.ANNUAL,
        "days": 365,
    },
    {
        "name": "Donate page: why we ask",
        "placement": Placement.DONATE_PAGE_HERO,
        "priority": 100,
        "headline": "Independent news, paid for by its readers",
        "body": (
            "Every gift, large or small, goes to reporting: travel to the places others "
            "report from a distance, translation, and the time it takes to get a story right."
        ),
        "cta_label": "Give now",
        "default_frequency": Frequency.MONTHLY,
        "goal_cents": 50_000_000,
        "days": 365,
    },
    {
        "name": "Newsletter: a note to subscribers",
        "placement": Placement.NEWSLETTER,
        "priority": 100,
        "audience": Appeal.Audience.SUBSCRIBERS,
        "headline": "You read us every morning. Help keep it coming",
        "body": (
            "This newsletter takes a team of editors to put together before dawn. "
            "If it is part of your day, consider a gift to the newsroom behind it."
        ),
        "cta_label": "Support the newsletter",
        "default_frequency": Frequency.MONTHLY,
        "days": 365,
    },
]


def seed() -> list[str]:
    """Create the demo appeals; return lines to print."""
    now = timezone.now()
    lines = []
    for spec in APPEALS:
        spec = dict(spec)
        name = spec.pop("name")
        days = spec.pop("days")
        _, created = Appeal.objects.update_or_create(
            name=name,
            defaults={**spec, "starts_at": now - timedelta(days=1), "ends_at": now + timedelta(days=days), "active": True},
        )
        lines.append(f"{'Created' if created else 'Updated'} appeal: {name}")
    from donations.services import appeal_cache_clear

    appeal_cache_clear()
    return lines
