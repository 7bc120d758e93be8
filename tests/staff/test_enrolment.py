"""Setting up the authenticator app takes a second channel: an emailed link or an Admin's code."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import URLPattern, reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from newsroom.models import AuditEntry
from staff import urls as staff_urls
from staff.models import EnrolmentGrant
from tests.helpers import current_code, staff_device
from tests.newsroom.factories import StaffFactory
from tests.staff.two_factor import (
    PASSWORD,
    admin_code_from,
    emailed_link_path,
    password_sign_in,
    wrong,
)

pytestmark = pytest.mark.django_db

IP = "203.0.113.7"


@pytest.fixture
def newcomer():
    """A staff member who has never set up an authenticator app."""
    user = StaffFactory(username="newcomer", email="newcomer@newsroom.example")
    user.set_password(PASSWORD)
    user.save()
    return user


def landing(client, user):
    """Sign in with the password only and open the page it lands on (which emails the link)."""
    password_sign_in(client, user.get_username())
    return client.get(reverse("staff_otp_setup"), REMOTE_ADDR=IP)


def secrets_of(user) -> list[str]:
    """Every authenticator secret the account has, as an app would be given it."""
    return [
        base64.b32encode(device.bin_key).decode() for device in TOTPDevice.objects.filter(user=user)
    ]


def assert_no_secret(response, user) -> None:
    body = response.content.decode().replace(" ", "")
    assert "otpauth://" not in body
    assert "QR code" not in body
    for secret in secrets_of(user):
        assert secret not in body and secret.lower() not in body.lower()


def staff_pages() -> list[str]:
    """Every URL the staff app serves (a made-up token where the route takes one)."""
    return [
        reverse(pattern.name, kwargs={name: "x" * 43 for name in pattern.pattern.converters})
        for pattern in staff_urls.urlpatterns
        if isinstance(pattern, URLPattern)
    ]


def test_a_password_only_session_sees_no_secret_on_any_staff_page(client, newcomer, mailoutbox):
    landing(client, newcomer)
    assert TOTPDevice.objects.filter(user=newcomer).exists()  # the pending one, unseen

    pages = [*staff_pages(), reverse("admin:index"), reverse("admin:auth_user_changelist")]
    for page in pages:
        for method in (client.get, client.post):
            response = method(page, follow=True, REMOTE_ADDR=IP)
            assert_no_secret(response, newcomer)
    assert not newcomer.totpdevice_set.filter(confirmed=True).exists()


def test_signing_in_without_an_app_emails_a_link_and_says_so_without_the_address(
    client, newcomer, mailoutbox, settings
):
    settings.SERVER_EMAIL = "Newsroom site <site@newsroom.example>"
    page = landing(client, newcomer)

    body = page.content.decode()
    assert page.status_code == 200
    assert "We sent a link to your email address" in body
    assert "n***@newsroom.example" in body
    assert "newcomer@newsroom.example" not in body
    [email] = mailoutbox
    assert email.to == ["newcomer@newsroom.example"]
    assert email.from_email == settings.SERVER_EMAIL
    assert "in the same browser where you signed in" in email.body
    assert "30 minutes" in email.body
    assert "two-factor/link/" in email.alternatives[0][0]
    # Reloading the page sends nothing more.
    client.get(reverse("staff_otp_setup"), REMOTE_ADDR=IP)
    assert len(mailoutbox) == 1


def test_the_emailed_link_opens_the_set_up_once(client, newcomer, mailoutbox):
    landing(client, newcomer)
    link = emailed_link_path(mailoutbox[0])

    opened = client.get(link, REMOTE_ADDR=IP)
    page = client.get(reverse("staff_otp_setup"), REMOTE_ADDR=IP)

    assert opened.status_code == 302
    body = page.content.decode()
    assert "otpauth://totp/" in body
    assert secrets_of(newcomer)[0] in body.replace(" ", "")
    assert "newcomer" not in link

    again = Client()
    password_sign_in(again, "newcomer")
    refused = again.get(link, REMOTE_ADDR=IP)
    assert refused.status_code == 400
    assert "This set-up link or code has already been used." in refused.content.decode()
    assert_no_secret(again.get(reverse("staff_otp_setup"), REMOTE_ADDR=IP), newcomer)


def test_an_expired_link_is_refused(client, newcomer, mailoutbox, settings):
    settings.STAFF_ENROL_LINK_MINUTES = 30
    landing(client, newcomer)
    link = emailed_link_path(mailoutbox[0])

    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        refused = client.get(link, REMOTE_ADDR=IP)
        page = client.get(reverse("staff_otp_setup"), REMOTE_ADDR=IP)

    assert refused.status_code == 400
    assert "This set-up link or code has expired." in refused.content.decode()
    assert_no_secret(refused, newcomer)
    assert_no_secret(page, newcomer)


def test_a_link_for_another_account_is_refused_and_still_works_for_its_own(
    client, newcomer, mailoutbox
):
    landing(client, newcomer)
    link = emailed_link_path(mailoutbox[0])
    other = StaffFactory(username="other")
    other.set_password(PASSWORD)
    other.save()
    intruder = Client()
    password_sign_in(intruder, "other")

    refused = intruder.get(link, REMOTE_ADDR=IP)

    assert refused.status_code == 400
    assert "belongs to another account" in refused.content.decode()
    assert_no_secret(intruder.get(reverse("staff_otp_setup"), REMOTE_ADDR=IP), newcomer)
    assert client.get(link, REMOTE_ADDR=IP).status_code == 302


def test_a_link_made_before_the_devices_changed_is_refused(client, newcomer, mailoutbox):
    landing(client, newcomer)
    link = emailed_link_path(mailoutbox[0])
    # An Admin deletes the account's devices, and a new set-up begins elsewhere.
    TOTPDevice.objects.filter(user=newcomer).delete()
    TOTPDevice.objects.create(user=newcomer, confirmed=False)

    refused = client.get(link, REMOTE_ADDR=IP)

    assert refused.status_code == 400
    assert "two-factor devices changed since it was made" in refused.content.decode()
    assert_no_secret(client.get(reverse("staff_otp_setup"), REMOTE_ADDR=IP), newcomer)


def test_setting_up_spends_every_link_still_out(client, newcomer, mailoutbox):
    landing(client, newcomer)
    client.post(reverse("staff_enrol_send"), REMOTE_ADDR=IP)
    first, second = (emailed_link_path(message) for message in mailoutbox)
    client.get(second, REMOTE_ADDR=IP)
    device = TOTPDevice.objects.get(user=newcomer)
    client.post(reverse("staff_otp_setup"), {"token": current_code(device)}, REMOTE_ADDR=IP)
    # An Admin then deletes the app: the old link must not open a new set-up.
    device.delete()
    replay = Client()
    password_sign_in(replay, "newcomer")

    refused = replay.get(first, REMOTE_ADDR=IP)

    assert refused.status_code == 400
    assert_no_secret(refused, newcomer)


def test_the_link_is_sent_again_a_few_times_only(client, newcomer, mailoutbox, settings):
    settings.STAFF_ENROL_LINK_RATE = "3/15m"
    landing(client, newcomer)

    for _ in range(3):
        response = client.post(reverse("staff_enrol_send"), follow=True, REMOTE_ADDR=IP)

    assert len(mailoutbox) == 3
    assert "You asked for several links in a short time." in response.content.decode()


def test_an_account_without_an_email_address_is_told_to_ask_an_admin(client, newcomer):
    newcomer.email = ""
    newcomer.save()

    page = landing(client, newcomer)

    assert "Ask an Admin for a set-up code." in page.content.decode()


def issue_code(admin_client, *users):
    return admin_client.post(
        reverse("admin:auth_user_changelist"),
        {"action": "enrol_code_issue", "_selected_action": [user.pk for user in users]},
    )


def test_an_admin_issued_code_opens_the_set_up_once(client, newcomer, otp_admin_client):
    issued = issue_code(otp_admin_client, newcomer)
    code = admin_code_from(issued)
    assert "no-store" in issued["Cache-Control"]
    landing(client, newcomer)

    opened = client.post(reverse("staff_enrol_code"), {"code": code.upper()}, REMOTE_ADDR=IP)
    page = client.get(reverse("staff_otp_setup"), REMOTE_ADDR=IP)

    assert opened.status_code == 302
    assert "otpauth://totp/" in page.content.decode()
    again = Client()
    password_sign_in(again, "newcomer")
    refused = again.post(reverse("staff_enrol_code"), {"code": code}, REMOTE_ADDR=IP)
    assert refused.status_code == 400
    assert_no_secret(refused, newcomer)


def test_an_admin_issued_code_is_stored_hashed_and_audited(newcomer, otp_admin_client):
    code = admin_code_from(issue_code(otp_admin_client, newcomer))

    grant = EnrolmentGrant.objects.get(user=newcomer, kind=EnrolmentGrant.Kind.ADMIN_CODE)
    assert grant.secret_hash.startswith("pbkdf2_sha256$")
    assert code.replace("-", "") not in grant.secret_hash and code not in grant.secret_hash
    assert grant.issued_by == otp_admin_client.staff_user
    entry = AuditEntry.objects.get(action=AuditEntry.Action.ENROL_CODE_ISSUED)
    assert entry.actor == otp_admin_client.staff_user and entry.object_id == str(newcomer.pk)


def test_no_code_is_issued_to_an_account_that_has_an_app(newcomer, otp_admin_client):
    staff_device(newcomer)

    response = issue_code(otp_admin_client, newcomer)

    assert response.status_code == 302
    assert not EnrolmentGrant.objects.exists()


def test_an_admin_code_works_for_its_own_account_only(client, newcomer, otp_admin_client):
    code = admin_code_from(issue_code(otp_admin_client, newcomer))
    other = StaffFactory(username="other")
    other.set_password(PASSWORD)
    other.save()
    landing(client, other)

    refused = client.post(reverse("staff_enrol_code"), {"code": code}, REMOTE_ADDR=IP)

    assert refused.status_code == 400
    assert "That code is not right." in refused.content.decode()


def test_wrong_set_up_codes_lock_the_account_out_of_set_up(
    client, newcomer, mailoutbox, otp_admin_client, settings
):
    settings.AXES_FAILURE_LIMIT = 3
    code = admin_code_from(issue_code(otp_admin_client, newcomer))
    landing(client, newcomer)
    link = emailed_link_path(mailoutbox[0])

    answers = [
        client.post(reverse("staff_enrol_code"), {"code": "aaaaa-aaaaa"}, REMOTE_ADDR=IP)
        for _ in range(3)
    ]

    assert [answer.status_code for answer in answers] == [400, 400, 429]
    # Locked out: neither the right code nor the emailed link opens the set-up now...
    for response in (
        client.post(reverse("staff_enrol_code"), {"code": code}, REMOTE_ADDR=IP),
        client.get(link, REMOTE_ADDR=IP),
        client.get(reverse("staff_otp_setup"), REMOTE_ADDR=IP),
    ):
        assert response.status_code == 429
        assert "Sign-in locked for now" in response.content.decode()
        assert_no_secret(response, newcomer)
    # ...nor does signing in again.
    assert password_sign_in(Client(), "newcomer").status_code == 429


def test_wrong_app_codes_at_set_up_count_towards_the_lockout(
    client, newcomer, mailoutbox, settings
):
    settings.AXES_FAILURE_LIMIT = 2
    landing(client, newcomer)
    client.get(emailed_link_path(mailoutbox[0]), REMOTE_ADDR=IP)
    device = TOTPDevice.objects.get(user=newcomer)

    first = client.post(
        reverse("staff_otp_setup"), {"token": wrong(current_code(device))}, REMOTE_ADDR=IP
    )
    second = client.post(
        reverse("staff_otp_setup"), {"token": wrong(current_code(device))}, REMOTE_ADDR=IP
    )
    right = client.post(reverse("staff_otp_setup"), {"token": current_code(device)}, REMOTE_ADDR=IP)

    assert (first.status_code, second.status_code, right.status_code) == (400, 429, 429)
    device.refresh_from_db()
    assert not device.confirmed


def test_a_made_up_link_counts_towards_the_lockout(client, newcomer, settings):
    settings.AXES_FAILURE_LIMIT = 2
    landing(client, newcomer)
    made_up = reverse("staff_enrol_open", kwargs={"token": "A" * 43})

    answers = [client.get(made_up, REMOTE_ADDR=IP).status_code for _ in range(2)]

    assert answers == [400, 429]


def test_a_link_opened_before_signing_in_opens_the_set_up_after_it(client, newcomer, mailoutbox):
    landing(Client(), newcomer)  # signed in elsewhere, where the link was sent from
    link = emailed_link_path(mailoutbox[0])

    to_login = client.get(link, REMOTE_ADDR=IP)
    assert to_login.status_code == 302 and to_login["Location"].startswith(reverse("admin:login"))
    signed_in = client.post(
        to_login["Location"],
        {"username": "newcomer", "password": PASSWORD, "otp_token": "", "next": link},
        REMOTE_ADDR=IP,
    )
    assert signed_in["Location"] == link
    opened = client.get(link, REMOTE_ADDR=IP)

    assert opened.status_code == 302
    assert "otpauth://totp/" in client.get(opened["Location"], REMOTE_ADDR=IP).content.decode()


def test_no_link_is_sent_while_its_rate_limit_cannot_count(
    client, newcomer, mailoutbox, redis_cache_proxy
):
    redis_cache_proxy.mode = "refuse"
    password_sign_in(client, newcomer.get_username())

    response = client.get(reverse("staff_otp_setup"), REMOTE_ADDR=IP)

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert not mailoutbox
