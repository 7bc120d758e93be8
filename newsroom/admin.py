"""The editors' admin: articles with scheduling, preview and sanitising; sections and authors."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.utils import timezone
from django.utils.html import format_html

from newsroom import audit, services
from newsroom.models import Article, AuditEntry, Author, Category, OutboxMessage, Topic

# Staff see the newsroom's own name on every admin page and in the browser's tab.
admin.site.site_header = f"{settings.NEWSROOM_NAME} staff"
admin.site.site_title = f"{settings.NEWSROOM_NAME} staff"
admin.site.index_title = "Dashboard"


class PullQuotesField(forms.CharField):
    """Pull quotes edited as one quote per line, stored as a list."""

    widget = forms.Textarea(attrs={"rows": 3})

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(value)
        return value

    def to_python(self, value) -> list[str]:
        text = super().to_python(value) or ""
        return [line.strip() for line in text.splitlines() if line.strip()]


class ArticleForm(forms.ModelForm):
    pull_quotes = PullQuotesField(
        required=False,
        help_text="One quote per line; they are placed between the body's paragraphs.",
    )

    class Meta:
        model = Article
        fields = (
            "headline",
            "slug",
            "dek",
            "language",
            "body",
            "pull_quotes",
            "lead_photo",
            "lead_photo_alt",
            "lead_photo_caption",
            "lead_photo_credit",
            "category",
            "topics",
            "authors",
            "top_story_rank",
            "status",
            "published_at",
        )

    def clean(self) -> dict:
        data = super().clean()
        status, published_at = data.get("status"), data.get("published_at")
        if status == Article.Status.SCHEDULED and not published_at:
            self.add_error("published_at", "Choose when the article should appear.")
        elif status == Article.Status.PUBLISHED and not published_at:
            # "Publish" with no time means now; the model requires a time for it.
            data["published_at"] = timezone.now()
        return data


class ReadOnlyMixin:
    """Append-only records: staff read them, nobody adds, edits or deletes them here."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):
    form = ArticleForm
    list_display = (
        "headline",
        "status_now",
        "published_at",
        "category",
        "top_story_rank",
        "language",
        "preview_link",
    )
    list_filter = ("status", "category", "authors", "language", "published_at")
    list_select_related = ("category",)
    search_fields = ("headline", "dek", "body", "slug")
    date_hierarchy = "published_at"
    autocomplete_fields = ("authors", "topics")
    prepopulated_fields = {"slug": ("headline",)}
    readonly_fields = ("created_at", "updated_at", "preview_link")
    fieldsets = (
        (None, {"fields": ("headline", "slug", "dek", "language", "body", "pull_quotes")}),
        (
            "Lead photo",
            {"fields": ("lead_photo", "lead_photo_alt", "lead_photo_caption", "lead_photo_credit")},
        ),
        ("Placement", {"fields": ("category", "topics", "authors", "top_story_rank")}),
        (
            "Publishing",
            {
                "fields": ("status", "published_at", "preview_link", "created_at", "updated_at"),
                "description": "Scheduled: the article appears by itself at its publication time.",
            },
        ),
    )

    actions = ("publish_now", "back_to_draft")

    @admin.action(description="Publish the selected articles now")
    def publish_now(self, request, queryset) -> None:
        for article in queryset:
            services.article_publish(article=article)
        self.message_user(request, f"Published {len(queryset)} article(s).", messages.SUCCESS)

    @admin.action(description="Take the selected articles back to draft")
    def back_to_draft(self, request, queryset) -> None:
        for article in queryset:
            services.article_unpublish(article=article)
        self.message_user(
            request, f"{len(queryset)} article(s) are drafts again.", messages.SUCCESS
        )

    @admin.display(description="status")
    def status_now(self, obj: Article) -> str:
        if obj.status != Article.Status.DRAFT and not obj.is_public:
            return "Scheduled (waiting)"
        return obj.get_status_display()

    @admin.display(description="page")
    def preview_link(self, obj: Article) -> str:
        if not obj.pk:
            return "-"
        label = "View on site" if obj.is_public else "Preview"
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">{}</a>', obj.get_absolute_url(), label
        )

    def save_model(self, request, obj: Article, form, change: bool) -> None:
        # The service sanitises the body, saves authors and topics, and refreshes pages.
        services.article_save(
            article=obj,
            authors=form.cleaned_data.get("authors"),
            topics=form.cleaned_data.get("topics"),
        )

    def save_related(self, request, form, formsets, change: bool) -> None:
        # Authors and topics were saved by article_save; only inlines (none today) remain.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request, obj: Article) -> None:
        services.article_delete(article=obj)

    def delete_queryset(self, request, queryset) -> None:
        for article in queryset:
            services.article_delete(article=article)


class _SectionAdmin(admin.ModelAdmin):
    """Categories, topics and authors appear on many pages: saving refreshes them."""

    search_fields = ("name",)
    prepopulated_fields = {"slug": ("name",)}

    def save_model(self, request, obj, form, change: bool) -> None:
        services.section_save(obj=obj)

    def delete_model(self, request, obj) -> None:
        services.section_delete(obj=obj)

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset:
            services.section_delete(obj=obj)


@admin.register(Category)
class CategoryAdmin(_SectionAdmin):
    list_display = ("name", "slug", "order")
    list_editable = ("order",)


@admin.register(Topic)
class TopicAdmin(_SectionAdmin):
    list_display = ("name", "slug")


@admin.register(Author)
class AuthorAdmin(_SectionAdmin):
    list_display = ("name", "slug")


# --- the audit trail, and the views that change staff roles ---------------------------


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Read-only for everyone, superusers included: an audit trail nobody can edit."""

    list_display = (
        "at",
        "actor_name",
        "action",
        "object_type",
        "object_repr",
        "ip_address",
        "summary",
    )
    list_filter = ("action", ("at", admin.DateFieldListFilter), "object_type")
    search_fields = ("actor_name", "object_repr", "object_id", "ip_address")
    date_hierarchy = "at"
    fields = (
        "at",
        "actor",
        "actor_name",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "details",
        "ip_address",
    )
    readonly_fields = fields
    list_select_related = ("actor",)

    @admin.display(description="details")
    def summary(self, obj: AuditEntry) -> str:
        return ", ".join(f"{key}: {value}" for key, value in obj.details.items())[:160]


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """What waits to reach the task queue, and why: read-only, the beat task does the sending."""

    list_display = ("created_at", "task", "state", "attempts", "sent_at", "error")
    list_filter = ("state", "task")
    date_hierarchy = "created_at"
    fields = ("task", "kwargs", "state", "attempts", "created_at", "sent_at", "last_error")
    readonly_fields = fields

    @admin.display(description="last error")
    def error(self, obj: OutboxMessage) -> str:
        return obj.last_error[:160]


class AuditedUserAdmin(UserAdmin):
    """Changes to roles and to the staff, superuser and active flags name who made them."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        with audit.acting(request):
            return super().changeform_view(request, object_id, form_url, extra_context)

    def changelist_view(self, request, extra_context=None):
        with audit.acting(request):
            return super().changelist_view(request, extra_context)


class AuditedGroupAdmin(GroupAdmin):
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        with audit.acting(request):
            return super().changeform_view(request, object_id, form_url, extra_context)


User = get_user_model()
for _model, _admin_class in ((User, AuditedUserAdmin), (Group, AuditedGroupAdmin)):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _admin_class)
