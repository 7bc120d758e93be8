"""The digest's ledger: what each reader got, read from batch rows and the few reader rows.

A batch (DeliveryBatch) holds its readers' subscriber ids; each of them shares the
batch's fate (queued, being sent, sent, failed, in doubt) unless they have a Delivery
row of their own for the edition, which then says what happened to them alone. Batches
planned before the ledger (size 0) have a Delivery row for every reader instead.

A reader's subscriber id in a batch's list outlives the reader (leaving.py deletes the
row): ids are never reused (PostgreSQL sequences; AUTOINCREMENT on SQLite), so such an
id names nobody, is skipped when sending and shows in nobody's history.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from django.db import connection as db_connection
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    ExpressionWrapper,
    F,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.fields.json import KT, KeyTextTransform, KeyTransform

from subscriptions.models import Delivery, DeliveryBatch, Subscriber

# A reader with no row of their own is where their batch is.
READER_STATE = {
    DeliveryBatch.State.QUEUED: Delivery.State.QUEUED,
    DeliveryBatch.State.SENDING: Delivery.State.CLAIMED,
    DeliveryBatch.State.SENT: Delivery.State.SENT,
    DeliveryBatch.State.FAILED: Delivery.State.FAILED,
    DeliveryBatch.State.IN_DOUBT: Delivery.State.IN_DOUBT,
}


def reader_key(batch_id: int, subscriber_id: int) -> str:
    """A reader's copy in a batch, as the ESP carries it back (metadata "delivery_id")."""
    return f"{batch_id}:{subscriber_id}"


def parse_reader_key(value: object) -> tuple[int, int] | None:
    """(batch id, subscriber id) from reader_key's text, or None for anything else."""
    text = str(value or "")
    batch, sep, subscriber = text.partition(":")
    if not sep or not text.isascii() or not batch.isdigit() or not subscriber.isdigit():
        return None
    return int(batch), int(subscriber)


@dataclass(frozen=True)
class Fate:
    """What became of one reader's copy of an edition."""

    state: str  # Delivery.State
    batch_id: int | None
    esp_message_id: str = ""
    sent_at: datetime | None = None
    error: str = ""


def readers_set_apart(*, edition_id: int, fates: Mapping[int, Fate]) -> None:
    """Give readers (by subscriber id) a Delivery row of their own, with their fate.

    The one way a reader's fate leaves their batch's: suppressed or unsubscribed at the
    claim, refused by the ESP, accepted alone, found in the ESP's log. A reader who
    has a row already keeps it (the unique delivery per edition), so a retried call is
    harmless.
    """
    Delivery.objects.bulk_create(
        [
            Delivery(
                edition_id=edition_id,
                subscriber_id=subscriber_id,
                batch_id=fate.batch_id,
                state=fate.state,
                esp_message_id=fate.esp_message_id[:200],
                sent_at=fate.sent_at,
                error=fate.error[:300],
            )
            for subscriber_id, fate in fates.items()
        ],
        ignore_conflicts=True,
        batch_size=500,
    )


def edition_readers(edition_id: int) -> dict[int, Fate]:
    """Each reader of an edition (by subscriber id) with their copy's fate.

    Readers of a batch share its fate; a reader's own row, where there is one, says
    theirs. Deleted readers are left out.
    """
    fates: dict[int, Fate] = {}
    for batch_id, state, finished_at, readers in DeliveryBatch.objects.filter(
        edition_id=edition_id, size__gt=0
    ).values_list("pk", "state", "finished_at", "readers"):
        fate = Fate(
            READER_STATE[state],
            batch_id,
            sent_at=finished_at if state == DeliveryBatch.State.SENT else None,
        )
        for pk in readers:
            fates[pk] = fate
    for pk, state, batch_id, message_id, sent_at, error in (
        Delivery.objects.filter(edition_id=edition_id)
        .exclude(subscriber=None)
        .values_list("subscriber_id", "state", "batch_id", "esp_message_id", "sent_at", "error")
    ):
        fates[pk] = Fate(state, batch_id, message_id, sent_at, error)
    present = set(Subscriber.objects.filter(pk__in=list(fates)).values_list("pk", flat=True))
    return {pk: fate for pk, fate in fates.items() if pk in present}


def batch_groups(batch: DeliveryBatch) -> list[tuple[list[list], list[int]]]:
    """(followed set, its subscriber ids) for each followed set the batch renders."""
    if batch.groups:
        return [(followed, readers) for _, followed, readers in batch.groups]
    return [(batch.followed, batch.readers)]


def readers_with_own_row(batch: DeliveryBatch) -> set[int]:
    """The batch's readers whose fate is already their own (sent, failed, suppressed)."""
    return set(
        Delivery.objects.filter(edition_id=batch.edition_id, subscriber_id__any_of=batch.readers)
        .exclude(subscriber=None)
        .values_list("subscriber_id", flat=True)
    )


def readers_waiting(batch: DeliveryBatch) -> list[int]:
    """The batch's readers who share its fate, in the batch's order."""
    own = readers_with_own_row(batch)
    return [pk for pk in batch.readers if pk not in own]


def editions_readers_by_state(edition_ids: list[int]) -> dict[int, dict[str, int]]:
    """Readers of each edition by state (Delivery.State), from batches and reader rows.

    Two grouped queries, whatever the size of the send: the batches' sizes by state,
    then the reader rows, each moving one reader from their batch's state to theirs.
    """
    counts: dict[int, dict[str, int]] = {pk: defaultdict(int) for pk in edition_ids}
    for edition_id, state, n in (
        DeliveryBatch.objects.filter(edition_id__in=edition_ids, size__gt=0)
        .values("edition_id", "state")
        .annotate(n=Sum("size"))
        .order_by()
        .values_list("edition_id", "state", "n")
    ):
        counts[edition_id][READER_STATE[state]] += n
    for edition_id, state, batch_state, n in (
        Delivery.objects.filter(edition_id__in=edition_ids)
        .annotate(
            # The batch's state where the batch counts its readers, else "".
            from_batch=Case(
                When(batch__size__gt=0, then=F("batch__state")),
                default=Value(""),
                output_field=CharField(),
            )
        )
        .values("edition_id", "state", "from_batch")
        .annotate(n=Count("*"))
        .order_by()
        .values_list("edition_id", "state", "from_batch", "n")
    ):
        counts[edition_id][state] += n
        if batch_state:
            counts[edition_id][READER_STATE[batch_state]] -= n
    return {pk: dict(by_state) for pk, by_state in counts.items()}


def readers_in_doubt() -> dict[str, int]:
    """Readers and batches in doubt in every edition, old ones included (two queries)."""
    batches = DeliveryBatch.objects.filter(state=DeliveryBatch.State.IN_DOUBT).aggregate(
        batches=Count("pk"), readers=Sum("size", default=0)
    )
    rows = Delivery.objects.aggregate(
        # In an in-doubt batch, but with a fate of their own (sent, failed, suppressed).
        settled=Count("pk", filter=Q(batch__state=DeliveryBatch.State.IN_DOUBT, batch__size__gt=0)),
        # Before the ledger, each in-doubt reader had a row of that state.
        old=Count("pk", filter=Q(state=Delivery.State.IN_DOUBT, batch__size=0)),
    )
    return {
        "readers": batches["readers"] - rows["settled"] + rows["old"],
        "batches": batches["batches"],
    }


def copies_sent_by_language(edition_ids) -> dict[str, int]:
    """Copies sent of these editions (ids, or a subquery of them), by reader language.

    A batch's language is its followed set's first item, frozen when planned; a reader's
    own row counts in their batch's language (their own, before the ledger).
    """
    counts: dict[str, int] = defaultdict(int)
    for code, n in (
        DeliveryBatch.objects.filter(
            edition_id__in=edition_ids, state=DeliveryBatch.State.SENT, size__gt=0
        )
        .values(code=KT("followed__0__1"))
        .annotate(n=Sum("size"))
        .order_by()
        .values_list("code", "n")
    ):
        counts[code] += n
    for code, state, in_sent_batch, n in (
        Delivery.objects.filter(edition_id__in=edition_ids)
        .annotate(
            code=Case(
                When(
                    batch__size__gt=0,
                    then=KeyTextTransform("1", KeyTransform("0", "batch__followed")),
                ),
                default=F("subscriber__language"),
                output_field=CharField(),
            ),
            in_sent_batch=ExpressionWrapper(
                Q(batch__size__gt=0, batch__state=DeliveryBatch.State.SENT),
                output_field=BooleanField(),
            ),
        )
        .values("code", "state", "in_sent_batch")
        .annotate(n=Count("*"))
        .order_by()
        .values_list("code", "state", "in_sent_batch", "n")
    ):
        sent = state == Delivery.State.SENT
        if sent and not in_sent_batch:
            counts[code] += n  # sent on their own, outside a sent batch
        elif in_sent_batch and not sent:
            counts[code] -= n  # in a sent batch, but not sent (refused, suppressed)
    return dict(counts)


def batches_of_reader(subscriber: Subscriber):
    """The batches `subscriber` is in, with their editions and newsletters."""
    batches = DeliveryBatch.objects.filter(size__gt=0).select_related("edition__newsletter")
    if db_connection.vendor == "postgresql":
        # jsonb containment, answered by the batch_readers_gin index.
        return list(batches.filter(readers__contains=[subscriber.pk]).order_by("pk"))
    # SQLite has no containment on JSON: read the lists (a laptop's few batches).
    return [batch for batch in batches.order_by("pk").iterator() if subscriber.pk in batch.readers]


def reader_editions(subscriber: Subscriber) -> list[dict]:
    """Which editions this reader got (or was due), as their own rows and batches say."""
    own = {
        d.edition_id: d
        for d in Delivery.objects.filter(subscriber=subscriber).select_related(
            "edition__newsletter", "batch"
        )
    }
    rows: list[tuple[datetime | None, dict]] = []
    for batch in batches_of_reader(subscriber):
        mine = own.pop(batch.edition_id, None)
        state = mine.state if mine is not None else READER_STATE[batch.state]
        sent_at = mine.sent_at if mine is not None else None
        if sent_at is None and state == Delivery.State.SENT:
            sent_at = batch.finished_at
        rows.append((batch.edition, {"state": state, "sent_at": sent_at}))
    for delivery in own.values():
        rows.append((delivery.edition, {"state": delivery.state, "sent_at": delivery.sent_at}))
    rows.sort(key=lambda row: (row[0].date, row[0].pk))
    return [
        {"newsletter": edition.newsletter.name, "edition": edition.date, **fate}
        for edition, fate in rows
    ]


def batch_sizes(batch_ids: list[int]) -> dict[int, int]:
    """Readers per batch: its size, or its rows for a batch planned before the ledger."""
    sizes = dict(DeliveryBatch.objects.filter(pk__in=batch_ids).values_list("pk", "size"))
    old = [pk for pk, size in sizes.items() if not size]
    if old:
        sizes.update(
            Delivery.objects.filter(batch_id__in=old)
            .values("batch_id")
            .annotate(n=Count("*"))
            .order_by()
            .values_list("batch_id", "n")
        )
    return sizes
