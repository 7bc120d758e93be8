"""Staff tools: appeals and their results, gifts (refund, CSV export), plans, Stripe events."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.urls import path
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from donations import selectors, services, stripe_api
from donations.models import (
    Appeal,
    Gift,
    GivingStatement,
    PaymentFailureNotice,
    RecurringPlan,
    StripeEvent,
)
from donations.money import format_cents, plain_amount
from newsroom import audit, exports
from newsroom.models import AuditEntry


class AppealAdminForm(forms.ModelForm):
    class Meta:
        model = Appeal
        fields = "__all__"  # noqa: DJ007 (the admin's fieldsets choose what is shown)

    def _amounts(self, name: str) -> list[int]:
        value = self.cleaned_data.get(name)
        if not isinstance(value, list) or not all(
            isinstance(cents, int) and not isinstance(cents, bool) for cents in value
        ):
            raise forms.ValidationError(
                gettext("Write a list of amounts in cents, like [2500, 5000, 10000].")
            )
        low, high = settings.DONATION_MIN_CENTS, settings.DONATION_MAX_CENTS
        if any(not low <= cents <= high for cents in value):
            raise forms.ValidationError(
                gettext(
                    "Each amount must be between {low} and {high} cents ({least} to {most})."
                ).format(low=low, high=high, least=format_cents(low), most=format_cents(high))
            )
        if len(value) > 6:
            raise forms.ValidationError(gettext("At most six suggested amounts fit the form."))
        return value

    def clean_amounts_one_time(self) -> list[int]:
        return self._amounts("amounts_one_time")

    def clean_amounts_monthly(self) -> list[int]:
        return self._amounts("amounts_monthly")

    def clean_amounts_annual(self) -> list[int]:
        return self._amounts("amounts_annual")


@admin.register(Appeal)
class AppealAdmin(admin.ModelAdmin):
    form = AppealAdminForm
    list_display = [
        "name",
        "placement",
        "audience",
        "active",
        "starts_at",
        "ends_at",
        "priority",
        "impressions",
        "clicks",
        "click_rate",
        "checkouts_started",
        "gifts",
        "revenue",
        "conversion_rate",
    ]
    list_filter = ["placement", "audience", "active"]
    search_fields = ["name", "headline"]
    readonly_fields = [
        "impressions",
        "clicks",
        "checkouts_started",
        "gifts",
        "revenue",
        "conversion_rate",
    ]
    fieldsets = [
        (
            None,
            {"fields": ["name", "active", "placement", "after_paragraph", "priority", "audience"]},
        ),
        (_("Schedule"), {"fields": ["starts_at", "ends_at"]}),
        (_("Copy"), {"fields": ["headline", "body", "cta_label", "image", "image_alt"]}),
        (
            _("Amounts"),
            {
                "fields": [
                    "default_frequency",
                    "amounts_one_time",
                    "amounts_monthly",
                    "amounts_annual",
                    "goal_cents",
                ]
            },
        ),
        (
            _("Results"),
            {
                "fields": [
                    "impressions",
                    "clicks",
                    "checkouts_started",
                    "gifts",
                    "revenue",
                    "conversion_rate",
                ]
            },
        ),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Appeal]:
        return selectors.appeals_with_results()

    @admin.display(description=_("gifts"), ordering="gift_count")
    def gifts(self, appeal: Appeal) -> int:
        return getattr(appeal, "gift_count", 0) or 0

    @admin.display(description=_("revenue"), ordering="gift_total")
    def revenue(self, appeal: Appeal) -> str:
        return format_cents(getattr(appeal, "gift_total", 0) or 0, exact=True)

    @admin.display(description=_("click rate"))
    def click_rate(self, appeal: Appeal) -> str:
        return (
            f"{appeal.clicks / appeal.impressions:.1%}"
            if appeal.impressions
            else gettext("no impressions yet")
        )

    @admin.display(description=_("conversion (gifts / impressions)"))
    def conversion_rate(self, appeal: Appeal) -> str:
        gifts = getattr(appeal, "gift_count", 0) or 0
        if not appeal.impressions:
            return gettext("no impressions yet")
        return f"{gifts / appeal.impressions:.2%}"

    def save_model(self, request, obj: Appeal, form, change: bool) -> None:
        services.appeal_save(appeal=obj)

    def get_deleted_objects(self, objs, request: HttpRequest):
        """Refuse, as Django refuses a protected row, to delete an appeal that raised money."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # Its gifts would keep their amounts but lose what they were given to; switching
        # the appeal off keeps both.
        raised = [
            gettext("%(appeal)s raised gifts: switch it off (untick active) instead")
            % {"appeal": appeal}
            for appeal in objs
            if appeal.gifts.exists() or appeal.plans.exists()
        ]
        return deleted, counts, perms_needed, [*protected, *raised]

    def delete_model(self, request, obj: Appeal) -> None:
        services.appeal_delete(appeal=obj)

    def delete_queryset(self, request, queryset: QuerySet[Appeal]) -> None:
        for appeal in queryset:
            services.appeal_delete(appeal=appeal)


GIFT_COLUMNS = [
    "id",
    "status",
    "paid_at",
    "frequency",
    "amount",
    "fee_covered",
    "refunded",
    "currency",
    "donor_email",
    "donor_name",
    "anonymous",
    "dedication",
    "honoree_name",
    "appeal",
    "placement",
    "article_id",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "stripe_payment_intent_id",
    "stripe_invoice_id",
    "stripe_subscription_id",
]
DONOR_COLUMNS = [
    "email",
    "name",
    "gifts",
    "lifetime_total",
    "currency",
    "first_gift_at",
    "last_gift_at",
    "recurring_gifts",
    "anonymous_gifts",
]
EXPORT_CHUNK = 2000


def _dollars(cents: int | None, currency: str | None = None) -> str:
    return plain_amount(cents or 0, currency)


def _gift_rows(gifts: QuerySet[Gift]):
    """One tuple per gift, read 2,000 rows at a time: no model instances, no full list."""
    rows = gifts.order_by("pk").values_list(
        "pk",
        "status",
        "paid_at",
        "frequency",
        "amount_cents",
        "fee_cents",
        "refunded_cents",
        "currency",
        "donor_email",
        "donor_name",
        "anonymous",
        "dedication",
        "honoree_name",
        "appeal__name",
        "placement",
        "article_id",
        "utm",
        "stripe_payment_intent_id",
        "stripe_invoice_id",
        "plan__stripe_subscription_id",
    )
    for (
        pk,
        status,
        paid_at,
        frequency,
        amount,
        fee,
        refunded,
        currency,
        email,
        name,
        anonymous,
        dedication,
        honoree,
        appeal,
        placement,
        article_id,
        utm,
        intent,
        invoice,
        subscription,
    ) in rows.iterator(chunk_size=EXPORT_CHUNK):
        utm = utm if isinstance(utm, dict) else {}
        yield [
            pk,
            status,
            paid_at,
            frequency,
            _dollars(amount, currency),
            _dollars(fee, currency),
            _dollars(refunded, currency),
            currency,
            email,
            name,
            anonymous,
            Gift.Dedication(dedication).label if dedication else "",
            honoree,
            appeal or "",
            placement,
            article_id or "",
            utm.get("utm_source", ""),
            utm.get("utm_medium", ""),
            utm.get("utm_campaign", ""),
            intent,
            invoice,
            subscription or "",
        ]


def _donor_rows(donors):
    for row in donors.iterator(chunk_size=EXPORT_CHUNK):
        yield [
            row["email"],
            row["name"],
            row["gifts"],
            _dollars(row["total"]),
            settings.DONATION_CURRENCY,
            row["first"],
            row["last"],
            row["recurring"],
            row["anonymous"],
        ]


@admin.register(Gift)
class GiftAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "paid_at",
        "donor_email",
        "amount",
        "frequency",
        "status",
        "appeal",
        "disputed",
    ]
    list_filter = [
        "status",
        "frequency",
        "appeal",
        "placement",
        ("paid_at", admin.DateFieldListFilter),
        "anonymous",
    ]
    search_fields = [
        "donor_email",
        "donor_name",
        "stripe_checkout_session_id",
        "stripe_payment_intent_id",
        "stripe_invoice_id",
        "stripe_charge_id",
        "stripe_customer_id",
    ]
    date_hierarchy = "paid_at"
    list_select_related = ["appeal"]
    actions = ["refund", "export_csv"]
    readonly_fields = [f.name for f in Gift._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # gifts come from Stripe, never typed in

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # Stripe is the truth; staff act through the actions

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # money records are kept for the books: staff refund instead

    @admin.display(description=_("amount"), ordering="amount_cents")
    def amount(self, gift: Gift) -> str:
        return format_cents(gift.amount_cents, gift.currency, exact=True)

    @admin.display(description=_("disputed"), boolean=True)
    def disputed(self, gift: Gift) -> bool:
        return gift.disputed_at is not None

    def has_refund_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("donations.refund_gift")

    def has_export_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("donations.export_gifts")

    @admin.action(description=_("Refund the selected gifts at Stripe"), permissions=["refund"])
    def refund(self, request: HttpRequest, queryset: QuerySet[Gift]) -> None:
        asked, refused = 0, []
        actor = audit.request_actor(request)
        for gift in queryset:
            try:
                # The refund's request and its audit entry are committed together.
                with transaction.atomic():
                    remaining = gift.amount_cents - gift.refunded_cents
                    services.gift_refund_request(gift_id=gift.pk)
                    audit.audit_record(
                        action=AuditEntry.Action.GIFT_REFUND,
                        actor=actor,
                        obj=gift,
                        details={"amount_cents": remaining, "currency": gift.currency},
                    )
                asked += 1
            except services.RefundNotPossible as exc:
                refused.append(str(exc))
            except stripe_api.StripeError as exc:
                refused.append(
                    gettext("Gift {gift}: Stripe said {reason}").format(
                        gift=gift.pk, reason=exc.user_message or exc
                    )
                )
        if asked:
            self.message_user(
                request,
                ngettext(
                    "Asked Stripe to refund {count} gift. It will show as refunded when "
                    "Stripe confirms it (usually within a minute).",
                    "Asked Stripe to refund {count} gifts. Each will show as refunded when "
                    "Stripe confirms it (usually within a minute).",
                    asked,
                ).format(count=asked),
                messages.SUCCESS,
            )
        for message in refused:
            self.message_user(request, message, messages.WARNING)

    @admin.action(description=_("Export the selected gifts as CSV"), permissions=["export"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Gift]) -> StreamingHttpResponse:
        return exports.csv_export(
            request=request,
            action=AuditEntry.Action.EXPORT_GIFTS,
            name="gifts",
            header=GIFT_COLUMNS,
            rows=_gift_rows(queryset),
            row_count=queryset.count(),
            details={"filters": request.GET.urlencode(), "selection": _selection(request)},
        )

    def get_urls(self):
        return [
            path(
                "export-donors.csv",
                self.admin_site.admin_view(self.export_donors_view),
                name="donations_gift_export_donors",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_export_donors": request.user.has_perm("donations.export_donors"),
        }
        return super().changelist_view(request, extra_context=extra_context)

    def export_donors_view(self, request: HttpRequest) -> StreamingHttpResponse:
        """Every donor (by address, case ignored) with what they gave, net of refunds."""
        exports.require(request, "donations.export_donors")
        donors = selectors.donors_with_totals()
        return exports.csv_export(
            request=request,
            action=AuditEntry.Action.EXPORT_DONORS,
            name="donors",
            header=DONOR_COLUMNS,
            rows=_donor_rows(donors),
            row_count=selectors.donors_with_totals().count(),
        )


def _selection(request: HttpRequest) -> str:
    """What the action ran on: the whole filtered list, or the ticked rows."""
    if request.POST.get("select_across") == "1":
        return "all matching the filters"
    return f"{len(request.POST.getlist(helpers.ACTION_CHECKBOX_NAME))} ticked"


class GiftInline(admin.TabularInline):
    model = Gift
    fields = ["paid_at", "amount_cents", "status", "stripe_invoice_id"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(RecurringPlan)
class RecurringPlanAdmin(admin.ModelAdmin):
    list_display = ["donor_email", "amount", "frequency", "status", "created_at", "canceled_at"]
    list_filter = ["status", "frequency", "appeal"]
    search_fields = ["donor_email", "stripe_subscription_id", "stripe_customer_id"]
    readonly_fields = [f.name for f in RecurringPlan._meta.fields]
    inlines = [GiftInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # a plan ends by cancelling it at Stripe; its record stays

    @admin.display(description=_("amount"), ordering="amount_cents")
    def amount(self, plan: RecurringPlan) -> str:
        return format_cents(plan.amount_cents, plan.currency, exact=True)


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin):
    list_display = [
        "stripe_id",
        "type",
        "outcome",
        "received_at",
        "processed_at",
        "attempts",
        "short_error",
    ]
    list_filter = ["outcome", "type", "livemode"]
    search_fields = ["stripe_id", "type", "waiting_for"]
    readonly_fields = [f.name for f in StripeEvent._meta.fields]
    actions = ["process_again"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # the record of what Stripe told us about money, and the dedupe key

    @admin.display(description=_("error"))
    def short_error(self, event: StripeEvent) -> str:
        return event.error.strip().splitlines()[-1][:120] if event.error else ""

    # Re-running a webhook event changes gifts and plans: for those who may change
    # Stripe events (Admins), not for Development, who may only view them (staff.roles).
    # Without the permission Django neither lists the action nor runs a forged POST of it.
    @admin.action(description=_("Process the selected events again"), permissions=["change"])
    def process_again(self, request: HttpRequest, queryset: QuerySet[StripeEvent]) -> None:
        # Events still `received` too: one the broker never delivered is processed here.
        queued = services.stripe_events_queue(event_ids=queryset.values_list("pk", flat=True))
        self.message_user(
            request,
            ngettext(
                "Queued {count} event to be processed again.",
                "Queued {count} events to be processed again.",
                queued,
            ).format(count=queued),
        )


@admin.register(GivingStatement)
class GivingStatementAdmin(admin.ModelAdmin):
    list_display = ["donor_email", "year", "gift_count", "total", "sent_at"]
    list_filter = ["year"]
    search_fields = ["donor_email"]
    readonly_fields = [f.name for f in GivingStatement._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # what a donor was told they gave in a tax year

    @admin.display(description=_("total"), ordering="total_cents")
    def total(self, statement: GivingStatement) -> str:
        return format_cents(statement.total_cents, exact=True)


@admin.register(PaymentFailureNotice)
class PaymentFailureNoticeAdmin(admin.ModelAdmin):
    list_display = ["stripe_invoice_id", "plan", "created_at", "sent_at"]
    search_fields = ["stripe_invoice_id", "plan__donor_email"]
    readonly_fields = ["stripe_invoice_id", "plan", "created_at", "sent_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # deleting one would send the donor the same notice again
