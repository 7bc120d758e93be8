"""Setting up two-factor sign-in through a second channel, and the recovery codes.

A password alone never reaches an authenticator secret: a staff member without an app
proves they also hold the account's inbox (a one-use link, `enrol_link_send`) or met an
Admin (a one-use code, `enrol_code_issue`). Either opens the set-up of one pending
device, in the session that presents it, for that account only.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from newsroom import mail
from newsroom.audit import Action, Actor, audit_record
from newsroom.links import absolute
from staff.models import (
    CODE_ALPHABET,
    CODE_HASHER,
    CODE_LENGTH,
    EnrolmentGrant,
    RecoveryCode,
    RecoveryCodeDevice,
    StaffPreference,
    code_normalise,
)

DEVICE_NAME = "Authenticator app"
RECOVERY_CODE_COUNT = 10


class EnrolmentRefused(Exception):
    """A set-up link or code that cannot be used; `guess` when it counts as a failed attempt."""

    def __init__(self, message: str, *, guess: bool = False):
        super().__init__(message)
        self.guess = guess


def code_make() -> str:
    """A new random code, written as two groups of five: `k3f9x-7m2qp`."""
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{code[:5]}-{code[5:]}"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def device_state(user) -> str:
    """A fingerprint of the account's authenticator devices: changes when one is added,
    confirmed, deleted or replaced (primary keys are never reused, keys are random)."""
    rows = TOTPDevice.objects.filter(user=user).order_by("pk").values_list("pk", "key", "confirmed")
    return hashlib.sha256(repr(list(rows)).encode()).hexdigest()


def pending_device(user) -> TOTPDevice:
    """The unconfirmed device a set-up would confirm, created (its secret unseen) if needed."""
    return TOTPDevice.objects.filter(user=user, confirmed=False).order_by(
        "pk"
    ).first() or TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)


def email_masked(email: str) -> str:
    """`desk@newsroom.example` -> `d***@newsroom.example`: enough to recognise, not to learn."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def _grant_create(*, user, kind: str, secret_hash: str, lifetime: timedelta, issued_by=None):
    pending_device(user)  # the state a grant is bound to includes the device it will confirm
    now = timezone.now()
    return EnrolmentGrant.objects.create(
        user=user,
        kind=kind,
        secret_hash=secret_hash,
        device_state=device_state(user),
        issued_by=issued_by,
        created_at=now,
        expires_at=now + lifetime,
    )


def enrol_link_send(*, user) -> bool:
    """Email the account a one-use link that opens the app's set-up; False if nothing left."""
    if not user.email:
        return False
    token = secrets.token_urlsafe(32)
    minutes = settings.STAFF_ENROL_LINK_MINUTES
    with transaction.atomic():
        _grant_create(
            user=user,
            kind=EnrolmentGrant.Kind.EMAIL_LINK,
            secret_hash=_token_hash(token),
            lifetime=timedelta(minutes=minutes),
        )
    # In the language the admin speaks to them, else the one this request speaks.
    language = staff_language(user=user) or translation.get_language()
    with translation.override(language):
        return mail.send(
            template="staff/emails/enrol_link",
            to=user.email,
            from_email=settings.SERVER_EMAIL,  # the site's own address, not a newsletter's
            context={
                "user": user,
                "link": absolute(reverse("staff_enrol_open", kwargs={"token": token})),
                "minutes": minutes,
            },
        )


def enrol_code_issue(*, user, actor: Actor) -> str:
    """A one-use set-up code for `user`, to hand over in person; returned once, kept hashed."""
    code = code_make()
    with transaction.atomic():
        grant = _grant_create(
            user=user,
            kind=EnrolmentGrant.Kind.ADMIN_CODE,
            secret_hash=make_password(code_normalise(code), hasher=CODE_HASHER),
            lifetime=timedelta(hours=settings.STAFF_ENROL_CODE_HOURS),
            issued_by=actor.user,
        )
        audit_record(
            action=Action.ENROL_CODE_ISSUED,
            actor=actor,
            obj=user,
            details={"grant": grant.pk, "expires_at": grant.expires_at.isoformat()},
        )
    return code


def _grant_spend(grant: EnrolmentGrant, *, user) -> TOTPDevice:
    if grant.user_id != user.pk:
        raise EnrolmentRefused(
            _(
                "This set-up link belongs to another account. Open it signed in as the person "
                "it was sent to."
            ),
            guess=True,
        )
    if grant.used_at is not None:
        raise EnrolmentRefused(
            _("This set-up link or code has already been used. Ask for a new one below.")
        )
    if grant.expires_at <= timezone.now():
        raise EnrolmentRefused(_("This set-up link or code has expired. Ask for a new one below."))
    if grant.device_state != device_state(user):
        raise EnrolmentRefused(
            _(
                "This set-up link or code no longer works: the account's two-factor devices "
                "changed since it was made. Ask for a new one below."
            )
        )
    # Spent once, even when the link is opened twice at the same moment.
    if not EnrolmentGrant.objects.filter(pk=grant.pk, used_at__isnull=True).update(
        used_at=timezone.now()
    ):
        raise EnrolmentRefused(
            _("This set-up link or code has already been used. Ask for a new one below.")
        )
    return pending_device(user)


def enrol_link_open(*, user, token: str) -> TOTPDevice:
    """Spend an emailed link for `user`: the device whose set-up it opens, or EnrolmentRefused."""
    grant = EnrolmentGrant.objects.filter(
        kind=EnrolmentGrant.Kind.EMAIL_LINK, secret_hash=_token_hash(token)
    ).first()
    if grant is None:
        raise EnrolmentRefused(
            _("This set-up link is not valid. Use the newest link we emailed you, whole."),
            guess=True,
        )
    return _grant_spend(grant, user=user)


def enrol_code_redeem(*, user, code: str) -> TOTPDevice:
    """Spend an Admin's code for `user`: the device whose set-up it opens, or EnrolmentRefused."""
    typed = code_normalise(code)
    for grant in EnrolmentGrant.objects.filter(
        user=user, kind=EnrolmentGrant.Kind.ADMIN_CODE, used_at__isnull=True
    ):
        if CODE_HASHER.verify(typed, grant.secret_hash):
            return _grant_spend(grant, user=user)
    raise EnrolmentRefused(
        _("That code is not right. Check it with the Admin who gave it to you."), guess=True
    )


def enrol_confirm(*, user, device: TOTPDevice, token: str, actor: Actor) -> list[str] | None:
    """Confirm the pending device with a code from the app; its recovery codes, or None."""
    if device.confirmed or device.user_id != user.pk or not device.verify_token(token):
        return None
    with transaction.atomic():
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        # Links and codes still out there open nothing now.
        EnrolmentGrant.objects.filter(user=user, used_at__isnull=True).update(
            used_at=timezone.now()
        )
        audit_record(action=Action.TWO_FACTOR_SET_UP, actor=actor, obj=user)
        return _recovery_codes_replace(user=user)


def _recovery_codes_replace(*, user) -> list[str]:
    device, _ = RecoveryCodeDevice.objects.get_or_create(
        user=user, defaults={"name": "Recovery codes", "confirmed": True}
    )
    device.codes.all().delete()
    codes = [code_make() for _ in range(RECOVERY_CODE_COUNT)]
    RecoveryCode.objects.bulk_create(
        RecoveryCode(device=device, code_hash=make_password(code_normalise(c), hasher=CODE_HASHER))
        for c in codes
    )
    return codes


def recovery_codes_regenerate(*, user, actor: Actor) -> list[str]:
    """New recovery codes for `user` (the old ones stop working), returned once."""
    with transaction.atomic():
        codes = _recovery_codes_replace(user=user)
        audit_record(action=Action.RECOVERY_CODES_NEW, actor=actor, obj=user)
    return codes


def recovery_codes_left(*, user) -> int:
    return RecoveryCode.objects.filter(device__user=user, used_at__isnull=True).count()


def recovery_code_sign_in_record(*, user, actor: Actor) -> None:
    """Write to the audit trail that `user` signed in with a recovery code."""
    audit_record(
        action=Action.RECOVERY_CODE_USED,
        actor=actor,
        obj=user,
        details={"codes_left": recovery_codes_left(user=user)},
    )


def staff_language(*, user) -> str | None:
    """The language `user` chose for the admin, or None before they chose one."""
    return StaffPreference.objects.filter(user=user).values_list("language", flat=True).first()


def staff_language_set(*, user, language: str) -> StaffPreference:
    """Save the language the admin speaks to `user`; a language the site lacks is refused."""
    if language not in dict(settings.LANGUAGES):
        raise ValueError(f"{language!r} is not one of the site's languages.")
    preference, _ = StaffPreference.objects.update_or_create(
        user=user, defaults={"language": language}
    )
    return preference
