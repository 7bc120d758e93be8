"""Staff views of the audience: subscribers, consent, suppression, ESP events, newsletters."""

from __future__ import annotations

from collections.abc import Iterator

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext, pgettext
from django.utils.translation import gettext_lazy as _

from newsroom import audit, exports
from newsroom.admin import ReadOnlyMixin, translations_form
from newsroom.models import AuditEntry, Category
from subscriptions import selectors, services
from subscriptions.models import (
    ConsentRecord,
    ConsentText,
    Follow,
    Newsletter,
    Subscriber,
    Subscription,
    Suppression,
    TrackingEvent,
    email_hash,
)


class StatusFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return selectors.STATUSES

    def queryset(self, request, queryset):
        if self.value():
            return selectors.subscribers_by_status(self.value(), queryset)
        return queryset


class NewsletterFilter(admin.SimpleListFilter):
    title = _("newsletter (active)")
    parameter_name = "newsletter"

    def lookups(self, request, model_admin):
        return [(str(n.pk), n.local_name) for n in Newsletter.objects.all()]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(
                subscriptions__newsletter_id=self.value(),
                subscriptions__status=Subscription.Status.ACTIVE,
            ).distinct()
        return queryset


class FollowedCategoryFilter(admin.SimpleListFilter):
    title = _("followed category")
    parameter_name = "follows_category"

    def lookups(self, request, model_admin):
        return [(str(c.pk), c.local_name) for c in Category.objects.all()]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(follows__category_id=self.value()).distinct()
        return queryset


class SubscriptionInline(admin.TabularInline):
    model = Subscription
    extra = 0
    fields = ["newsletter", "status", "created_at", "confirmed_at", "unsubscribed_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        # Subscribing is the reader's act (double opt-in), not staff's.
        return False


class FollowInline(admin.TabularInline):
    model = Follow
    extra = 0
    fields = ["category", "topic", "position", "created_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class ConsentRecordInline(ReadOnlyMixin, admin.TabularInline):
    model = ConsentRecord
    extra = 0
    fields = ["at", "action", "newsletter", "source", "ip_address", "user_agent", "consent_text"]
    readonly_fields = fields
    ordering = ["at", "id"]
    verbose_name_plural = _("consent history (read-only)")


class SubscriberForm(forms.ModelForm):
    class Meta:
        model = Subscriber
        fields = ["name", "time_zone", "paused_until"]

    def clean_time_zone(self) -> str:
        value = self.cleaned_data["time_zone"]
        if not services.is_time_zone(value):
            raise forms.ValidationError(_("Enter an IANA time zone name, such as Asia/Beirut."))
        return value


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    form = SubscriberForm
    list_display = ["email", "status", "confirmed_at", "time_zone", "paused_until", "created_at"]
    search_fields = ["email", "name"]
    list_filter = [StatusFilter, NewsletterFilter, FollowedCategoryFilter]
    readonly_fields = [
        "email",
        "created_at",
        "confirmed_at",
        "confirmation_sent_at",
        "reminder_sent_at",
        "suppression",
    ]
    fields = [
        "email",
        "name",
        "time_zone",
        "paused_until",
        "suppression",
        "created_at",
        "confirmed_at",
        "confirmation_sent_at",
        "reminder_sent_at",
    ]
    inlines = [SubscriptionInline, FollowInline, ConsentRecordInline]
    change_list_template = "subscriptions/admin/subscriber_change_list.html"

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description=_("status"))
    def status(self, obj: Subscriber) -> str:
        states = {s.status for s in obj.subscriptions.all()}
        if Subscription.Status.ACTIVE in states:
            return pgettext("subscriber status", "active")
        if Subscription.Status.PENDING in states:
            return pgettext("subscriber status", "pending")
        return pgettext("subscriber status", "unsubscribed")

    @admin.display(description=_("suppressed"))
    def suppression(self, obj: Subscriber) -> str:
        found = Suppression.objects.filter(email_sha256=email_hash(obj.email)).first()
        return found.get_reason_display() if found else gettext("no")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("subscriptions")

    # Deleting a subscriber is what "delete my data" does: the address stays suppressed.
    def delete_model(self, request, obj: Subscriber) -> None:
        services.subscriber_delete(subscriber=obj, actor=audit.request_actor(request), by="staff")

    def delete_queryset(self, request, queryset) -> None:
        actor = audit.request_actor(request)
        for subscriber in queryset:
            services.subscriber_delete(subscriber=subscriber, actor=actor, by="staff")

    def get_urls(self):
        return [
            path(
                "export-confirmed.csv",
                self.admin_site.admin_view(self.export_confirmed),
                name="subscriptions_subscriber_export",
            ),
            *super().get_urls(),
        ]

    def export_confirmed(self, request: HttpRequest) -> StreamingHttpResponse:
        """Stream a CSV of confirmed subscribers: rows are written as they are read."""
        exports.require(request, "subscriptions.export_subscribers")
        subscribers = selectors.confirmed_subscribers_for_export()

        def rows() -> Iterator[list]:
            # 500 at a time, each chunk with its subscriptions and follows prefetched.
            for subscriber in subscribers.iterator(chunk_size=500):
                yield [
                    subscriber.email,
                    subscriber.name,
                    subscriber.time_zone,
                    subscriber.confirmed_at,
                    "; ".join(
                        s.newsletter.name
                        for s in subscriber.subscriptions.all()
                        if s.status == Subscription.Status.ACTIVE
                    ),
                    "; ".join(str(f.category or f.topic) for f in subscriber.follows.all()),
                ]

        return exports.csv_export(
            request=request,
            action=AuditEntry.Action.EXPORT_SUBSCRIBERS,
            name="confirmed-subscribers",
            header=["email", "name", "time_zone", "confirmed_at", "newsletters", "follows"],
            rows=rows(),
            row_count=selectors.confirmed_subscribers_for_export().count(),
        )

    def changelist_view(self, request: HttpRequest, extra_context=None):
        counts = selectors.status_counts()
        extra_context = {
            **(extra_context or {}),
            "status_counts": [(label, counts[key], key) for key, label in selectors.STATUSES],
            "can_export": request.user.has_perm("subscriptions.export_subscribers"),
        }
        return super().changelist_view(request, extra_context=extra_context)


@admin.register(Newsletter)
class NewsletterAdmin(admin.ModelAdmin):
    form = translations_form(Newsletter, ("name", "description"))
    exclude = ("translations",)
    list_display = ["name", "slug", "cadence", "send_hour", "language", "active", "active_count"]
    list_filter = ["active", "cadence"]
    prepopulated_fields = {"slug": ["name"]}

    @admin.display(description=_("active subscribers"))
    def active_count(self, obj: Newsletter) -> int:
        return obj.subscriptions.filter(status=Subscription.Status.ACTIVE).count()

    def get_deleted_objects(self, objs, request: HttpRequest):
        """Refuse, as for a protected row, to delete a newsletter readers signed up to."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # Its subscriptions would go with it, unaudited; switching it off keeps them.
        held = [
            gettext("%(newsletter)s has subscribers: switch it off (untick active) instead")
            % {"newsletter": newsletter}
            for newsletter in objs
            if newsletter.subscriptions.exists()
        ]
        return deleted, counts, perms_needed, [*protected, *held]


@admin.register(ConsentText)
class ConsentTextAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["sha256", "created_at"]
    readonly_fields = ["sha256", "text", "created_at"]


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["subscriber", "action", "newsletter", "at", "source", "ip_address"]
    list_filter = ["action", "newsletter", "source"]
    search_fields = ["subscriber__email"]
    list_select_related = ["subscriber", "newsletter"]


class SuppressionForm(forms.ModelForm):
    email = forms.EmailField(
        help_text=_("Only its SHA-256 is stored; the address itself is not kept.")
    )

    class Meta:
        model = Suppression
        fields = ["reason"]


class SuppressionRemoveForm(forms.Form):
    why = forms.CharField(
        label=_("Why"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Kept in the audit trail, with who removed it and when."),
    )


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ["email_sha256", "reason", "created_at"]
    list_filter = ["reason"]
    search_fields = ["email_sha256"]
    form = SuppressionForm

    def get_actions(self, request: HttpRequest) -> dict:
        # Each removal says why (delete_view below); the bulk delete would not ask.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_view(self, request: HttpRequest, object_id: str, extra_context=None):
        """Take the address off the list once staff say why; the audit trail keeps it."""
        suppression = self.get_object(request, unquote(object_id))
        if suppression is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_delete_permission(request, suppression):
            raise PermissionDenied
        form = SuppressionRemoveForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            services.suppression_remove(
                suppression=suppression,
                actor=audit.request_actor(request),
                why=form.cleaned_data["why"],
            )
            self.message_user(request, gettext("The address may be emailed again."))
            return redirect("admin:subscriptions_suppression_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": _("Take this address off the suppression list"),
            "opts": self.opts,
            "object": suppression,
            "form": form,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "subscriptions/admin/suppression_remove.html", context)

    def get_search_results(self, request, queryset, search_term):
        # Staff search by address; the list holds only hashes, so search by the hash of it.
        if "@" in search_term:
            return queryset.filter(email_sha256=email_hash(search_term)), False
        return super().get_search_results(request, queryset, search_term)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        found = services.suppression_add(email=form.cleaned_data["email"], reason=obj.reason)
        obj.pk = found.pk
        obj.email_sha256 = found.email_sha256


@admin.register(TrackingEvent)
class TrackingEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["occurred_at", "event_type", "recipient", "esp_name", "outcome", "edition"]
    list_filter = ["event_type", "esp_name"]
    search_fields = ["recipient", "message_id", "esp_event_id"]
    date_hierarchy = "occurred_at"
