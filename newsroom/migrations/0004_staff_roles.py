"""The staff roles (Editors, Development, Audience, Admins) as groups; see newsroom.roles."""

from django.db import migrations


def create_roles(apps, schema_editor):
    from newsroom.roles import roles_sync

    roles_sync(apps=apps, using=schema_editor.connection.alias)


def remove_roles(apps, schema_editor):
    from newsroom.roles import roles_remove

    roles_remove(apps=apps, using=schema_editor.connection.alias)


class Migration(migrations.Migration):

    dependencies = [
        ("newsroom", "0003_auditentry"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("donations", "0002_gift_staff_permissions"),
        ("subscriptions", "0005_subscriber_export_permission"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
