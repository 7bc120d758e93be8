"""Signing staff in past the two-factor gate, for tests of admin pages.

Every admin page needs a staff session verified by a TOTP device
(newsroom.security.StaffTwoFactorMiddleware); `force_login` alone is sent to the
setup page. Use `login_staff(client, user)` or the `otp_admin_client` fixture.
"""

from __future__ import annotations

from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice


def staff_device(user) -> TOTPDevice:
    """The user's confirmed authenticator device, created if they have none."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)


def current_code(device: TOTPDevice) -> str:
    """The six digits the device's authenticator app shows now (RFC 6238)."""
    code = totp(
        device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift
    )
    return f"{code:0{device.digits}d}"


def login_staff(client: Client, user=None):
    """Sign `user` (a new superuser by default) in on `client`, verified by a TOTP device."""
    if user is None:
        from tests.newsroom.factories import StaffFactory

        user = StaffFactory()
    device = staff_device(user)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return user
