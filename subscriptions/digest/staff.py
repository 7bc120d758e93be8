"""What staff do to a send (pause, resume, settle in-doubt batches, test) and its progress.

A batch staff queue again goes through the outbox with the change that needs it, so a
broker that is down when they click delays the batch, never answers 500 or loses it.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext

from newsroom.mail import RenderedEmail
from newsroom.outbox import outbox_enqueue
from subscriptions.digest import ledger, plan, render
from subscriptions.digest.compose import followed_set
from subscriptions.digest.esp import edition_message
from subscriptions.digest.render import (
    personal_copy,
    recipient_values,
    render_edition_email,
    sample_values,
)
from subscriptions.digest.send import mark_edition_sent_if_done
from subscriptions.models import Delivery, DeliveryBatch, Edition, Subscriber


def edition_pause(*, edition: Edition) -> bool:
    """Stop sending an edition: batches not yet started, and time zones whose send hour
    has not come yet, wait until it is resumed."""
    return bool(
        Edition.objects.filter(
            pk=edition.pk,
            state__in=[Edition.State.COMPOSED, Edition.State.SENDING, Edition.State.SENT],
        ).update(state=Edition.State.PAUSED)
    )


def edition_resume(*, edition: Edition) -> int:
    """Resume a paused edition and queue its waiting batches again; return how many."""
    with transaction.atomic():
        if not Edition.objects.filter(pk=edition.pk, state=Edition.State.PAUSED).update(
            state=Edition.State.SENDING
        ):
            return 0
        batch_ids = list(
            edition.batches.filter(state=DeliveryBatch.State.QUEUED).values_list("pk", flat=True)
        )
        for batch_id in batch_ids:
            outbox_enqueue(task=plan.SEND_BATCH_TASK, kwargs={"batch_id": batch_id})
    if not batch_ids:
        mark_edition_sent_if_done(edition.pk)
    return len(batch_ids)


def batch_resend(*, batch: DeliveryBatch) -> int:
    """Staff decided an in-doubt batch did not go out: queue its readers again."""
    with transaction.atomic():
        locked = DeliveryBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.state != DeliveryBatch.State.IN_DOUBT:
            return 0
        # Its readers without a row of their own are the ones in doubt; queued with it.
        count = len(ledger.readers_waiting(locked))
        locked.state = DeliveryBatch.State.QUEUED
        locked.task_id = ""
        locked.error = ""
        locked.save(update_fields=["state", "task_id", "error"])
        Edition.objects.filter(pk=locked.edition_id, state=Edition.State.SENT).update(
            state=Edition.State.SENDING
        )
        outbox_enqueue(task=plan.SEND_BATCH_TASK, kwargs={"batch_id": locked.pk})
    return count


def batch_mark_sent(*, batch: DeliveryBatch) -> int:
    """Staff confirmed (e.g. in the ESP's log) that an in-doubt batch went out."""
    with transaction.atomic():
        locked = DeliveryBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.state != DeliveryBatch.State.IN_DOUBT:
            return 0
        count = len(ledger.readers_waiting(locked))
        locked.state = DeliveryBatch.State.SENT
        locked.finished_at = timezone.now()
        locked.save(update_fields=["state", "finished_at"])
    mark_edition_sent_if_done(locked.edition_id)
    return count


def edition_send_test(
    *,
    edition: Edition,
    to: str,
    subscriber: Subscriber | None = None,
    followed: list[list] | None = None,
) -> None:
    """Send one copy to a staff address, as `subscriber` (or `followed`) would get it.

    Nothing is recorded as a delivery: a test never counts as anyone's edition.
    """
    if subscriber is not None:
        followed = followed_set(subscriber.follows.all(), language=subscriber.language)
        values = recipient_values(subscriber=subscriber, newsletter=edition.newsletter)
        appeal = render._appeal_for(subscriber.email)
    else:
        values = sample_values(newsletter=edition.newsletter)
        appeal = render._appeal_for(to)
    rendered = render_edition_email(edition=edition, followed=followed or [], appeal=appeal)
    own = personal_copy(rendered=rendered, values=values)
    edition_message(
        edition=edition,
        # Marked in the language of the staff member who asked; the copy is the reader's.
        rendered=RenderedEmail(
            subject=gettext("[Test] {subject}").format(subject=own.subject),
            text=own.text,
            html=own.html,
        ),
        to=[to],
    ).send()


# --- progress -------------------------------------------------------------------

PROGRESS_STATES = [
    Delivery.State.QUEUED,
    Delivery.State.CLAIMED,
    Delivery.State.SENT,
    Delivery.State.FAILED,
    Delivery.State.SUPPRESSED,
    Delivery.State.IN_DOUBT,
]
# Not settled yet: waiting for a worker, or in a worker's hands now.
WAITING_STATES = [Delivery.State.QUEUED, Delivery.State.CLAIMED]
# anymail's normalized tracking event types (anymail docs, "Tracking: event types").
TRACKED_EVENTS = ["opened", "clicked", "bounced", "unsubscribed"]


def progress(
    *, by_state: Mapping[str, int], events: Mapping[str, int] | None = None
) -> dict[str, int]:
    """Staff's figures of a send, from its readers by state (and readers by event).

    Every state (and, given `events`, every tracked event) has a count; `waiting` is
    queued or being sent, `done` is settled either way, `percent` is done of total.
    """
    counts = {state.value: by_state.get(state.value, 0) for state in PROGRESS_STATES}
    if events is not None:
        counts.update({event: events.get(event, 0) for event in TRACKED_EVENTS})
    counts["total"] = sum(counts[state.value] for state in PROGRESS_STATES)
    counts["waiting"] = sum(counts[state.value] for state in WAITING_STATES)
    counts["done"] = counts["total"] - counts["waiting"]
    counts["percent"] = round(100 * counts["done"] / counts["total"]) if counts["total"] else 0
    return counts


def edition_progress(edition: Edition) -> dict[str, int]:
    """An edition's progress as staff watch it during a send, with readers by tracked event."""
    by_state = ledger.editions_readers_by_state([edition.pk])[edition.pk]
    events = dict(
        edition.events.filter(event_type__in=TRACKED_EVENTS)
        .order_by()
        .values_list("event_type")
        .annotate(n=Count("recipient", distinct=True))
        .values_list("event_type", "n")
    )
    return progress(by_state=by_state, events=events)
