"""The audit trail of sensitive staff acts: refunds, exports, deletions, role changes.

`audit_record` is called inside the transaction of the act it records (a service or an
admin action opens it), so the entry and the act are committed or rolled back together.
Changes to users' roles and flags can be made by any code that saves a user, so they
are recorded from model signals; the admin says who is acting (`acting`) around the
views that make such changes, and anything else (a shell, `createsuperuser`) is
recorded without an actor.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import models
from django.db.models.signals import m2m_changed, post_save, pre_save
from django.http import HttpRequest

from newsroom.models import AuditEntry
from newsroom.security import client_ip, email_hash

Action = AuditEntry.Action


@dataclass(frozen=True)
class Actor:
    user: models.Model | None
    ip_address: str | None


_acting: ContextVar[Actor | None] = ContextVar("audit_acting", default=None)


def request_actor(request: HttpRequest) -> Actor:
    """Who is acting in `request`: the signed-in user (if any) and the client's address."""
    try:
        ip = str(ipaddress.ip_address(client_ip(request)))
    except ValueError:
        ip = None
    user = getattr(request, "user", None)
    return Actor(user=user if user is not None and user.is_authenticated else None, ip_address=ip)


@contextlib.contextmanager
def acting(request: HttpRequest) -> Iterator[Actor]:
    """Attribute the role and flag changes made inside the block to the request's user."""
    actor = request_actor(request)
    token = _acting.set(actor)
    try:
        yield actor
    finally:
        _acting.reset(token)


def audit_record(
    *,
    action: str,
    actor: Actor | None = None,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    details: dict | None = None,
) -> AuditEntry:
    """Write one entry; call it inside the transaction of the act it records."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)
    user = actor.user if actor else None
    return AuditEntry.objects.create(
        action=action,
        actor=user,
        actor_name=user.get_username() if user else "",
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr[:200],
        details=details or {},
        ip_address=actor.ip_address if actor else None,
    )


# --- role and flag changes, from signals ---------------------------------------------

User = get_user_model()
FLAGS = ("is_staff", "is_superuser", "is_active")


def _names(model, pks) -> list[str]:
    if model is Permission:
        rows = model.objects.filter(pk__in=pks).values_list("content_type__app_label", "codename")
        return sorted(f"{app}.{codename}" for app, codename in rows)
    return sorted(str(obj) for obj in model.objects.filter(pk__in=pks))


def _user_groups_changed(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
    if action == "pre_clear":
        # The clear's rows are gone by post_clear: remember them now.
        related = instance.groups if not reverse else instance.user_set
        instance._audit_cleared = set(related.values_list("pk", flat=True))
        return
    if action not in {"post_add", "post_remove", "post_clear"}:
        return
    if action == "post_clear":
        pk_set = getattr(instance, "_audit_cleared", set())
    if not pk_set:
        return
    change = "added" if action == "post_add" else "removed"
    actor = _acting.get()
    if not reverse:  # user.groups.add(...): one user, some groups
        users, groups = [instance], _names(Group, pk_set)
    else:  # group.user_set.add(...): one group, some users
        users, groups = list(User.objects.filter(pk__in=pk_set)), [str(instance)]
    for user in users:
        audit_record(action=Action.USER_GROUPS, actor=actor, obj=user, details={change: groups})


def _group_permissions_changed(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
    if reverse or action not in {"post_add", "post_remove"} or not pk_set:
        return
    change = "added" if action == "post_add" else "removed"
    audit_record(
        action=Action.GROUP_PERMISSIONS,
        actor=_acting.get(),
        obj=instance,
        details={change: _names(Permission, pk_set)},
    )


def _user_flags_before(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    if raw or (update_fields is not None and not set(update_fields) & set(FLAGS)):
        return  # e.g. the login's last_login update: no flag can change
    before = None
    if instance.pk is not None:
        before = User.objects.filter(pk=instance.pk).values(*FLAGS).first()
    instance._audit_flags_before = before


def _user_flags_after(sender, instance, created, raw=False, **kwargs) -> None:
    if raw or not hasattr(instance, "_audit_flags_before"):
        return
    before = instance._audit_flags_before
    del instance._audit_flags_before
    if before is None:  # a new account: recorded when it starts with staff powers
        changes = {flag: [None, getattr(instance, flag)] for flag in ("is_staff", "is_superuser")}
        if not (instance.is_staff or instance.is_superuser):
            return
    else:
        changes = {
            flag: [before[flag], getattr(instance, flag)]
            for flag in FLAGS
            if before[flag] != getattr(instance, flag)
        }
        if not changes:
            return
    audit_record(
        action=Action.USER_FLAGS,
        actor=_acting.get(),
        obj=instance,
        details={"changed": changes, "created": before is None},
    )


def connect_signals() -> None:
    m2m_changed.connect(
        _user_groups_changed, sender=User.groups.through, dispatch_uid="audit_user_groups"
    )
    m2m_changed.connect(
        _group_permissions_changed,
        sender=Group.permissions.through,
        dispatch_uid="audit_group_perms",
    )
    pre_save.connect(_user_flags_before, sender=User, dispatch_uid="audit_user_flags_before")
    post_save.connect(_user_flags_after, sender=User, dispatch_uid="audit_user_flags_after")


def subscriber_deletion_record(*, subscriber, actor: Actor | None, by: str) -> AuditEntry:
    """Record that a reader's data is being deleted, naming them only by id and hash.

    The address itself is not kept: deletion is the reader asking to be forgotten. The
    hash is the one the suppression list already holds.
    """
    return audit_record(
        action=Action.SUBSCRIBER_DELETE,
        actor=actor,
        obj=subscriber,
        object_repr=f"subscriber {subscriber.pk}",
        details={"by": by, "email_sha256": email_hash(subscriber.email)},
    )
