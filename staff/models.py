"""What staff two-factor set-up keeps: one-use set-up grants and hashed recovery codes."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device

# Recovery and set-up codes: ten characters of Crockford's base32 (50 bits), written
# in two groups of five; no I, L, O or U to misread.
CODE_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
CODE_LENGTH = 10


class CodeHasher(PBKDF2PasswordHasher):
    """PBKDF2 with fewer rounds: the codes are random, not chosen, and ten are tried at once."""

    iterations = 20_000


CODE_HASHER = CodeHasher()


def code_normalise(code: str) -> str:
    """What was typed, as stored: lower case, without the spaces and dashes between groups."""
    return "".join(code.split()).replace("-", "").lower()


def code_well_formed(code: str) -> bool:
    return len(code) == CODE_LENGTH and all(char in CODE_ALPHABET for char in code)


class EnrolmentGrant(models.Model):
    """A one-use permission to set up an authenticator app: an emailed link or an Admin's code.

    Only a hash of the link's token or of the code is kept. `device_state` is the
    account's devices when it was issued (staff.services.device_state): a grant issued
    before a device was deleted or set up opens nothing afterwards.
    """

    class Kind(models.TextChoices):
        EMAIL_LINK = "link", _("Link emailed to the account")
        ADMIN_CODE = "code", _("Code issued by an Admin")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrolment_grants"
    )
    kind = models.CharField(_("kind"), max_length=4, choices=Kind.choices)
    # A link's token: its SHA-256 (256 random bits need no salt). A code: CODE_HASHER's.
    secret_hash = models.CharField(max_length=128, db_index=True)
    device_state = models.CharField(max_length=64)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("issued at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("set-up grant")
        verbose_name_plural = _("set-up grants")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.user}"


class RecoveryCodeDevice(Device):
    """A staff member's recovery codes, as one django-otp device: each code signs in once.

    The sign-in form (newsroom.security) asks every device of the account, so a recovery
    code is accepted wherever the app's code is.
    """

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user"], name="one_recovery_code_set_per_user")
        ]
        verbose_name = _("recovery code set")
        verbose_name_plural = _("recovery code sets")

    def verify_token(self, token) -> bool:
        code = code_normalise(str(token))
        if not code_well_formed(code):  # an app's six digits: not worth ten hashes
            return False
        for stored in self.codes.filter(used_at__isnull=True):
            if CODE_HASHER.verify(code, stored.code_hash):
                # Spent once, even when two sign-ins race with the same code.
                return bool(
                    RecoveryCode.objects.filter(pk=stored.pk, used_at__isnull=True).update(
                        used_at=timezone.now()
                    )
                )
        return False


class RecoveryCode(models.Model):
    device = models.ForeignKey(RecoveryCodeDevice, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(max_length=128)
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("recovery code")
        verbose_name_plural = _("recovery codes")

    def __str__(self) -> str:
        return f"recovery code {self.pk} of {self.device.user}"


class StaffPreference(models.Model):
    """What a staff member chose for themselves: the language the admin speaks to them."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_preference"
    )
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE
    )

    class Meta:
        verbose_name = _("staff preference")
        verbose_name_plural = _("staff preferences")

    def __str__(self) -> str:
        return f"{self.user}: {self.language}"
