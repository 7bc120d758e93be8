from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles(sender, using="default", **kwargs) -> None:
    from django.db import connections
    from django.db.migrations.recorder import MigrationRecorder

    from staff.roles import ROLES_MIGRATION, roles_sync

    # Not after migrating back past the migration that made the roles: they stay removed.
    if ROLES_MIGRATION in MigrationRecorder(connections[using]).applied_migrations():
        roles_sync(using=using)


class StaffConfig(AppConfig):
    name = "staff"
    verbose_name = "Staff"

    def ready(self) -> None:
        from staff.roles import ROLES_MIGRATION

        # After every migrate (and every test-database flush), the role groups hold
        # their permissions again, new models' included (staff.roles). Django sends
        # post_migrate only for apps with models: this one has none, so it listens
        # for the app whose migration made the groups.
        post_migrate.connect(
            _sync_roles,
            sender=self.apps.get_app_config(ROLES_MIGRATION[0]),
            dispatch_uid="staff_sync_roles",
        )
