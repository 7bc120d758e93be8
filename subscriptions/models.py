"""Readers known by email: newsletters, subscriptions, follows, consent, suppression, digests."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from newsroom.models import Translated

# What the suppression list keeps; offered here too, beside the Suppression model.
from newsroom.security import email_hash as email_hash


class Newsletter(Translated):
    """A newsletter; its name and description in other languages sit in `translations`."""

    class Cadence(models.TextChoices):
        DAILY = "daily", _("Every day")
        WEEKDAYS = "weekdays", _("Monday to Friday")
        WEEKLY = "weekly", _("Once a week")

    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(_("slug"), max_length=80, unique=True)
    description = models.TextField(_("description"), blank=True)
    cadence = models.CharField(
        _("cadence"), max_length=10, choices=Cadence.choices, default=Cadence.DAILY
    )
    send_hour = models.PositiveSmallIntegerField(
        _("send hour"),
        default=6,
        help_text=_("The local hour (0-23) at which each subscriber receives it."),
    )
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE
    )
    active = models.BooleanField(_("active"), default=True)
    top_stories_count = models.PositiveSmallIntegerField(_("top stories count"), default=3)
    section_cap = models.PositiveSmallIntegerField(
        _("section cap"),
        default=3,
        help_text=_("At most this many articles per category or topic section."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("newsletter")
        verbose_name_plural = _("newsletters")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(send_hour__lte=23), name="newsletter_send_hour_0_23"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def local_description(self) -> str:
        return self.translated("description")


class Subscriber(models.Model):
    email = models.EmailField(_("email"), max_length=254, unique=True)
    # What links and cookies name the reader by: random, so they tell nothing of the row.
    public_id = models.UUIDField(_("public id"), default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=120, blank=True)
    time_zone = models.CharField(_("time zone"), max_length=64, default=settings.TIME_ZONE)
    # One language per reader: their emails, one-click pages and the digest's articles.
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    paused_until = models.DateTimeField(_("paused until"), null=True, blank=True)
    confirmation_sent_at = models.DateTimeField(_("confirmation sent at"), null=True, blank=True)
    reminder_sent_at = models.DateTimeField(_("reminder sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("subscriber")
        verbose_name_plural = _("subscribers")
        ordering = ["-created_at"]
        # Exporting addresses is its own right, beyond viewing them (staff.roles).
        permissions = [("export_subscribers", "Can export confirmed subscribers as CSV")]

    def __str__(self) -> str:
        return self.email


class Subscription(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for confirmation")
        ACTIVE = "active", pgettext_lazy("subscription status", "Active")
        UNSUBSCRIBED = "unsubscribed", pgettext_lazy("subscription status", "Unsubscribed")

    subscriber = models.ForeignKey(
        Subscriber,
        verbose_name=_("subscriber"),
        on_delete=models.CASCADE,
        related_name="subscriptions",
    )
    newsletter = models.ForeignKey(
        Newsletter,
        verbose_name=_("newsletter"),
        on_delete=models.CASCADE,
        related_name="subscriptions",
    )
    status = models.CharField(
        _("status"), max_length=14, choices=Status.choices, default=Status.PENDING
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    unsubscribed_at = models.DateTimeField(_("unsubscribed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        constraints = [
            models.UniqueConstraint(
                fields=["subscriber", "newsletter"], name="subscription_once_per_newsletter"
            ),
        ]
        indexes = [models.Index(fields=["newsletter", "status"])]

    def __str__(self) -> str:
        return f"{self.subscriber} → {self.newsletter}"


class Follow(models.Model):
    """A category or a topic a subscriber follows, in the order they chose it."""

    subscriber = models.ForeignKey(
        Subscriber, verbose_name=_("subscriber"), on_delete=models.CASCADE, related_name="follows"
    )
    category = models.ForeignKey(
        "newsroom.Category",
        verbose_name=_("category"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    topic = models.ForeignKey(
        "newsroom.Topic",
        verbose_name=_("topic"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    position = models.PositiveIntegerField(_("position"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("follow")
        verbose_name_plural = _("follows")
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(category__isnull=False, topic__isnull=True))
                | (Q(category__isnull=True, topic__isnull=False)),
                name="follow_category_xor_topic",
            ),
            models.UniqueConstraint(
                fields=["subscriber", "category"],
                condition=Q(category__isnull=False),
                name="follow_category_once",
            ),
            models.UniqueConstraint(
                fields=["subscriber", "topic"],
                condition=Q(topic__isnull=False),
                name="follow_topic_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscriber} follows {self.category or self.topic}"


class ConsentText(models.Model):
    """One version of the consent wording shown on a form, stored once by its hash."""

    sha256 = models.CharField(pgettext_lazy("consent text", "hash"), max_length=64, unique=True)
    text = models.TextField(_("text"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("consent text")
        verbose_name_plural = _("consent texts")

    def __str__(self) -> str:
        return f"{self.sha256[:12]} ({self.created_at:%Y-%m-%d})"


class ConsentRecord(models.Model):
    """An append-only line of what a reader agreed to, when, and from where."""

    class Action(models.TextChoices):
        SUBSCRIBE = "subscribe", pgettext_lazy("consent action", "Subscribed")
        CONFIRM = "confirm", pgettext_lazy("consent action", "Confirmed")
        UNSUBSCRIBE = "unsubscribe", pgettext_lazy("consent action", "Unsubscribed")
        PREFERENCE_CHANGE = (
            "preference_change",
            pgettext_lazy("consent action", "Changed preferences"),
        )

    subscriber = models.ForeignKey(
        Subscriber,
        verbose_name=_("subscriber"),
        on_delete=models.CASCADE,
        related_name="consent_records",
    )
    newsletter = models.ForeignKey(
        Newsletter,
        verbose_name=_("newsletter"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    action = models.CharField(_("action"), max_length=20, choices=Action.choices)
    # When the reader acted: the request's time, even when the record is written later.
    at = models.DateTimeField(_("at"), default=timezone.now, editable=False)
    ip_address = models.GenericIPAddressField(_("ip address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=500, blank=True)
    source = models.CharField(
        _("source"), max_length=100, blank=True, help_text=_("The form or link used.")
    )
    consent_text = models.ForeignKey(
        ConsentText,
        verbose_name=_("consent text"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="records",
    )

    class Meta:
        verbose_name = _("consent record")
        verbose_name_plural = _("consent records")
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.subscriber} {self.action} at {self.at:%Y-%m-%d %H:%M}"


class Suppression(models.Model):
    """An address that must never be emailed again; only its hash is kept."""

    class Reason(models.TextChoices):
        HARD_BOUNCE = "hard_bounce", _("Hard bounce")
        SOFT_BOUNCES = "soft_bounces", _("Repeated soft bounces")
        COMPLAINT = "complaint", _("Spam complaint")
        DELETED = "deleted", _("Reader deleted their data")
        MANUAL = "manual", _("Added by staff")

    email_sha256 = models.CharField(_("email hash"), max_length=64, unique=True)
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("suppression")
        verbose_name_plural = _("suppressions")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email_sha256[:12]}… ({self.get_reason_display()})"


class TrackingEvent(models.Model):
    """An ESP's report about a message (delivered, opened, bounced, ...), stored once."""

    esp_event_id = models.CharField(_("ESP event id"), max_length=200, unique=True)
    event_type = models.CharField(_("event type"), max_length=30, db_index=True)
    esp_name = models.CharField(_("ESP name"), max_length=40, blank=True)
    recipient = models.EmailField(_("recipient"), max_length=254, blank=True, db_index=True)
    message_id = models.CharField(_("message id"), max_length=200, blank=True, db_index=True)
    edition = models.ForeignKey(
        "Edition",
        verbose_name=_("edition"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="events",
    )
    # The batch the reader's copy went in, found from the reader key the digest sends as
    # per-message metadata (subscriptions.digest.ledger); the reader is `recipient`.
    batch = models.ForeignKey(
        "DeliveryBatch",
        verbose_name=_("batch"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="events",
    )
    # The reader's own row, where one exists (sent before the batch ledger, or settled
    # on its own: subscriptions.digest.ledger).
    delivery = models.ForeignKey(
        "Delivery",
        verbose_name=_("delivery"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="events",
    )
    reject_reason = models.CharField(_("reject reason"), max_length=40, blank=True)
    description = models.TextField(_("description"), blank=True)
    occurred_at = models.DateTimeField(_("occurred at"))
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    payload = models.JSONField(_("payload"), default=dict, blank=True)
    # What the receiver did with the event: its outcome and error, for staff to see.
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=200, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("tracking event")
        verbose_name_plural = _("tracking events")
        ordering = ["-occurred_at"]
        indexes = [
            # Readers who opened, clicked, bounced ... per edition are counted from the
            # index alone, for the dashboard and the edition's progress.
            models.Index(
                fields=["edition", "event_type", "recipient"], name="tracking_edition_readers"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.recipient}"


class Edition(models.Model):
    """One issue of a newsletter for one date, its contents frozen when composed."""

    class State(models.TextChoices):
        COMPOSED = "composed", _("Composed")
        SENDING = "sending", _("Sending")
        PAUSED = "paused", _("Paused")
        SENT = "sent", pgettext_lazy("digest state", "Sent")
        SKIPPED = "skipped", _("Skipped: nothing new")

    newsletter = models.ForeignKey(
        Newsletter, verbose_name=_("newsletter"), on_delete=models.CASCADE, related_name="editions"
    )
    date = models.DateField(_("date"))
    state = models.CharField(
        _("state"), max_length=10, choices=State.choices, default=State.COMPOSED
    )
    composed_at = models.DateTimeField(_("composed at"), auto_now_add=True)
    cutoff_start = models.DateTimeField(
        _("cutoff start"),
        null=True,
        blank=True,
        help_text=_("Articles published after this time are new."),
    )
    cutoff_end = models.DateTimeField(_("cutoff end"))
    # {"top": [article ids], "categories": {id: [ids]}, "topics": {id: [ids]}}
    contents = models.JSONField(_("contents"), default=dict)
    skip_reason = models.CharField(_("skip reason"), max_length=200, blank=True)
    # The planner run allowed to write this edition's batches; a run that starts takes
    # the next number, so an older run still writing stops (digest.plan, "fence").
    plan_run = models.PositiveIntegerField(_("plan run"), default=0, db_default=0, editable=False)

    class Meta:
        verbose_name = _("edition")
        verbose_name_plural = _("editions")
        ordering = ["-date"]
        constraints = [
            models.UniqueConstraint(fields=["newsletter", "date"], name="edition_once_per_day"),
        ]

    def __str__(self) -> str:
        return f"{self.newsletter} — {self.date:%Y-%m-%d}"

    def get_absolute_url(self) -> str:
        return reverse(
            "subscriptions:edition",
            kwargs={"slug": self.newsletter.slug, "date": self.date.isoformat()},
        )


class DeliveryBatch(models.Model):
    """Up to one ESP call's worth of readers sharing the same content: the ledger's unit.

    What happened to each of its readers is the batch's state, unless the reader has a
    Delivery row of their own (subscriptions.digest.ledger).
    """

    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        SENT = "sent", pgettext_lazy("digest state", "Sent")
        FAILED = "failed", _("Failed")
        IN_DOUBT = "in_doubt", _("In doubt")

    edition = models.ForeignKey(
        Edition, verbose_name=_("edition"), on_delete=models.CASCADE, related_name="batches"
    )
    group_key = models.CharField(
        _("group key"),
        max_length=64,
        blank=True,
        help_text=_("The followed set this batch renders; empty when it renders several."),
    )
    # [["l", language], ["c", category id] | ["t", topic id], ...]: the readers' language,
    # then their follows in their order; what the batch renders, frozen when planned so
    # later follow or language changes cannot split it. A batch of several followed sets
    # has only its readers' one language here.
    followed = models.JSONField(_("followed"), default=list, blank=True)
    # A batch of several small followed sets of one language, for an ESP that takes each
    # reader's own message in one call (digest.esp.mixes_followed_sets): [[group key,
    # followed, [subscriber ids]], ...], each set's readers also in `readers`. Empty for
    # a batch of one followed set.
    groups = models.JSONField(_("followed sets"), default=list, blank=True)
    # The readers' subscriber ids, in the order planned. A JSON list, not a row per
    # reader: one row per ESP call is the whole ledger of a sent batch.
    readers = models.JSONField(_("readers"), default=list, blank=True)
    # len(readers), so that progress is summed in SQL without reading the lists. 0 for
    # batches planned before the ledger, whose readers are their Delivery rows.
    size = models.PositiveIntegerField(_("size"), default=0)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.QUEUED)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    # The Celery task id that moved the batch to "sending". The same id seen again on
    # a batch still "sending" is the broker redelivering it after its worker died.
    task_id = models.CharField(_("task id"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("delivery batch")
        verbose_name_plural = _("delivery batches")
        ordering = ["id"]
        indexes = [models.Index(fields=["edition", "state"], name="batch_edition_state")]

    def __str__(self) -> str:
        return f"batch {self.pk} of {self.edition} ({self.state})"


class Delivery(models.Model):
    """One reader's own fate in an edition, where it is not their batch's.

    Written only where something happens to one reader: suppressed or unsubscribed
    before sending, refused by the ESP, accepted alone (SMTP, one message per call)
    or found in the ESP's log while the batch is in doubt. Editions planned before the
    batch ledger have a row for every reader.
    """

    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        CLAIMED = "claimed", _("Being sent")
        SENT = "sent", pgettext_lazy("digest state", "Sent")
        SUPPRESSED = "suppressed", _("Suppressed")
        FAILED = "failed", _("Failed")
        IN_DOUBT = "in_doubt", _("In doubt")

    edition = models.ForeignKey(
        Edition, verbose_name=_("edition"), on_delete=models.CASCADE, related_name="deliveries"
    )
    subscriber = models.ForeignKey(
        Subscriber,
        verbose_name=_("subscriber"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
    )
    batch = models.ForeignKey(
        DeliveryBatch,
        verbose_name=_("batch"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
    )
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.QUEUED)
    esp_message_id = models.CharField(
        _("ESP message id"), max_length=200, blank=True, db_index=True
    )
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        constraints = [
            models.UniqueConstraint(
                fields=["edition", "subscriber"], name="delivery_once_per_edition"
            ),
        ]
        indexes = [models.Index(fields=["edition", "state"])]

    def __str__(self) -> str:
        return f"{self.edition} → {self.subscriber_id} ({self.state})"
