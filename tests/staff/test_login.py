"""Staff sign-in: two-factor gate, lockout after repeated failures, a configurable admin URL."""

from __future__ import annotations

import importlib

import pytest
from django.urls import clear_url_caches, reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.helpers import current_code, login_staff, staff_device
from tests.newsroom.factories import StaffFactory
from tests.staff.two_factor import emailed_link_path, wrong

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


@pytest.fixture
def editor():
    user = StaffFactory(username="desk")
    user.set_password(PASSWORD)
    user.save()
    return user


def sign_in(client, username="desk", password=PASSWORD, code="", ip="203.0.113.7", **extra):
    return client.post(
        reverse("admin:login"),
        {
            "username": username,
            "password": password,
            "otp_token": code,
            "next": reverse("admin:index"),
        },
        REMOTE_ADDR=ip,
        **extra,
    )


def test_staff_without_a_device_is_sent_to_set_one_up_before_any_admin_page(client, editor):
    response = sign_in(client)
    assert response.status_code == 302

    for page in (reverse("admin:index"), reverse("admin:newsroom_article_changelist")):
        response = client.get(page)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("staff_otp_setup"))


def open_setup(client, editor, mailoutbox):
    """Sign in with the password, and open the set-up link emailed to the account."""
    sign_in(client)
    client.get(reverse("staff_otp_setup"))
    assert mailoutbox[-1].to == [editor.email]
    return client.get(emailed_link_path(mailoutbox[-1]), REMOTE_ADDR="203.0.113.7")


def test_setup_page_shows_the_secret_as_text_and_a_qr_code(client, editor, mailoutbox):
    open_setup(client, editor, mailoutbox)

    page = client.get(reverse("staff_otp_setup"))

    body = page.content.decode()
    device = TOTPDevice.objects.get(user=editor)
    assert page.status_code == 200
    assert not device.confirmed
    assert "otpauth://totp/" in body
    assert device.config_url.split("secret=")[1].split("&")[0] in body.replace(" ", "")
    assert "<svg" in body and "<path" in body
    assert "http://" not in body.split("<svg", 1)[1].split("</svg>")[0].replace(
        "http://www.w3.org", ""
    )


def test_a_wrong_setup_code_is_refused_and_leaves_the_admin_closed(client, editor, mailoutbox):
    open_setup(client, editor, mailoutbox)
    device = TOTPDevice.objects.get(user=editor)

    response = client.post(reverse("staff_otp_setup"), {"token": wrong(current_code(device))})

    assert response.status_code == 400
    assert "That code is not right" in response.content.decode()
    device.refresh_from_db()
    assert not device.confirmed
    assert client.get(reverse("admin:index"))["Location"].startswith(reverse("staff_otp_setup"))


def test_the_right_setup_code_confirms_the_device_and_opens_the_admin(client, editor, mailoutbox):
    open_setup(client, editor, mailoutbox)
    device = TOTPDevice.objects.get(user=editor)

    response = client.post(reverse("staff_otp_setup"), {"token": current_code(device)})

    assert response.status_code == 200
    assert "Your authenticator app is set up." in response.content.decode()
    device.refresh_from_db()
    assert device.confirmed
    assert client.get(reverse("admin:index")).status_code == 200


def test_the_setup_page_never_adds_a_second_device(client, editor):
    staff_device(editor)
    client.force_login(editor)  # a session without a code

    response = client.get(reverse("staff_otp_setup"))

    assert response.status_code == 302
    assert TOTPDevice.objects.filter(user=editor).count() == 1


def test_staff_with_a_device_must_give_its_code_at_login(client, editor):
    staff_device(editor)

    response = sign_in(client)

    assert response.status_code == 200
    assert "Enter the six-digit code from your authenticator app." in response.content.decode()
    assert client.get(reverse("admin:index")).status_code == 302


def test_a_wrong_code_at_login_is_refused(client, editor):
    device = staff_device(editor)
    response = sign_in(client, code=wrong(current_code(device)))

    assert response.status_code == 200
    assert "That authentication code is not right." in response.content.decode()
    assert client.get(reverse("admin:index")).status_code == 302


def test_the_right_code_at_login_opens_the_admin(client, editor):
    device = staff_device(editor)

    response = sign_in(client, code=current_code(device))

    assert response.status_code == 302
    assert client.get(reverse("admin:index")).status_code == 200


def test_a_session_without_a_code_is_signed_out_when_a_device_exists(client, editor):
    staff_device(editor)
    client.force_login(editor)

    response = client.get(reverse("admin:index"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert "_auth_user_id" not in client.session


def test_the_login_helper_opens_the_admin(client):
    login_staff(client)

    assert client.get(reverse("admin:index")).status_code == 200


def test_repeated_failures_lock_the_username_out_from_that_address(client, editor, settings):
    settings.AXES_FAILURE_LIMIT = 3
    device = staff_device(editor)
    for _ in range(2):
        assert sign_in(client, password="wrong").status_code == 200

    locked = sign_in(client, password="wrong")
    again = sign_in(client, code=current_code(device))

    for response in (locked, again):
        assert response.status_code == 429
        body = response.content.decode()
        assert "Sign-in locked for now" in body
        assert "30 minutes" in body
    assert client.get(reverse("admin:index")).status_code == 302


def test_lockout_is_per_username_and_address(client, editor, settings):
    settings.AXES_FAILURE_LIMIT = 2
    device = staff_device(editor)
    for _ in range(2):
        sign_in(client, password="wrong", ip="203.0.113.7")

    assert sign_in(client, code=current_code(device), ip="203.0.113.7").status_code == 429
    assert sign_in(client, code=current_code(device), ip="198.51.100.4").status_code == 302


def test_wrong_codes_count_towards_the_lockout(client, editor, settings):
    settings.AXES_FAILURE_LIMIT = 2
    device = staff_device(editor)
    sign_in(client, code=wrong(current_code(device)))
    response = sign_in(client, code=wrong(current_code(device)))

    assert response.status_code == 429


def test_lockout_uses_the_address_our_proxy_reports(client, editor, settings):
    """Behind one proxy, the reader's address is the last X-Forwarded-For entry, not the proxy's."""
    settings.AXES_FAILURE_LIMIT = 2
    settings.CLIENT_IP_PROXY_HOPS = 1
    device = staff_device(editor)
    for _ in range(2):
        sign_in(
            client, password="wrong", ip="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.7"
        )

    # Another reader behind the same proxy is not locked out...
    other = sign_in(
        client, code=current_code(device), ip="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.4"
    )
    assert other.status_code == 302
    client.logout()
    # ...and a forged first entry does not free the locked-out one.
    forged = sign_in(
        client,
        code=current_code(device),
        ip="10.0.0.2",
        HTTP_X_FORWARDED_FOR="9.9.9.9, 203.0.113.7",
    )
    assert forged.status_code == 429


@pytest.fixture
def admin_at(settings):
    """Mount the admin at another path for one test."""
    original = settings.ADMIN_URL

    def mount(path: str) -> None:
        settings.ADMIN_URL = path
        clear_url_caches()
        importlib.reload(importlib.import_module("newsroom.urls"))

    yield mount
    mount(original)


def test_the_admin_lives_at_the_configured_url(client, admin_at):
    admin_at("back-office-7f3a/")
    login_staff(client)

    assert reverse("admin:index") == "/back-office-7f3a/"
    assert client.get("/back-office-7f3a/").status_code == 200
    assert client.get("/admin/").status_code == 404
    robots = client.get("/robots.txt").content.decode()
    assert "back-office-7f3a" not in robots


def test_the_gate_and_setup_page_follow_the_configured_url(client, editor, admin_at):
    admin_at("back-office-7f3a/")
    client.force_login(editor)

    response = client.get("/back-office-7f3a/")

    assert response.status_code == 302
    assert response["Location"].startswith("/back-office-7f3a/two-factor/")


def test_signing_in_needs_no_redis_and_the_lockout_still_holds(
    client, editor, settings, redis_cache_proxy
):
    # Failed attempts are counted in the database (django-axes), not in the cache.
    device = staff_device(editor)
    redis_cache_proxy.mode = "refuse"

    assert sign_in(client, code=current_code(device)).status_code == 302
    assert client.get(reverse("admin:index")).status_code == 200

    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, password="wrong")
    assert sign_in(client, code=current_code(device)).status_code == 429
