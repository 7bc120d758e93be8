"""The editors' admin: articles with scheduling, preview and sanitising; sections and authors."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import ManyToOneRel
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.text import capfirst, format_lazy
from django.utils.translation import get_language_info, gettext, ngettext
from django.utils.translation import gettext_lazy as _

from newsroom import audit, services
from newsroom.models import Article, AuditEntry, Author, Category, OutboxMessage, Topic

# Staff see the newsroom's own name on every admin page and in the browser's tab.
admin.site.site_header = format_lazy(_("{name} staff"), name=settings.NEWSROOM_NAME)
admin.site.site_title = format_lazy(_("{name} staff"), name=settings.NEWSROOM_NAME)
admin.site.index_title = _("Dashboard")


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
        label=_("Pull quotes"),
        help_text=_("One quote per line; they are placed between the body's paragraphs."),
    )
    # An article's id, not a <select> of every article: a newsroom has too many to list.
    translation_of = forms.ModelChoiceField(
        queryset=Article.objects.all(),
        required=False,
        widget=ForeignKeyRawIdWidget(ManyToOneRel(None, Article, "id"), admin.site),
        label=_("Translation of"),
        help_text=_(
            "The number of this story's version in another language (the magnifier finds "
            "it): the two become one story, and each page links to the other."
        ),
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
        version, language = data.get("translation_of"), data.get("language")
        if version is not None and language:
            taken = (
                Article.objects.filter(story=version.story, language=language)
                .exclude(pk=self.instance.pk)
                .first()
            )
            if version.pk == self.instance.pk:
                self.add_error("translation_of", gettext("An article cannot translate itself."))
            elif taken is not None:
                self.add_error(
                    "translation_of",
                    gettext("This story already has a version in that language: %(headline)s")
                    % {"headline": taken.headline},
                )
        if status == Article.Status.SCHEDULED and not published_at:
            self.add_error("published_at", gettext("Choose when the article should appear."))
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
    readonly_fields = ("created_at", "updated_at", "preview_link", "versions")
    fieldsets = (
        (None, {"fields": ("headline", "slug", "dek", "language", "body", "pull_quotes")}),
        (_("Languages"), {"fields": ("versions", "translation_of")}),
        (
            _("Lead photo"),
            {"fields": ("lead_photo", "lead_photo_alt", "lead_photo_caption", "lead_photo_credit")},
        ),
        (_("Placement"), {"fields": ("category", "topics", "authors", "top_story_rank")}),
        (
            _("Publishing"),
            {
                "fields": ("status", "published_at", "preview_link", "created_at", "updated_at"),
                "description": _(
                    "Scheduled: the article appears by itself at its publication time."
                ),
            },
        ),
    )

    actions = ("publish_now", "back_to_draft")

    @admin.action(description=_("Publish the selected articles now"))
    def publish_now(self, request, queryset) -> None:
        for article in queryset:
            services.article_publish(article=article)
        count = len(queryset)
        self.message_user(
            request,
            ngettext("Published %(count)d article.", "Published %(count)d articles.", count)
            % {"count": count},
            messages.SUCCESS,
        )

    @admin.action(description=_("Take the selected articles back to draft"))
    def back_to_draft(self, request, queryset) -> None:
        for article in queryset:
            services.article_unpublish(article=article)
        count = len(queryset)
        self.message_user(
            request,
            ngettext(
                "%(count)d article is a draft again.", "%(count)d articles are drafts again.", count
            )
            % {"count": count},
            messages.SUCCESS,
        )

    @admin.display(description=_("status"))
    def status_now(self, obj: Article) -> str:
        if obj.status != Article.Status.DRAFT and not obj.is_public:
            return gettext("Scheduled (waiting)")
        return obj.get_status_display()

    @admin.display(description=_("page"))
    def preview_link(self, obj: Article) -> str:
        if not obj.pk:
            return "-"
        label = gettext("View on site") if obj.is_public else gettext("Preview")
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">{}</a>', obj.get_absolute_url(), label
        )

    @admin.display(description=_("this story in other languages"))
    def versions(self, obj: Article) -> str:
        """Each other version's edit page, and a prefilled form for each missing language."""
        if not obj.pk:
            return gettext("Save the article first; then translate it from here.")
        others = Article.objects.filter(story=obj.story).exclude(pk=obj.pk).order_by("language")
        have = {obj.language, *(other.language for other in others)}
        existing = format_html_join(
            "",
            '<li><a href="{}" lang="{}" dir="auto">{}</a> ({})</li>',
            (
                (
                    reverse("admin:newsroom_article_change", args=[other.pk]),
                    other.language,
                    other.headline,
                    other.get_language_display(),
                )
                for other in others
            ),
        )
        query = {"translation_of": obj.pk, "category": obj.category_id, "status": "draft"}
        missing = format_html_join(
            "",
            '<li><a href="{}?{}">{}</a></li>',
            (
                (
                    reverse("admin:newsroom_article_add"),
                    urlencode({**query, "language": code}),
                    gettext("Translate into %(language)s")
                    % {"language": get_language_info(code)["name_translated"]},
                )
                for code, _name in settings.LANGUAGES
                if code not in have
            ),
        )
        return format_html('<ul class="story-versions">{}{}</ul>', existing, missing)

    def save_model(self, request, obj: Article, form, change: bool) -> None:
        # The service sanitises the body, saves authors and topics, and refreshes pages.
        services.article_save(
            article=obj,
            authors=form.cleaned_data.get("authors"),
            topics=form.cleaned_data.get("topics"),
            translation_of=form.cleaned_data.get("translation_of"),
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


class TranslationsForm(forms.ModelForm):
    """The name and text in each other language, one field each, kept in `translations`."""

    translated_fields: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for code, texts in (self.instance.translations or {}).items():
            for name, text in texts.items():
                self.initial.setdefault(f"{name}_{code}", text)

    def clean(self) -> dict:
        data = super().clean()
        translations = {}
        for code, _language in settings.LANGUAGES:
            texts = {
                name: data[f"{name}_{code}"].strip()
                for name in self.translated_fields
                if data.get(f"{name}_{code}", "").strip()
            }
            if texts:
                translations[code] = texts
        self.instance.translations = translations
        return data


def translations_form(model: type[models.Model], names: tuple[str, ...]) -> type[TranslationsForm]:
    """A form with a field for each of `names` in each language but the site's own."""
    attrs: dict = {"translated_fields": names}
    for code, language in settings.LANGUAGES:
        if code == settings.LANGUAGE_CODE:
            continue
        for name in names:
            model_field = model._meta.get_field(name)
            widget_attrs = {"dir": "auto", "lang": code}
            attrs[f"{name}_{code}"] = forms.CharField(
                label=format_lazy("{} ({})", capfirst(model_field.verbose_name), language),
                required=False,
                widget=forms.Textarea(attrs={"rows": 2, **widget_attrs})
                if isinstance(model_field, models.TextField)
                else forms.TextInput(attrs=widget_attrs),
            )
    return type(f"{model.__name__}TranslationsForm", (TranslationsForm,), attrs)


class _SectionAdmin(admin.ModelAdmin):
    """Categories, topics and authors appear on many pages: saving refreshes them."""

    search_fields = ("name",)
    prepopulated_fields = {"slug": ("name",)}
    exclude = ("translations",)

    def save_model(self, request, obj, form, change: bool) -> None:
        services.section_save(obj=obj)

    def delete_model(self, request, obj) -> None:
        services.section_delete(obj=obj)

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset:
            services.section_delete(obj=obj)


@admin.register(Category)
class CategoryAdmin(_SectionAdmin):
    form = translations_form(Category, ("name", "description"))
    list_display = ("name", "slug", "order")
    list_editable = ("order",)


@admin.register(Topic)
class TopicAdmin(_SectionAdmin):
    form = translations_form(Topic, ("name", "description"))
    list_display = ("name", "slug")


@admin.register(Author)
class AuthorAdmin(_SectionAdmin):
    form = translations_form(Author, ("name", "bio"))
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

    @admin.display(description=_("details"))
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

    @admin.display(description=_("last error"))
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
