"""Appeals, gifts, recurring plans, and the records that keep money and email exactly-once."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from donations.money import format_cents


class Frequency(models.TextChoices):
    ONE_TIME = "one_time", _("One-time")
    MONTHLY = "monthly", _("Monthly")
    ANNUAL = "annual", _("Annual")


class Placement(models.TextChoices):
    SITE_BANNER = "site_banner", _("Site banner")
    IN_ARTICLE = "in_article", _("Inside an article")
    AFTER_ARTICLE = "after_article", _("After an article")
    DONATE_PAGE_HERO = "donate_page_hero", _("Donate page hero")
    NEWSLETTER = "newsletter", _("Inside the newsletter")


def default_amounts_one_time() -> list[int]:
    return [2500, 5000, 10000, 25000]


def default_amounts_monthly() -> list[int]:
    return [1000, 2000, 3500, 5000]


def default_amounts_annual() -> list[int]:
    return [10000, 20000, 36500, 50000]


class Appeal(models.Model):
    class Audience(models.TextChoices):
        EVERYONE = "everyone", _("Everyone")
        NON_DONORS = "non_donors", _("Readers who have never given")
        LAPSED_DONORS = "lapsed_donors", _("Donors who have not given in the last 12 months")
        SUBSCRIBERS = "subscribers", _("Newsletter subscribers")
        NOT_SUBSCRIBERS = "not_subscribers", _("Readers who do not get the newsletter")

    name = models.CharField(_("internal name"), max_length=120, unique=True)
    # One appeal, one language: staff write each language's copy as its own appeal, so
    # its wording, schedule and results stand alone. Blank shows it on every language.
    language = models.CharField(
        _("language"),
        max_length=8,
        choices=settings.LANGUAGES,
        blank=True,
        help_text=_("Shown on pages and newsletters in this language; blank: in every language."),
    )
    headline = models.CharField(_("headline"), max_length=160)
    body = models.TextField(_("body"), help_text=_("Plain text; blank lines separate paragraphs."))
    cta_label = models.CharField(_("call-to-action label"), max_length=60, default="Give today")
    image = models.ImageField(_("image"), upload_to="appeals/", blank=True)
    image_alt = models.CharField(_("image alt"), max_length=300, blank=True)
    placement = models.CharField(_("placement"), max_length=20, choices=Placement.choices)
    after_paragraph = models.PositiveSmallIntegerField(
        _("after paragraph"),
        default=3,
        help_text=_("For appeals inside an article: shown after this paragraph."),
    )
    starts_at = models.DateTimeField(_("starts at"), default=timezone.now)
    ends_at = models.DateTimeField(
        _("ends at"), null=True, blank=True, help_text=_("Empty runs until stopped.")
    )
    active = models.BooleanField(
        _("active"), default=True, help_text=_("Untick to stop the appeal at once.")
    )
    priority = models.PositiveSmallIntegerField(
        _("priority"),
        default=100,
        help_text=_("Where several appeals fit a slot, the highest wins."),
    )
    audience = models.CharField(
        _("audience"), max_length=20, choices=Audience.choices, default=Audience.EVERYONE
    )
    amounts_one_time = models.JSONField(
        _("amounts one time"),
        default=default_amounts_one_time,
        help_text=_("Suggested one-time amounts, in cents."),
    )
    amounts_monthly = models.JSONField(
        _("amounts monthly"),
        default=default_amounts_monthly,
        help_text=_("Suggested monthly amounts, in cents."),
    )
    amounts_annual = models.JSONField(
        _("amounts annual"),
        default=default_amounts_annual,
        help_text=_("Suggested annual amounts, in cents."),
    )
    default_frequency = models.CharField(
        _("default frequency"), max_length=10, choices=Frequency.choices, default=Frequency.MONTHLY
    )
    goal_cents = models.PositiveBigIntegerField(
        _("goal cents"),
        null=True,
        blank=True,
        help_text=_("Optional money goal, in cents, shown as a progress bar."),
    )
    # Counters: impressions, clicks and checkouts are counted in the cache and added
    # here by the `donations.appeal_counters_flush` beat task, so a page view never
    # writes to the database. Gifts and revenue are summed from the gifts themselves.
    impressions = models.PositiveBigIntegerField(_("impressions"), default=0, editable=False)
    clicks = models.PositiveBigIntegerField(_("clicks"), default=0, editable=False)
    checkouts_started = models.PositiveBigIntegerField(
        _("checkouts started"), default=0, editable=False
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("appeal")
        verbose_name_plural = _("appeals")
        ordering = ["-priority", "-starts_at"]
        indexes = [models.Index(fields=["placement", "active", "starts_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True) | Q(ends_at__gt=F("starts_at")),
                name="appeal_ends_after_start",
                violation_error_message="An appeal must end after it starts.",
            ),
            models.CheckConstraint(
                condition=Q(goal_cents__isnull=True) | Q(goal_cents__gt=0),
                name="appeal_goal_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def amounts_for(self, frequency: str) -> list[int]:
        return {
            Frequency.ONE_TIME: self.amounts_one_time,
            Frequency.MONTHLY: self.amounts_monthly,
            Frequency.ANNUAL: self.amounts_annual,
        }.get(frequency) or []

    @property
    def paragraphs(self) -> list[str]:
        return [part.strip() for part in self.body.split("\n\n") if part.strip()]


class RecurringPlan(models.Model):
    """A monthly or annual gift: one Stripe subscription; each installment is a Gift."""

    class Status(models.TextChoices):
        INCOMPLETE = "incomplete", _("Waiting for the first payment")
        ACTIVE = "active", _("Active")
        PAST_DUE = "past_due", _("Past due")
        CANCELED = "canceled", _("Cancelled")

    stripe_subscription_id = models.CharField(
        _("stripe subscription id"), max_length=255, unique=True
    )
    stripe_customer_id = models.CharField(_("stripe customer id"), max_length=255, blank=True)
    donor_email = models.EmailField(_("donor email"), db_index=True)
    donor_name = models.CharField(_("donor name"), max_length=120, blank=True)
    frequency = models.CharField(_("frequency"), max_length=10, choices=Frequency.choices)
    amount_cents = models.PositiveIntegerField(_("amount cents"))
    currency = models.CharField(_("currency"), max_length=3, default=settings.DONATION_CURRENCY)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.INCOMPLETE
    )
    # The language of the page the plan was started on: its notices and portal speak it.
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE
    )
    appeal = models.ForeignKey(
        Appeal,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="plans",
        verbose_name=_("appeal"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    canceled_at = models.DateTimeField(_("canceled at"), null=True, blank=True)
    # The `created` time of the newest subscription event applied: an older event
    # delivered late cannot undo a newer one (Stripe does not promise order,
    # docs.stripe.com/webhooks#event-ordering).
    stripe_state_at = models.PositiveBigIntegerField(
        _("stripe state at"), default=0, editable=False
    )

    class Meta:
        verbose_name = _("recurring plan")
        verbose_name_plural = _("recurring plans")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="plan_amount_positive"),
        ]

    def __str__(self) -> str:
        frequency = self.get_frequency_display().lower()
        amount = format_cents(self.amount_cents, self.currency, exact=True)
        return f"{self.donor_email}: {amount} {frequency}"


class Gift(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending (at Stripe Checkout)")
        PAID = "paid", _("Paid")
        FAILED = "failed", _("Payment failed")
        ABANDONED = "abandoned", _("Abandoned")
        PARTIALLY_REFUNDED = "partially_refunded", _("Partially refunded")
        REFUNDED = "refunded", _("Refunded")

    class Dedication(models.TextChoices):
        NONE = "", _("No dedication")
        HONOR = "honor", _("In honour of")
        MEMORY = "memory", _("In memory of")

    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.PENDING
    )
    frequency = models.CharField(_("frequency"), max_length=10, choices=Frequency.choices)
    amount_cents = models.PositiveIntegerField(
        _("amount cents"), help_text=_("What was charged, fee included.")
    )
    fee_cents = models.PositiveIntegerField(
        _("fee cents"), default=0, help_text=_("The processing fee the donor covered.")
    )
    currency = models.CharField(_("currency"), max_length=3, default=settings.DONATION_CURRENCY)
    refunded_cents = models.PositiveIntegerField(_("refunded cents"), default=0)
    donor_email = models.EmailField(_("donor email"), db_index=True)
    donor_name = models.CharField(_("donor name"), max_length=120, blank=True)
    anonymous = models.BooleanField(
        _("anonymous"), default=False, help_text=_("Not to be named publicly.")
    )
    dedication = models.CharField(
        _("dedication"), max_length=6, choices=Dedication.choices, blank=True, default=""
    )
    honoree_name = models.CharField(_("honoree name"), max_length=120, blank=True)
    honoree_email = models.EmailField(_("honoree email"), blank=True)
    # The language of the page the donor gave on: receipts, notes and Checkout speak it.
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE
    )
    plan = models.ForeignKey(
        RecurringPlan,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="gifts",
        verbose_name=_("plan"),
    )
    appeal = models.ForeignKey(
        Appeal,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="gifts",
        verbose_name=_("appeal"),
    )
    placement = models.CharField(
        _("placement"), max_length=20, choices=Placement.choices, blank=True
    )
    article = models.ForeignKey(
        "newsroom.Article",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("article"),
    )
    utm = models.JSONField(
        _("utm"), default=dict, blank=True, help_text="utm_source, utm_medium, ..."
    )
    stripe_checkout_session_id = models.CharField(
        _("stripe checkout session id"), max_length=255, blank=True
    )
    stripe_invoice_id = models.CharField(_("stripe invoice id"), max_length=255, blank=True)
    stripe_payment_intent_id = models.CharField(
        _("stripe payment intent id"), max_length=255, blank=True
    )
    stripe_charge_id = models.CharField(
        _("stripe charge id"), max_length=255, blank=True, db_index=True
    )
    stripe_customer_id = models.CharField(_("stripe customer id"), max_length=255, blank=True)
    card_last4 = models.CharField(_("card last4"), max_length=4, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True, db_index=True)
    receipt_sent_at = models.DateTimeField(_("receipt sent at"), null=True, blank=True)
    honoree_notified_at = models.DateTimeField(_("honoree notified at"), null=True, blank=True)
    refund_requested_at = models.DateTimeField(_("refund requested at"), null=True, blank=True)
    disputed_at = models.DateTimeField(
        _("disputed at"),
        null=True,
        blank=True,
        help_text=_("The donor's bank opened a dispute: staff should look."),
    )
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("gift")
        verbose_name_plural = _("gifts")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "paid_at"]),
            # The dashboard sums each appeal's gifts from this index alone (an index-only
            # scan on PostgreSQL), never reading the table: staff.dashboard.appeal_funnels.
            models.Index(
                fields=["appeal", "status", "amount_cents", "refunded_cents"],
                name="gift_appeal_results",
                condition=Q(appeal__isnull=False),
            ),
            # The honoree notes of the last days, counted per address before each new one.
            models.Index(
                fields=["honoree_notified_at"],
                name="gift_honoree_notified",
                condition=Q(honoree_notified_at__isnull=False),
            ),
        ]
        # Staff acts that Django's add/change/delete/view do not cover (staff.roles).
        permissions = [
            ("refund_gift", "Can refund gifts at Stripe"),
            ("export_gifts", "Can export gifts as CSV"),
            ("export_donors", "Can export donors with their lifetime totals as CSV"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="gift_amount_positive"),
            models.CheckConstraint(
                condition=Q(refunded_cents__lte=F("amount_cents")), name="gift_refund_within_amount"
            ),
            models.CheckConstraint(
                condition=Q(fee_cents__lt=F("amount_cents")), name="gift_fee_below_amount"
            ),
            # One gift per Stripe object: replays and reordered webhooks cannot add a second.
            models.UniqueConstraint(
                fields=["stripe_checkout_session_id"],
                condition=~Q(stripe_checkout_session_id=""),
                name="gift_unique_checkout_session",
            ),
            models.UniqueConstraint(
                fields=["stripe_invoice_id"],
                condition=~Q(stripe_invoice_id=""),
                name="gift_unique_invoice",
            ),
            models.UniqueConstraint(
                fields=["stripe_payment_intent_id"],
                condition=~Q(stripe_payment_intent_id=""),
                name="gift_unique_payment_intent",
            ),
        ]

    def __str__(self) -> str:
        amount = format_cents(self.amount_cents, self.currency, exact=True)
        return f"{amount} from {self.donor_email}"

    @property
    def net_cents(self) -> int:
        return self.amount_cents - self.refunded_cents

    @property
    def counts_as_given(self) -> bool:
        return self.status in {self.Status.PAID, self.Status.PARTIALLY_REFUNDED}


class StripeEvent(models.Model):
    """Every webhook event, stored under Stripe's id before it is processed."""

    class Outcome(models.TextChoices):
        RECEIVED = "received", _("Received, not processed yet")
        PROCESSED = "processed", _("Processed")
        IGNORED = "ignored", _("Ignored (a type we do not handle)")
        WAITING = "waiting", _("Waiting for the gift it is about")
        FAILED = "failed", _("Failed")

    stripe_id = models.CharField(_("stripe id"), max_length=255)
    type = models.CharField(_("type"), max_length=100)
    livemode = models.BooleanField(_("livemode"), default=False)
    payload = models.JSONField(_("payload"))
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    outcome = models.CharField(
        _("outcome"), max_length=10, choices=Outcome.choices, default=Outcome.RECEIVED
    )
    waiting_for = models.CharField(
        _("waiting for"),
        max_length=255,
        blank=True,
        help_text=_("The Stripe id (e.g. a PaymentIntent) this event needs before it applies."),
    )
    error = models.TextField(_("error"), blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    queued_at = models.DateTimeField(
        _("queued at"),
        null=True,
        blank=True,
        help_text=_(
            "When the event was last handed to the broker; empty until the next drain queues "
            "it, or when the broker refused it."
        ),
    )

    class Meta:
        verbose_name = _("Stripe event")
        verbose_name_plural = _("Stripe events")
        ordering = ["-received_at"]
        # Every index is written on each event the webhook stores, so only what is read
        # by a task is indexed, and only over the rows it reads: the events still owed
        # (the drain and the requeue) and those waiting for another (by what they wait for).
        # A constraint, not `unique=True`: on PostgreSQL the field would add a second
        # index for LIKE searches that nothing makes.
        constraints = [
            models.UniqueConstraint(fields=["stripe_id"], name="stripeevent_stripe_id_unique")
        ]
        indexes = [
            models.Index(
                fields=["received_at"],
                name="stripeevent_received",
                condition=Q(outcome="received"),
            ),
            models.Index(
                fields=["waiting_for"],
                name="stripeevent_waiting_for",
                condition=Q(outcome="waiting"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.stripe_id}"


class PaymentFailureNotice(models.Model):
    """The one "update your card" email sent for a failed invoice."""

    stripe_invoice_id = models.CharField(_("stripe invoice id"), max_length=255, unique=True)
    plan = models.ForeignKey(
        RecurringPlan,
        on_delete=models.CASCADE,
        related_name="failure_notices",
        verbose_name=_("plan"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("payment failure notice")
        verbose_name_plural = _("payment failure notices")

    def __str__(self) -> str:
        return self.stripe_invoice_id


class GivingStatement(models.Model):
    """A year's giving statement for one donor: at most one per donor and year."""

    donor_email = models.EmailField(_("donor email"))
    year = models.PositiveSmallIntegerField(_("year"))
    total_cents = models.PositiveBigIntegerField(_("total cents"), default=0)
    gift_count = models.PositiveIntegerField(_("gift count"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("giving statement")
        verbose_name_plural = _("giving statements")
        ordering = ["-year", "donor_email"]
        constraints = [
            models.UniqueConstraint(fields=["donor_email", "year"], name="statement_once_per_year"),
        ]

    def __str__(self) -> str:
        return f"{self.year} statement for {self.donor_email}"


class ManageLink(models.Model):
    """A "manage my giving" link as sent: the link holds a random token, this row its hash."""

    token_hash = models.CharField(max_length=64, unique=True)
    email = models.EmailField()
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"link for {self.email}, until {self.expires_at:%Y-%m-%d %H:%M}"


class UsedManageToken(models.Model):
    """A signed "manage my giving" link of the older form that has been used.

    Those links carried the email; they are still honoured until they expire.
    """

    token_id = models.CharField(max_length=64, unique=True)
    used_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.token_id


class HonoreeOptOut(models.Model):
    """An address that asked for no more notes about gifts made in someone's name."""

    # newsroom.security.email_hash: the opt-out is kept without keeping the address.
    email_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("honoree opt-out")
        verbose_name_plural = _("honoree opt-outs")

    def __str__(self) -> str:
        return self.email_hash[:12]
