from __future__ import annotations

from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_migrate
from django.utils import translation
from django.utils.translation import gettext_lazy, ngettext


def _sync_roles(sender, using="default", **kwargs) -> None:
    from django.db import connections
    from django.db.migrations.recorder import MigrationRecorder

    from staff.roles import ROLES_MIGRATION, roles_sync

    # Not after migrating back past the migration that made the roles: they stay removed.
    if ROLES_MIGRATION in MigrationRecorder(connections[using]).applied_migrations():
        roles_sync(using=using)


def _recovery_code_sign_in(sender, request, user, **kwargs) -> None:
    from django.contrib import messages

    from newsroom.audit import request_actor
    from staff import services
    from staff.models import RecoveryCodeDevice

    # The sign-in form (newsroom.security) may not import staff: its device tells us here.
    if not isinstance(getattr(user, "otp_device", None), RecoveryCodeDevice):
        return
    services.recovery_code_sign_in_record(user=user, actor=request_actor(request))
    left = services.recovery_codes_left(user=user)
    # The sign-in page spoke the site's language (nobody was signed in yet); the message
    # is read on the next page, which speaks the one this staff member chose.
    language = services.staff_language(user=user) or translation.get_language()
    with translation.override(language):
        text = ngettext(
            "You signed in with a recovery code; {left} left. Lost your authenticator app? "
            "Ask an Admin to remove it, and set up a new one at your next sign-in.",
            "You signed in with a recovery code; {left} left. Lost your authenticator app? "
            "Ask an Admin to remove it, and set up a new one at your next sign-in.",
            left,
        ).format(left=left)
    messages.warning(request, text, fail_silently=True)


class StaffConfig(AppConfig):
    name = "staff"
    verbose_name = gettext_lazy("Staff")

    def ready(self) -> None:
        from staff.roles import ROLES_MIGRATION

        # After every migrate (and every test-database flush), the role groups hold
        # their permissions again, new models' included (staff.roles). It listens for
        # the app whose migration made the groups, which migrates before this one.
        post_migrate.connect(
            _sync_roles,
            sender=self.apps.get_app_config(ROLES_MIGRATION[0]),
            dispatch_uid="staff_sync_roles",
        )
        user_logged_in.connect(_recovery_code_sign_in, dispatch_uid="staff_recovery_code_sign_in")
