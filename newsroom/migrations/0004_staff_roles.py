"""The staff roles (Editors, Development, Audience, Admins) as groups, as first defined.

A frozen copy of the roles as they were when this migration was written: staff.roles
holds the living definition, which the staff app applies after every migrate. Kept
here so that this migration means the same thing forever, needs no app of a later
layer, and never asks for a permission whose model a later migration creates.
"""

from django.db import migrations

ALL = ("add", "change", "delete", "view")

ROLES = {
    "Editors": {
        "newsroom": {"article": ALL, "category": ALL, "topic": ALL, "author": ALL},
    },
    "Development": {
        "donations": {
            "appeal": ALL,
            "gift": ("view", "refund_gift", "export_gifts", "export_donors"),
            "recurringplan": ("view",),
            "givingstatement": ("view",),
            "paymentfailurenotice": ("view",),
            "stripeevent": ("view",),
        },
    },
    "Audience": {
        "subscriptions": {
            "newsletter": ALL,
            "edition": ("view", "change"),
            "deliverybatch": ("view", "change"),
            "delivery": ("view",),
            "subscriber": ("view", "change", "delete", "export_subscribers"),
            "subscription": ("view",),
            "follow": ("view",),
            "consentrecord": ("view",),
            "consenttext": ("view",),
            "suppression": ("add", "view", "delete"),
            "trackingevent": ("view",),
        },
    },
    "Admins": {},  # every permission
}


def _create_all_permissions(apps, using):
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        # The migration state's app configs carry no models module; create_permissions
        # skips such apps unless told they have models (Django ticket #29843).
        had = getattr(app_config, "models_module", None)
        app_config.models_module = had or True
        try:
            create_permissions(app_config, verbosity=0, using=using, apps=apps)
        finally:
            app_config.models_module = had


def _permission_ids(role, apps, using):
    permissions = apps.get_model("auth", "Permission").objects.using(using)
    if role == "Admins":
        return set(permissions.values_list("pk", flat=True))
    wanted = {
        (app_label, f"{verb}_{model}" if verb in ALL else verb)
        for app_label, models in ROLES[role].items()
        for model, verbs in models.items()
        for verb in verbs
    }
    found = {
        (app_label, codename): pk
        for pk, app_label, codename in permissions.filter(
            content_type__app_label__in={app for app, _ in wanted}
        ).values_list("pk", "content_type__app_label", "codename")
    }
    missing = wanted - found.keys()
    if missing:
        raise LookupError(f"Permissions missing for the {role} role: {sorted(missing)}")
    return {found[key] for key in wanted}


def create_roles(apps, schema_editor):
    using = schema_editor.connection.alias
    _create_all_permissions(apps, using)
    Group = apps.get_model("auth", "Group")
    for role in ROLES:
        group, _ = Group.objects.using(using).get_or_create(name=role)
        group.permissions.set(_permission_ids(role, apps, using))


def remove_roles(apps, schema_editor):
    using = schema_editor.connection.alias
    apps.get_model("auth", "Group").objects.using(using).filter(name__in=ROLES).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("newsroom", "0003_auditentry"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("donations", "0002_gift_staff_permissions"),
        ("subscriptions", "0005_subscriber_export_permission"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
