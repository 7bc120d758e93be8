"""Admin for editions and their sending: progress, preview, test sends, pause, in-doubt batches."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from newsroom.models import Category, Topic
from newsroom.parsing import parse_int
from subscriptions.digest import in_doubt, ledger, render, staff
from subscriptions.digest.compose import edition_view
from subscriptions.models import Delivery, DeliveryBatch, Edition, Subscriber


def _followed_from(values: list[str]) -> list[list]:
    """["c:3", "t:7"] from a preview form, as a followed set [["c", 3], ["t", 7]]."""
    followed = []
    for value in values:
        kind, _, pk = value.partition(":")
        if kind in {"c", "t"} and (number := parse_int(pk)) is not None:
            followed.append([kind, number])
    return followed


def _progress_bar(counts: dict[str, int]) -> str:
    return format_html(
        '<progress max="{}" value="{}" aria-label="{}">{}%</progress> {}/{}',
        counts["total"] or 1,
        counts["done"],
        gettext("Delivered or settled"),
        counts["percent"],
        counts["done"],
        counts["total"],
    )


def _resumed(batches: int) -> str:
    return ngettext(
        "Resumed; {count} waiting batch queued again.",
        "Resumed; {count} waiting batches queued again.",
        batches,
    ).format(count=batches)


def _readers(count: int) -> str:
    return ngettext("{count} reader", "{count} readers", count).format(count=count)


class WrittenBySendingMixin:
    """Editions, batches and deliveries are written by the planner and the senders.

    Staff read them and act on them (the actions below), never type one in or edit a
    field; deleting one would forget who already got an edition and allow a second send.
    """

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class InDoubtFilter(admin.SimpleListFilter):
    title = _("needs attention")
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [("in_doubt", _("Has in-doubt batches"))]

    def queryset(self, request, queryset):
        if self.value() == "in_doubt":
            return queryset.filter(batches__state=DeliveryBatch.State.IN_DOUBT).distinct()
        return queryset


class EditionChangeList(ChangeList):
    """The editions' list, with each shown edition's readers counted by state (ledger):
    two grouped queries for the page, whatever its length."""

    def get_results(self, request):
        super().get_results(request)
        counts = ledger.editions_readers_by_state([edition.pk for edition in self.result_list])
        for edition in self.result_list:
            edition.readers_by_state = counts[edition.pk]


@admin.register(Edition)
class EditionAdmin(WrittenBySendingMixin, admin.ModelAdmin):
    list_display = [
        "__str__",
        "state",
        "progress",
        "sent",
        "queued",
        "failed",
        "suppressed",
        "in_doubt",
        "skip_reason",
    ]
    list_filter = ["newsletter", "state", InDoubtFilter]
    date_hierarchy = "date"
    list_select_related = ["newsletter"]
    fields = [
        "newsletter",
        "date",
        "state",
        "skip_reason",
        "cutoff_start",
        "cutoff_end",
        "composed_at",
    ]
    actions = ["pause_editions", "resume_editions"]
    change_form_template = "subscriptions/digest/admin/edition_change_form.html"

    def get_changelist(self, request, **kwargs):
        return EditionChangeList

    def _progress(self, obj: Edition) -> dict[str, int]:
        return staff.progress(by_state=obj.readers_by_state)

    @admin.display(description=_("progress"))
    def progress(self, obj: Edition) -> str:
        return _progress_bar(self._progress(obj))

    @admin.display(description=_("sent"))
    def sent(self, obj: Edition) -> int:
        return self._progress(obj)["sent"]

    @admin.display(description=_("queued"))
    def queued(self, obj: Edition) -> int:
        return self._progress(obj)["waiting"]

    @admin.display(description=_("failed"))
    def failed(self, obj: Edition) -> int:
        return self._progress(obj)["failed"]

    @admin.display(description=_("suppressed"))
    def suppressed(self, obj: Edition) -> int:
        return self._progress(obj)["suppressed"]

    @admin.display(description=_("in doubt"))
    def in_doubt(self, obj: Edition) -> int:
        return self._progress(obj)["in_doubt"]

    @admin.action(description=_("Pause sending the selected editions"), permissions=["change"])
    def pause_editions(self, request: HttpRequest, queryset) -> None:
        paused = sum(staff.edition_pause(edition=edition) for edition in queryset)
        self.message_user(
            request,
            ngettext("Paused {count} edition.", "Paused {count} editions.", paused).format(
                count=paused
            ),
        )

    @admin.action(description=_("Resume sending the selected editions"), permissions=["change"])
    def resume_editions(self, request: HttpRequest, queryset) -> None:
        batches = sum(staff.edition_resume(edition=edition) for edition in queryset)
        self.message_user(request, _resumed(batches))

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/preview/", view(self.preview_view), name="subscriptions_edition_preview"
            ),
            path(
                "<int:pk>/send-test/",
                view(self.send_test_view),
                name="subscriptions_edition_send_test",
            ),
            path("<int:pk>/pause/", view(self.pause_view), name="subscriptions_edition_pause"),
            path("<int:pk>/resume/", view(self.resume_view), name="subscriptions_edition_resume"),
            path(
                "batch/<int:pk>/resend/",
                view(self.batch_resend_view),
                name="subscriptions_deliverybatch_resend",
            ),
            path(
                "batch/<int:pk>/mark-sent/",
                view(self.batch_mark_sent_view),
                name="subscriptions_deliverybatch_mark_sent",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        edition = self.get_object(request, object_id)
        extra = {}
        if edition is not None:
            counts = staff.edition_progress(edition)
            extra = {
                "counts": counts,
                "progress_bar": _progress_bar(counts),
                "in_doubt_batches": edition.batches.filter(state=DeliveryBatch.State.IN_DOUBT),
                "contents": edition_view(edition=edition, followed=None),
                "categories": Category.objects.all(),
                "topics": Topic.objects.all(),
                "live": edition.state == Edition.State.SENDING,
                "can_pause": edition.state
                in (Edition.State.COMPOSED, Edition.State.SENDING, Edition.State.SENT),
                "can_resume": edition.state == Edition.State.PAUSED,
                "show_save": False,
                "show_save_and_continue": False,
                "show_save_and_add_another": False,
            }
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def _edition(self, request: HttpRequest, pk: int) -> Edition:
        return get_object_or_404(self.get_queryset(request).select_related("newsletter"), pk=pk)

    def _refuse(self, request: HttpRequest) -> HttpResponse | None:
        """Changes are POSTs (CSRF-checked by admin_view) by staff who may change editions."""
        if request.method != "POST":
            return HttpResponse(status=405)
        if not self.has_change_permission(request):
            return HttpResponse(status=403)
        return None

    def _back(self, edition: Edition) -> HttpResponseRedirect:
        return HttpResponseRedirect(
            reverse("admin:subscriptions_edition_change", args=[edition.pk])
        )

    def _reader(
        self, request: HttpRequest, data
    ) -> tuple[Subscriber | None, list[list] | None, str]:
        email = (data.get("subscriber") or "").strip()
        if email:
            subscriber = Subscriber.objects.filter(email__iexact=email).first()
            if subscriber is None:
                return (
                    None,
                    None,
                    gettext("No subscriber has the address {email}.").format(email=email),
                )
            return subscriber, None, ""
        return None, _followed_from(data.getlist("follow")), ""

    def preview_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The email as a chosen subscriber, or a reader of a chosen followed set, gets it."""
        edition = self._edition(request, pk)
        subscriber, followed, error = self._reader(request, request.GET)
        if error:
            self.message_user(request, error, messages.ERROR)
            return self._back(edition)
        html = render.preview_html(edition=edition, subscriber=subscriber, followed=followed)
        response = HttpResponse(html)
        response["Cache-Control"] = "private, no-store"
        return response

    def send_test_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if refused := self._refuse(request):
            return refused
        edition = self._edition(request, pk)
        if not request.user.email:
            self.message_user(
                request,
                gettext("Your staff account has no email address to send the test to."),
                messages.ERROR,
            )
            return self._back(edition)
        subscriber, followed, error = self._reader(request, request.POST)
        if error:
            self.message_user(request, error, messages.ERROR)
            return self._back(edition)
        staff.edition_send_test(
            edition=edition, to=request.user.email, subscriber=subscriber, followed=followed
        )
        self.message_user(
            request, gettext("A test copy went to {email}.").format(email=request.user.email)
        )
        return self._back(edition)

    def pause_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if refused := self._refuse(request):
            return refused
        edition = self._edition(request, pk)
        if staff.edition_pause(edition=edition):
            self.message_user(
                request, gettext("Paused: batches not yet started wait until you resume.")
            )
        else:
            self.message_user(
                request,
                gettext("Only a composed, sending or sent edition can be paused."),
                messages.WARNING,
            )
        return self._back(edition)

    def resume_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if refused := self._refuse(request):
            return refused
        edition = self._edition(request, pk)
        batches = staff.edition_resume(edition=edition)
        self.message_user(request, _resumed(batches))
        return self._back(edition)

    def batch_resend_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if refused := self._refuse(request):
            return refused
        batch = get_object_or_404(DeliveryBatch, pk=pk)
        count = staff.batch_resend(batch=batch)
        if count:
            self.message_user(
                request,
                ngettext(
                    "Batch {batch}: {count} reader queued to be sent again.",
                    "Batch {batch}: {count} readers queued to be sent again.",
                    count,
                ).format(batch=batch.pk, count=count),
            )
        else:
            self.message_user(
                request,
                gettext("Batch {batch} is not in doubt; nothing was queued.").format(
                    batch=batch.pk
                ),
                messages.WARNING,
            )
        return HttpResponseRedirect(
            reverse("admin:subscriptions_edition_change", args=[batch.edition_id])
        )

    def batch_mark_sent_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if refused := self._refuse(request):
            return refused
        batch = get_object_or_404(DeliveryBatch, pk=pk)
        count = staff.batch_mark_sent(batch=batch)
        self.message_user(
            request,
            ngettext(
                "Batch {batch}: {count} reader recorded as sent.",
                "Batch {batch}: {count} readers recorded as sent.",
                count,
            ).format(batch=batch.pk, count=count),
        )
        return HttpResponseRedirect(
            reverse("admin:subscriptions_edition_change", args=[batch.edition_id])
        )


@admin.register(DeliveryBatch)
class DeliveryBatchAdmin(WrittenBySendingMixin, admin.ModelAdmin):
    list_display = [
        "pk",
        "edition",
        "state",
        "size",
        "attempts",
        "started_at",
        "finished_at",
        "error",
    ]
    list_filter = ["state", "edition__newsletter"]
    list_select_related = ["edition__newsletter"]
    fields = [
        "edition",
        "state",
        "group_key",
        "followed",
        "groups",
        "size",
        "readers",
        "attempts",
        "task_id",
        "created_at",
        "started_at",
        "finished_at",
        "error",
    ]
    actions = ["settle_from_esp", "resend_in_doubt", "mark_in_doubt_sent"]

    @admin.display(description=_("readers"), ordering="size")
    def size(self, obj: DeliveryBatch) -> int:
        return obj.size

    @admin.action(
        description=_("Settle the selected in-doubt batches from the ESP's log"),
        permissions=["change"],
    )
    def settle_from_esp(self, request: HttpRequest, queryset) -> None:
        if in_doubt.esp_that_can_tell() is None:
            self.message_user(
                request,
                gettext(
                    "This email provider cannot be asked which messages it took: check its "
                    "log, then resend the batch or record it as sent."
                ),
                messages.WARNING,
            )
            return
        settled = in_doubt.batches_settle(
            now=timezone.now(), batch_ids=list(queryset.values_list("pk", flat=True))
        )
        self.message_user(
            request,
            ngettext(
                "{batches} batch settled: {sent} found in the ESP's log and "
                "recorded as sent, {resent} queued to be sent again. In-doubt batches younger "
                "than {minutes} minutes, or that the ESP did not answer for, wait.",
                "{batches} batches settled: {sent} found in the ESP's log and "
                "recorded as sent, {resent} queued to be sent again. In-doubt batches younger "
                "than {minutes} minutes, or that the ESP did not answer for, wait.",
                len(settled),
            ).format(
                batches=len(settled),
                sent=_readers(sum(s.sent for s in settled)),
                resent=sum(s.resent for s in settled),
                minutes=in_doubt.SETTLE_AFTER.seconds // 60,
            ),
        )

    @admin.action(description=_("Resend the selected in-doubt batches"), permissions=["change"])
    def resend_in_doubt(self, request: HttpRequest, queryset) -> None:
        count = sum(staff.batch_resend(batch=batch) for batch in queryset)
        self.message_user(
            request,
            ngettext(
                "{count} reader queued to be sent again.",
                "{count} readers queued to be sent again.",
                count,
            ).format(count=count),
        )

    @admin.action(
        description=_("Record the selected in-doubt batches as sent"), permissions=["change"]
    )
    def mark_in_doubt_sent(self, request: HttpRequest, queryset) -> None:
        count = sum(staff.batch_mark_sent(batch=batch) for batch in queryset)
        self.message_user(
            request,
            ngettext(
                "{count} reader recorded as sent.", "{count} readers recorded as sent.", count
            ).format(count=count),
        )


@admin.register(Delivery)
class DeliveryAdmin(WrittenBySendingMixin, admin.ModelAdmin):
    list_display = ["edition", "subscriber", "state", "sent_at", "esp_message_id", "error"]
    list_filter = ["state", "edition__newsletter"]
    search_fields = ["subscriber__email", "esp_message_id"]
    list_select_related = ["edition__newsletter", "subscriber"]
    fields = ["edition", "subscriber", "batch", "state", "esp_message_id", "sent_at", "error"]

    def has_change_permission(self, request, obj=None) -> bool:
        # A delivery has no action of its own: staff act on its batch or edition.
        return False
