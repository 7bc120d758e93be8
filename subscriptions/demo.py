"""Demo newsletters, subscribers and editions for `manage.py seed_demo`."""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from newsroom.demo import FIRST_NAMES, LAST_NAMES, dates_restore
from newsroom.models import Category, Topic
from subscriptions import services
from subscriptions.digest.compose import compose_contents, group_key
from subscriptions.models import (
    ConsentRecord,
    Delivery,
    DeliveryBatch,
    Edition,
    Follow,
    Newsletter,
    Subscriber,
    Subscription,
    Suppression,
    TrackingEvent,
    email_hash,
)

DEMO_READERS = [
    ("noor.demo@reader.example", "Noor", "Asia/Amman", 2, "ar"),
    ("daniel.demo@reader.example", "Daniel", "Europe/Berlin", 3, "en"),
    ("yael.demo@reader.example", "Yael", "Asia/Jerusalem", 2, "he"),
]


def demo_language(email: str) -> str:
    """The language a demo reader reads in: most English, a quarter Arabic, some Hebrew.

    Taken from the address, not the random stream, so the rest of the history is the same
    whatever the languages.
    """
    share = sum(map(ord, email)) % 20
    return "ar" if share < 5 else "he" if share < 8 else "en"


DAILY_TRANSLATIONS = {
    "ar": {
        "name": "الشرق الأوسط اليوم",
        "description": "أهم أخبار المنطقة في بريدك قبل الفطور.",
    },
    "he": {
        "name": "המזרח התיכון היום",
        "description": "הסיפורים החשובים באזור, בתיבת הדואר שלך לפני ארוחת הבוקר.",
    },
}


def seed() -> list[str]:
    """Create the demo data of this app; return lines to print. Running it twice is harmless."""
    lines: list[str] = []
    with transaction.atomic():
        daily, created = Newsletter.objects.get_or_create(
            slug="mideast-daily",
            defaults={
                "name": "Mideast Daily",
                "description": (
                    "The stories that matter across the region, in your inbox before breakfast."
                ),
                "cadence": Newsletter.Cadence.DAILY,
                "send_hour": 6,
                "translations": DAILY_TRANSLATIONS,
            },
        )
        if not daily.translations:  # a demo loaded before newsletters had translations
            daily.translations = DAILY_TRANSLATIONS
            daily.save(update_fields=["translations"])
        lines.append(f"newsletter {daily.name}: {'created' if created else 'already there'}")
        categories = list(Category.objects.order_by("order", "name"))
        topics = list(Topic.objects.order_by("name"))
        consent = services.consent_text_current()
        meta = services.RequestMeta(source="demo-seed")
        for index, (email, name, zone, count, language) in enumerate(DEMO_READERS):
            subscriber, made = Subscriber.objects.get_or_create(
                email=email, defaults={"name": name, "time_zone": zone, "language": language}
            )
            if made:
                services.consent._record(
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
            made_now = "created" if made else "already there"
            lines.append(
                f"subscriber {email} ({subscriber.language}): {made_now}, confirmed, "
                f"{follows} follows"
            )
    return lines


# --- ninety days of readers, and the last two editions -----------------------------------
#
# Made once: the readers' addresses end in READERS_DOMAIN, and a run that finds one adds
# nothing. Seeded random, so every database gets the same history (relative to the day it
# was first seeded). Rows are written with bulk_create; the timestamps Django sets on
# insert (auto_now_add) are then put back to the history's dates (newsroom.demo).

READERS_DOMAIN = "readers.example"
HISTORY_DAYS = 90
RANDOM_SEED = 2027
LONG_STANDING = 520  # readers who confirmed before the dashboard's twelve weeks
ZONES = (
    ("Asia/Jerusalem", 30),
    ("Asia/Amman", 20),
    ("Asia/Beirut", 14),
    ("Africa/Cairo", 12),
    ("Europe/London", 10),
    ("Europe/Berlin", 8),
    ("Europe/Paris", 6),
)
CONFIRMS = 0.8  # share of new signups who click the confirmation link
LEAVES = 0.06  # share of readers who left before the two editions
# Per copy sent: bounces and opens; per reader who opened: clicks, complaints, unsubscribes.
BOUNCES, OPENS = 0.008, 0.47
CLICKS, COMPLAINTS, UNSUBSCRIBES = 0.25, 0.003, 0.008
EDITIONS_HOURS_AGO = (48, 24)


@dataclass
class _Reader:
    email: str
    name: str
    zone: str
    created: datetime
    confirmed: datetime | None = None
    left: datetime | None = None
    follows: tuple[tuple[str, int], ...] = ()
    suppressed: str = ""  # the suppression reason, once a bounce or complaint came in
    subscriber: Subscriber | None = None


def _token(rng: random.Random, length: int = 12) -> str:
    return "".join(rng.choices(string.ascii_lowercase + string.digits, k=length))


def _readers(rng: random.Random, *, now: datetime, profiles: list) -> list[_Reader]:
    tz = ZoneInfo(settings.TIME_ZONE)
    moments = [
        now - timedelta(days=rng.randint(HISTORY_DAYS + 5, 700), minutes=rng.randrange(1440))
        for _ in range(LONG_STANDING)
    ]
    today = timezone.localdate(now, tz)
    for days_ago in range(HISTORY_DAYS - 1, -1, -1):
        day = today - timedelta(days=days_ago)
        count = rng.randint(3, 7) + (10 if days_ago in (41, 40) else 0)  # the water investigation
        for _ in range(count):
            moment = datetime.combine(day, time(rng.randint(6, 23), rng.randrange(60)), tz)
            if moment < now - timedelta(minutes=10):
                moments.append(moment)
    moments.sort()
    readers = []
    for index, created in enumerate(moments):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        reader = _Reader(
            email=f"{first}.{last}.{index}".lower().replace("-", "") + f"@{READERS_DOMAIN}",
            name=f"{first} {last}",
            zone=rng.choices([z for z, _ in ZONES], weights=[w for _, w in ZONES])[0],
            created=created,
        )
        confirmed = created + timedelta(
            minutes=rng.randint(1, 30 * 60 if rng.random() < 0.2 else 20)
        )
        if (
            created < now - timedelta(days=HISTORY_DAYS) or rng.random() < CONFIRMS
        ) and confirmed < now:
            reader.confirmed = confirmed
            reader.follows = rng.choice(profiles) if profiles else ()
        readers.append(reader)
    return readers


def _profiles(rng: random.Random) -> list[tuple[tuple[str, int], ...]]:
    """A dozen common choices of categories and topics: readers pick alike."""
    items = [
        ("c", pk) for pk in Category.objects.order_by("order", "name").values_list("pk", flat=True)
    ]
    items += [("t", pk) for pk in Topic.objects.order_by("name").values_list("pk", flat=True)]
    if not items:
        return []
    return [tuple(rng.sample(items, rng.randint(1, min(3, len(items))))) for _ in range(12)]


def seed_history(*, now: datetime | None = None) -> list[str]:
    """Readers of Mideast Daily over ninety days and its last two editions, made once."""
    crowd = Subscriber.objects.filter(email__endswith=f"@{READERS_DOMAIN}")
    if crowd.exists():
        return [f"Readership history: already there ({crowd.count():,} demo readers)."]
    now = now or timezone.now()
    rng = random.Random(RANDOM_SEED)
    daily = Newsletter.objects.get(slug="mideast-daily")
    readers = _readers(rng, now=now, profiles=_profiles(rng))
    first_edition = now - timedelta(hours=EDITIONS_HOURS_AGO[0])
    for reader in readers:
        if reader.confirmed and reader.confirmed < first_edition and rng.random() < LEAVES:
            span = (first_edition - reader.confirmed).total_seconds()
            reader.left = reader.confirmed + timedelta(seconds=rng.uniform(0.05, 1) * span)

    with transaction.atomic():
        editions = _editions(rng, now=now, newsletter=daily, readers=readers)
        _write_readers(rng, now=now, newsletter=daily, readers=readers)
        _write_deliveries(rng, now=now, editions=editions)

    confirmed = sum(1 for r in readers if r.confirmed)
    left = sum(1 for r in readers if r.left)
    sent = [e for e, _, _ in editions if e.state == Edition.State.SENT]
    return [
        f"Readership history: {len(readers):,} readers of {daily.name} ({confirmed:,} confirmed, "
        f"{len(readers) - confirmed} never confirmed, {left} left since), "
        f"{len(sent)} editions sent with opens, clicks, bounces and unsubscribes."
    ]


def _editions(rng, *, now: datetime, newsletter: Newsletter, readers: list[_Reader]) -> list:
    """Compose the editions of the last days; decide who got, opened, clicked or left each."""
    tz = ZoneInfo(settings.TIME_ZONE)
    result = []
    composed = [now - timedelta(hours=hours) for hours in EDITIONS_HOURS_AGO]
    for index, composed_at in enumerate(composed):
        cutoff_start = composed[index - 1] if index else composed_at - timedelta(days=1)
        until = composed[index + 1] if index + 1 < len(composed) else now
        contents = compose_contents(
            newsletter=newsletter, cutoff_start=cutoff_start, cutoff_end=composed_at
        )
        edition = Edition(
            newsletter=newsletter,
            date=timezone.localdate(composed_at, tz),
            state=Edition.State.SENT if contents["top"] else Edition.State.SKIPPED,
            cutoff_start=cutoff_start,
            cutoff_end=composed_at,
            contents=contents,
            skip_reason=""
            if contents["top"]
            else "Nothing was published since the last edition, so this edition was not sent.",
        )
        copies = []
        if edition.state == Edition.State.SENT:
            for reader in readers:
                # Whom the planner would have owed it (digest.plan.due_subscribers): confirmed by
                # the send hour in their zone, and still subscribed.
                send_moment = datetime.combine(
                    edition.date, time(newsletter.send_hour), ZoneInfo(reader.zone)
                )
                if (
                    not reader.confirmed
                    or reader.confirmed > send_moment
                    or (reader.left and reader.left <= composed_at)
                ):
                    continue
                if reader.suppressed:
                    copies.append((reader, None, []))
                    continue
                sent_at = min(
                    max(composed_at, send_moment) + timedelta(seconds=rng.randint(20, 1500)), now
                )
                events = []
                if rng.random() < BOUNCES:
                    events.append(("bounced", sent_at + timedelta(seconds=rng.randint(5, 600))))
                    reader.suppressed = Suppression.Reason.HARD_BOUNCE
                elif rng.random() < OPENS:
                    opened = sent_at + timedelta(minutes=rng.expovariate(1 / 180))
                    if opened < now:
                        events.append(("opened", opened))
                        if rng.random() < CLICKS:
                            events.append(
                                ("clicked", opened + timedelta(seconds=rng.randint(10, 300)))
                            )
                    if rng.random() < COMPLAINTS and opened < now:
                        events.append(
                            ("complained", opened + timedelta(seconds=rng.randint(10, 120)))
                        )
                        reader.suppressed = Suppression.Reason.COMPLAINT
                    elif rng.random() < UNSUBSCRIBES and not reader.left:
                        left = opened + timedelta(seconds=rng.randint(20, 600))
                        if left < until:
                            reader.left = left
                copies.append((reader, sent_at, events))
        result.append((edition, composed_at, copies))
    return result


def _write_readers(rng, *, now: datetime, newsletter: Newsletter, readers: list[_Reader]) -> None:
    consent = services.consent_text_current()
    subscribers = [
        Subscriber(
            email=r.email,
            name=r.name,
            time_zone=r.zone,
            language=demo_language(r.email),
            confirmed_at=r.confirmed,
            confirmation_sent_at=r.created + timedelta(seconds=rng.randint(2, 30)),
            # Who has not confirmed after a day was reminded once (services.REMINDER_AFTER).
            reminder_sent_at=(
                r.created + services.REMINDER_AFTER
                if not r.confirmed and r.created + services.REMINDER_AFTER < now
                else None
            ),
        )
        for r in readers
    ]
    Subscriber.objects.bulk_create(subscribers, batch_size=500)
    for reader, subscriber in zip(readers, subscribers, strict=True):
        reader.subscriber = subscriber
    dates_restore(subscribers, "created_at", [r.created for r in readers])

    subscriptions = []
    for r in readers:
        status = Subscription.Status.PENDING
        if r.confirmed:
            status = Subscription.Status.UNSUBSCRIBED if r.left else Subscription.Status.ACTIVE
        subscriptions.append(
            Subscription(
                subscriber=r.subscriber,
                newsletter=newsletter,
                status=status,
                confirmed_at=r.confirmed,
                unsubscribed_at=r.left,
            )
        )
    Subscription.objects.bulk_create(subscriptions, batch_size=500)
    dates_restore(subscriptions, "created_at", [r.created for r in readers])

    records, moments = [], []
    for r in readers:
        steps = [(ConsentRecord.Action.SUBSCRIBE, r.created, consent)]
        if r.confirmed:
            steps.append((ConsentRecord.Action.CONFIRM, r.confirmed, None))
        if r.left:
            steps.append((ConsentRecord.Action.UNSUBSCRIBE, r.left, None))
        for action, at, text in steps:
            records.append(
                ConsentRecord(
                    subscriber=r.subscriber,
                    newsletter=newsletter,
                    action=action,
                    source="demo-seed",
                    consent_text=text,
                )
            )
            moments.append(at)
    ConsentRecord.objects.bulk_create(records, batch_size=500)
    dates_restore(records, "at", moments)

    Follow.objects.bulk_create(
        [
            Follow(
                subscriber=r.subscriber,
                position=position,
                **{"category_id" if kind == "c" else "topic_id": pk},
            )
            for r in readers
            for position, (kind, pk) in enumerate(r.follows)
        ],
        batch_size=500,
    )
    suppressed = {email_hash(r.email): r.suppressed for r in readers if r.suppressed}
    Suppression.objects.bulk_create(
        [Suppression(email_sha256=digest, reason=reason) for digest, reason in suppressed.items()]
    )


def _write_deliveries(rng, *, now: datetime, editions: list) -> None:
    for edition, composed_at, _ in editions:
        edition.save()
        Edition.objects.filter(pk=edition.pk).update(composed_at=composed_at)
    batches: dict[tuple[int, str], DeliveryBatch] = {}
    for edition, _, copies in editions:
        for reader, sent_at, _ in copies:
            if sent_at is None:
                continue
            followed = [list(item) for item in reader.follows]
            key = (edition.pk, group_key(followed))
            batch = batches.get(key)
            if batch is None:
                batch = batches[key] = DeliveryBatch(
                    edition=edition,
                    group_key=key[1],
                    followed=followed,
                    state=DeliveryBatch.State.SENT,
                    attempts=1,
                    task_id="demo-seed",
                    started_at=sent_at,
                    finished_at=sent_at,
                )
            batch.started_at, batch.finished_at = (
                min(batch.started_at, sent_at),
                max(batch.finished_at, sent_at),
            )
    DeliveryBatch.objects.bulk_create(batches.values(), batch_size=500)
    dates_restore(
        batches.values(),
        "created_at",
        [b.started_at - timedelta(seconds=5) for b in batches.values()],
    )

    deliveries, events = [], []
    for edition, _, copies in editions:
        for reader, sent_at, reactions in copies:
            if sent_at is None:  # suppressed after an earlier bounce or complaint
                deliveries.append(
                    Delivery(
                        edition=edition,
                        subscriber=reader.subscriber,
                        state=Delivery.State.SUPPRESSED,
                    )
                )
                continue
            message_id = f"<demo.{_token(rng)}@newsroom.example>"
            deliveries.append(
                Delivery(
                    edition=edition,
                    subscriber=reader.subscriber,
                    batch=batches[(edition.pk, group_key([list(item) for item in reader.follows]))],
                    state=Delivery.State.SENT,
                    esp_message_id=message_id,
                    sent_at=sent_at,
                )
            )
            for event_type, at in reactions:
                events.append(
                    TrackingEvent(
                        esp_event_id=f"demo-{_token(rng, 20)}",
                        event_type=event_type,
                        esp_name="demo",
                        recipient=reader.email,
                        message_id=message_id,
                        edition=edition,
                        occurred_at=at,
                        processed_at=min(at + timedelta(seconds=2), now),
                        outcome=OUTCOMES.get(event_type, "stored"),
                    )
                )
    Delivery.objects.bulk_create(deliveries, batch_size=500)
    TrackingEvent.objects.bulk_create(events, batch_size=500)
    dates_restore(events, "received_at", [e.processed_at for e in events])


# What services.tracking_event_process records for each kind of event.
OUTCOMES = {
    "bounced": f"suppressed ({Suppression.Reason.HARD_BOUNCE})",
    "complained": "suppressed (complaint)",
}


def seed_demo(*, now: datetime) -> list[str]:
    """This app's part of `manage.py seed_demo`: the newsletter and readers, then the history."""
    return [*seed(), *seed_history(now=now)]
