from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles(sender, using="default", **kwargs) -> None:
    from django.db import connections
    from django.db.migrations.recorder import MigrationRecorder

    from newsroom.roles import ROLES_MIGRATION, roles_sync

    # Not after migrating back past the migration that made the roles: they stay removed.
    if ROLES_MIGRATION in MigrationRecorder(connections[using]).applied_migrations():
        roles_sync(using=using)


class NewsroomConfig(AppConfig):
    name = "newsroom"
    verbose_name = "Newsroom"

    def ready(self) -> None:
        from newsroom import audit

        audit.connect_signals()
        # After every migrate (and every test-database flush), the role groups hold
        # their permissions again, new models' included (newsroom.roles).
        post_migrate.connect(_sync_roles, sender=self, dispatch_uid="newsroom_sync_roles")
