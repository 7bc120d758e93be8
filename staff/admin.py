"""Users and roles in the admin: the two-factor set-up code action, roles in each one's language."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers
from django.utils.text import format_lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from newsroom import audit
from newsroom.admin import AuditedGroupAdmin, AuditedUserAdmin
from newsroom.security import has_confirmed_device
from staff import services
from staff.roles import role_label

User = get_user_model()

# The admin's titles in each staff member's language (staff.middleware); newsroom.admin,
# loaded first, names them in the site's default language only.
admin.site.site_header = format_lazy(_("{name} staff"), name=settings.NEWSROOM_NAME)
admin.site.site_title = format_lazy(_("{name} staff"), name=settings.NEWSROOM_NAME)
admin.site.index_title = _("Dashboard")


class RoleListFilter(admin.RelatedFieldListFilter):
    """The changelist's "By group" filter, the roles named in the staff member's language."""

    def field_choices(self, field, request, model_admin):
        return [
            (pk, role_label(name))
            for pk, name in super().field_choices(field, request, model_admin)
        ]


class StaffUserAdmin(AuditedUserAdmin):
    actions = [*AuditedUserAdmin.actions, "enrol_code_issue"]
    list_display = (*AuditedUserAdmin.list_display, "roles")
    list_filter = [
        (name, RoleListFilter) if name == "groups" else name
        for name in AuditedUserAdmin.list_filter
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        formfield = super().formfield_for_manytomany(db_field, request, **kwargs)
        if db_field.name == "groups":
            formfield.label_from_instance = lambda group: role_label(group.name)
        return formfield

    @admin.display(description=_("roles"))
    def roles(self, user) -> str:
        return ", ".join(sorted(role_label(group.name) for group in user.groups.all()))

    @admin.action(
        description=_("Issue a one-time two-factor set-up code to selected users"),
        permissions=["change"],
    )
    def enrol_code_issue(self, request, queryset):
        """Show each selected staff member's new code once; it is kept only as a hash."""
        issued, skipped = [], []
        actor = audit.request_actor(request)
        for user in queryset.order_by("username"):
            if not (user.is_staff and user.is_active):
                skipped.append((user, _("not an active staff account")))
            elif has_confirmed_device(user):
                skipped.append(
                    (
                        user,
                        _("already has an authenticator app: delete it under TOTP devices first"),
                    )
                )
            else:
                issued.append((user, services.enrol_code_issue(user=user, actor=actor)))
        if not issued:
            self.message_user(
                request,
                gettext("No code issued: {reasons}").format(
                    reasons="; ".join(f"{user.get_username()} {why}" for user, why in skipped)
                ),
                messages.WARNING,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Two-factor set-up codes"),
            "opts": self.opts,
            "issued": issued,
            "skipped": skipped,
            "hours": settings.STAFF_ENROL_CODE_HOURS,
        }
        response = TemplateResponse(request, "staff/admin/enrol_codes.html", context)
        add_never_cache_headers(response)  # the codes are in this page only
        return response


class StaffGroupAdmin(AuditedGroupAdmin):
    list_display = ("local_name",)

    @admin.display(description=_("name"), ordering="name")
    def local_name(self, group: Group) -> str:
        return role_label(group.name)


for _model, _admin_class in ((User, StaffUserAdmin), (Group, StaffGroupAdmin)):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _admin_class)
