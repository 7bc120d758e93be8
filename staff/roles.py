"""Staff roles as Django groups: what each desk may do in the admin.

The definition lives here, not in the admin. The data migration
`newsroom.0004_staff_roles` creates the groups (from its own frozen copy), and after
every `migrate` (post_migrate, see StaffConfig.ready) each group's permissions are set
to this definition again, so a model added later reaches the roles that own its app
(Admins get every permission there is). Change a role here; a change made to the group
in the admin is undone by the next migrate.
"""

from __future__ import annotations

from django.apps import apps as global_apps
from django.utils.translation import pgettext_lazy

EDITORS = "Editors"
DEVELOPMENT = "Development"
AUDIENCE = "Audience"
ADMINS = "Admins"

# The groups' names are data, the same whatever the language of whoever made them;
# each staff member reads them in their own language (role_label).
ROLE_LABELS = {
    EDITORS: pgettext_lazy("staff role", "Editors"),
    DEVELOPMENT: pgettext_lazy("staff role", "Development"),
    AUDIENCE: pgettext_lazy("staff role", "Audience"),
    ADMINS: pgettext_lazy("staff role", "Admins"),
}

ALL = ("add", "change", "delete", "view")

# app label -> model -> the permission codenames' verbs (or full custom codenames).
ROLES: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    EDITORS: {
        "newsroom": {"article": ALL, "category": ALL, "topic": ALL, "author": ALL},
    },
    DEVELOPMENT: {
        "donations": {
            "appeal": ALL,
            "gift": ("view", "refund_gift", "export_gifts", "export_donors"),
            "recurringplan": ("view",),
            "givingstatement": ("view",),
            "paymentfailurenotice": ("view",),
            "stripeevent": ("view",),
        },
    },
    AUDIENCE: {
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
    ADMINS: {},  # every permission, see role_permission_ids
}

ROLE_NAMES = (EDITORS, DEVELOPMENT, AUDIENCE, ADMINS)
ROLES_MIGRATION = ("newsroom", "0004_staff_roles")


def role_label(name: str) -> str:
    """A group's name in the active language: a role's translated, any other group's as named."""
    return str(ROLE_LABELS.get(name, name))


def _codename(verb: str, model: str) -> str:
    return f"{verb}_{model}" if verb in ALL else verb


def role_permission_ids(role: str, *, apps=global_apps, using: str = "default") -> set[int]:
    """The ids of the permissions `role` is given (Admins: all of them)."""
    permissions = apps.get_model("auth", "Permission").objects.using(using)
    if role == ADMINS:
        return set(permissions.values_list("pk", flat=True))
    wanted = {
        (app_label, _codename(verb, model))
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


def create_all_permissions(*, apps=global_apps, using: str = "default") -> None:
    """Create every model's content type and permissions now, not at the end of migrate."""
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


def roles_sync(*, apps=global_apps, using: str = "default") -> None:
    """Create the role groups if needed and give each exactly its permissions."""
    create_all_permissions(apps=apps, using=using)
    Group = apps.get_model("auth", "Group")
    for role in ROLE_NAMES:
        group, _ = Group.objects.using(using).get_or_create(name=role)
        group.permissions.set(role_permission_ids(role, apps=apps, using=using))


def roles_remove(*, apps=global_apps, using: str = "default") -> None:
    """Delete the role groups (members lose the roles, not their accounts)."""
    apps.get_model("auth", "Group").objects.using(using).filter(name__in=ROLE_NAMES).delete()
