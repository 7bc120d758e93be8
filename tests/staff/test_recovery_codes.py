"""Recovery codes: shown once when the app is set up, kept hashed, each signs in once."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from newsroom.models import AuditEntry
from staff.models import RecoveryCode
from tests.helpers import current_code, login_staff
from tests.newsroom.factories import StaffFactory
from tests.staff.two_factor import (
    PASSWORD,
    emailed_link_path,
    password_sign_in,
    recovery_codes_from,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def enrolled(client, mailoutbox):
    """A staff member who just set up their app: (user, the codes page they were shown)."""
    user = StaffFactory(username="desk")
    user.set_password(PASSWORD)
    user.save()
    password_sign_in(client, "desk")
    client.get(reverse("staff_otp_setup"))
    client.get(emailed_link_path(mailoutbox[0]))
    device = TOTPDevice.objects.get(user=user)
    page = client.post(reverse("staff_otp_setup"), {"token": current_code(device)})
    return user, page


def test_setting_up_the_app_shows_ten_recovery_codes_once(client, enrolled):
    _user, page = enrolled

    codes = recovery_codes_from(page)

    assert len(set(codes)) == 10
    assert "They are shown only now" in page.content.decode()
    assert 'download="recovery-codes.txt"' in page.content.decode()
    later = client.get(reverse("staff_recovery_codes")).content.decode()
    assert "You have 10 unused recovery codes." in later
    assert not any(code in later for code in codes)


def test_recovery_codes_are_stored_hashed(enrolled):
    user, page = enrolled
    codes = recovery_codes_from(page)

    stored = list(
        RecoveryCode.objects.filter(device__user=user).values_list("code_hash", flat=True)
    )

    assert len(stored) == 10
    assert all(value.startswith("pbkdf2_sha256$") for value in stored)
    for code in codes:
        assert not any(code in value or code.replace("-", "") in value for value in stored)


def test_a_recovery_code_signs_in_once_in_place_of_the_app_code(enrolled):
    user, page = enrolled
    code = recovery_codes_from(page)[3]

    browser = Client()
    response = password_sign_in(browser, "desk", code=code.upper().replace("-", " "))

    assert response.status_code == 302
    assert browser.get(reverse("admin:index")).status_code == 200
    entry = AuditEntry.objects.get(action=AuditEntry.Action.RECOVERY_CODE_USED)
    assert entry.object_id == str(user.pk) and entry.ip_address == "203.0.113.7"
    assert entry.details == {"codes_left": 9}

    again = password_sign_in(Client(), "desk", code=code)
    assert again.status_code == 200
    assert "That authentication code is not right." in again.content.decode()


def test_a_wrong_recovery_code_counts_towards_the_lockout(enrolled, settings):
    settings.AXES_FAILURE_LIMIT = 2

    answers = [password_sign_in(Client(), "desk", code="zzzzz-zzzzz") for _ in range(2)]

    assert [answer.status_code for answer in answers] == [200, 429]


def test_new_recovery_codes_replace_the_old_ones(enrolled):
    user, page = enrolled
    old = recovery_codes_from(page)
    browser = Client()
    login_staff(browser, user)

    fresh = recovery_codes_from(browser.post(reverse("staff_recovery_codes")))

    assert len(fresh) == 10 and not set(fresh) & set(old)
    assert password_sign_in(Client(), "desk", code=old[0]).status_code == 200
    assert password_sign_in(Client(), "desk", code=fresh[0]).status_code == 302
    assert AuditEntry.objects.filter(action=AuditEntry.Action.RECOVERY_CODES_NEW).count() == 1


def test_a_session_without_a_second_factor_cannot_make_recovery_codes(client):
    user = StaffFactory(username="newcomer")
    client.force_login(user)

    response = client.post(reverse("staff_recovery_codes"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("staff_otp_setup"))
    assert not RecoveryCode.objects.exists()


def test_every_admin_page_links_to_the_recovery_codes(otp_admin_client):
    page = otp_admin_client.get(reverse("admin:newsroom_article_changelist")).content.decode()

    assert f'<a href="{reverse("staff_recovery_codes")}">Recovery codes</a>' in page
