"""The newsroom's content: articles, and the categories, topics and authors around them."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Translated(models.Model):
    """A name and text shown in every language: the default's in fields, others in `translations`.

    One row serves every language, so a reader who follows a category follows it in all
    of them. A JSON field, not a column per language, so a language added to LANGUAGES
    needs no migration.
    """

    translations = models.JSONField(
        default=dict,
        blank=True,
        help_text=_('Per language code, e.g. {"ar": {"name": "…"}}; missing text falls back.'),
    )

    class Meta:
        abstract = True

    def translated(self, field: str, *, language: str | None = None) -> str:
        """`field` in `language` (the active one by default), or in the site's language."""
        language = language or translation.get_language() or settings.LANGUAGE_CODE
        text = self.translations.get(language, {}).get(field) if self.translations else None
        return text or getattr(self, field)

    @property
    def local_name(self) -> str:
        return self.translated("name")


class Category(Translated):
    name = models.CharField(_("name"), max_length=80, unique=True)
    slug = models.SlugField(_("slug"), max_length=80, unique=True, allow_unicode=True)
    description = models.TextField(_("description"), blank=True)
    order = models.PositiveIntegerField(_("order"), default=0, help_text=_("Lower comes first."))

    class Meta:
        ordering = ["order", "name"]
        verbose_name = _("category")
        verbose_name_plural = _("categories")

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("category", kwargs={"slug": self.slug})

    @property
    def local_description(self) -> str:
        return self.translated("description")


class Topic(Translated):
    name = models.CharField(_("name"), max_length=80, unique=True)
    slug = models.SlugField(_("slug"), max_length=80, unique=True, allow_unicode=True)
    description = models.TextField(_("description"), blank=True)

    class Meta:
        verbose_name = _("topic")
        verbose_name_plural = _("topics")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("topic", kwargs={"slug": self.slug})

    @property
    def local_description(self) -> str:
        return self.translated("description")


class Author(Translated):
    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(_("slug"), max_length=120, unique=True, allow_unicode=True)
    bio = models.TextField(_("bio"), blank=True)
    photo = models.ImageField(_("photo"), upload_to="authors/", blank=True)

    class Meta:
        verbose_name = _("author")
        verbose_name_plural = _("authors")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("author", kwargs={"slug": self.slug})

    @property
    def local_bio(self) -> str:
        return self.translated("bio")


class ArticleQuerySet(models.QuerySet):
    def published(self, *, now=None) -> ArticleQuerySet:
        """Articles a reader may see now: published, or scheduled for a time that has come.

        A scheduled article needs no process to appear: visibility is decided by the
        clock at read time.
        """
        now = now or timezone.now()
        return self.filter(
            status__in=[Article.Status.PUBLISHED, Article.Status.SCHEDULED],
            published_at__lte=now,
        )


class Article(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SCHEDULED = "scheduled", _("Scheduled")
        PUBLISHED = "published", _("Published")

    headline = models.CharField(_("headline"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=200, unique=True, allow_unicode=True)
    dek = models.CharField(_("standfirst (dek)"), max_length=400, blank=True)
    body = models.TextField(
        _("body"), help_text=_("HTML; sanitised when saved through the admin or services.")
    )
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE
    )
    # Versions of one story in several languages share this key; each has its own slug.
    story = models.UUIDField(_("story"), default=uuid.uuid4, db_index=True, editable=False)
    lead_photo = models.ImageField(
        _("lead photo"),
        upload_to="photos/%Y/%m/",
        blank=True,
        width_field="lead_photo_width",
        height_field="lead_photo_height",
    )
    # Stored on upload so pages give the <img> its size and the text does not jump.
    lead_photo_width = models.PositiveIntegerField(
        _("lead photo width"), null=True, blank=True, editable=False
    )
    lead_photo_height = models.PositiveIntegerField(
        _("lead photo height"), null=True, blank=True, editable=False
    )
    lead_photo_alt = models.CharField(_("lead photo alt"), max_length=300, blank=True)
    lead_photo_caption = models.CharField(_("lead photo caption"), max_length=400, blank=True)
    lead_photo_credit = models.CharField(_("lead photo credit"), max_length=200, blank=True)
    pull_quotes = models.JSONField(
        _("pull quotes"),
        default=list,
        blank=True,
        help_text=_("A list of short quotes; they are shown between the body's paragraphs."),
    )
    authors = models.ManyToManyField(Author, verbose_name=_("authors"), related_name="articles")
    category = models.ForeignKey(
        Category, verbose_name=_("category"), on_delete=models.PROTECT, related_name="articles"
    )
    topics = models.ManyToManyField(
        Topic, verbose_name=_("topics"), related_name="articles", blank=True
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.DRAFT
    )
    published_at = models.DateTimeField(_("published at"), null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    top_story_rank = models.PositiveSmallIntegerField(
        _("top story rank"),
        null=True,
        blank=True,
        help_text=_("1 is the lead story; empty is not a top story."),
    )

    objects = ArticleQuerySet.as_manager()

    class Meta:
        verbose_name = _("article")
        verbose_name_plural = _("articles")
        ordering = ["-published_at", "-id"]
        indexes = [
            models.Index(fields=["status", "published_at"]),
            models.Index(fields=["category", "status", "published_at"]),
            # Each language's front, category pages and feeds: a walk down one language's rows.
            models.Index(fields=["language", "status", "published_at"]),
            models.Index(fields=["language", "category", "status", "published_at"]),
            # The home page's top stories: a handful of rows, found without scanning every article.
            models.Index(
                fields=["top_story_rank"],
                condition=Q(top_story_rank__isnull=False),
                name="article_top_stories",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["story", "language"],
                name="article_one_version_per_language",
                violation_error_message="This story already has a version in that language.",
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | Q(published_at__isnull=False),
                name="article_published_has_date",
                violation_error_message=(
                    "A scheduled or published article needs a publication time."
                ),
            ),
        ]

    def __str__(self) -> str:
        return self.headline

    def get_absolute_url(self) -> str:
        # Under its own language's prefix, whatever the language of the page linking to it.
        with translation.override(self.language):
            return reverse("article", kwargs={"slug": self.slug})

    @property
    def is_public(self) -> bool:
        return (
            self.status != self.Status.DRAFT
            and self.published_at is not None
            and self.published_at <= timezone.now()
        )


class AuditEntry(models.Model):
    """One sensitive staff act (a refund, an export, a deletion, a role change), kept for good.

    Written in the transaction of the act itself (newsroom.audit), so an act that is
    rolled back leaves no entry and an entry never lacks its act.
    """

    class Action(models.TextChoices):
        GIFT_REFUND = "gift.refund", _("Refund asked at Stripe")
        EXPORT_GIFTS = "export.gifts", _("Gifts exported")
        EXPORT_DONORS = "export.donors", _("Donors exported")
        EXPORT_SUBSCRIBERS = "export.subscribers", _("Subscribers exported")
        SUBSCRIBER_DELETE = "subscriber.delete", _("Subscriber deleted")
        DONOR_ANONYMISE = "donor.anonymise", _("Donor's gifts anonymised")
        SUPPRESSION_REMOVE = "suppression.remove", _("Address taken off the suppression list")
        USER_GROUPS = "user.groups", _("Staff roles changed")
        USER_FLAGS = "user.flags", _("Staff or superuser status changed")
        GROUP_PERMISSIONS = "group.permissions", _("Role permissions changed")
        ENROL_CODE_ISSUED = "twofactor.code", _("Two-factor set-up code issued")
        TWO_FACTOR_SET_UP = "twofactor.setup", _("Authenticator app set up")
        RECOVERY_CODE_USED = "twofactor.recovery", _("Signed in with a recovery code")
        RECOVERY_CODES_NEW = "twofactor.newcodes", _("New recovery codes made")

    at = models.DateTimeField(_("at"), default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("Empty: a reader acting on their own data, or a command run on the server."),
    )
    # Kept apart from the foreign key so the entry still names a deleted staff account.
    actor_name = models.CharField(_("actor name"), max_length=150, blank=True)
    action = models.CharField(_("action"), max_length=40, choices=Action.choices, db_index=True)
    object_type = models.CharField(_("object type"), max_length=100, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    object_repr = models.CharField(_("object repr"), max_length=200, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)
    ip_address = models.GenericIPAddressField(_("ip address"), null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit trail")
        # Read-only by design: no add, change or delete permission exists to grant.
        default_permissions = ("view",)
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        who = self.actor_name or "reader or system"
        return f"{self.at:%Y-%m-%d %H:%M} {who}: {self.get_action_display()} {self.object_repr}"


class OutboxMessage(models.Model):
    """A task a change needs, written in the change's transaction and sent to the broker after.

    The broker may be down when the change commits; the row waits here until a beat run
    sends it (newsroom.outbox), so nothing a request started is lost.
    """

    class State(models.TextChoices):
        PENDING = "pending", _("Waiting to be sent")
        SENT = "sent", pgettext_lazy("outbox state", "Sent")
        FAILED = "failed", _("Failed: no more tries")

    task = models.CharField(_("task"), max_length=200, help_text=_("The Celery task's name."))
    kwargs = models.JSONField(_("kwargs"), default=dict, blank=True)
    state = models.CharField(
        _("state"), max_length=10, choices=State.choices, default=State.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox messages")
        # Read-only for staff: rows are written and sent by code, never by hand.
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"{self.task} #{self.pk} ({self.get_state_display()})"
