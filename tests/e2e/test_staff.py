"""Staff sign in through the real login form with an authenticator code and open the dashboard;
without an app they set one up through the link emailed to them.

The run saves a full-page screenshot of the dashboard with the demo newsroom to
test-artifacts/dashboard.png; with UPDATE_DOCS_SCREENSHOT=1 also to docs/dashboard.png.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from tests.conftest import ARTIFACTS, ROOT
from tests.helpers import current_code, staff_device

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "plum-orchard-lantern-42"


@pytest.fixture
def desk_editor():
    """The demo newsroom, and a staff member whose authenticator app is set up."""
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    user = get_user_model().objects.create_user(
        "desk",
        "desk@newsroom.example",
        PASSWORD,
        is_staff=True,
        is_superuser=True,
        first_name="Leila",
    )
    return user, staff_device(user)


def blocked_by_policy(page) -> list[str]:
    """Collect what the Content Security Policy refuses on the page, as the console reports it."""
    refused: list[str] = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return refused


def test_staff_sign_in_with_a_code_and_see_the_dashboard(browser_page, desk_editor):
    _user, device = desk_editor
    page = browser_page
    refused = blocked_by_policy(page)

    page.goto(reverse("admin:index"))
    page.wait_for_url(f"**{reverse('admin:login')}**")
    page.get_by_label("Username").fill("desk")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Authentication code").fill(current_code(device))
    page.locator("#login-form input[type=submit]").click()

    page.wait_for_url(f"**{reverse('admin:index')}")
    # The dashboard: its sections, each chart with its figures in a table.
    for section in ("Gifts and revenue", "Subscribers"):
        assert page.get_by_role("heading", name=section, exact=True).is_visible()
    assert page.locator("svg").first.is_visible()
    assert page.get_by_role("table").first.is_visible()
    assert page.get_by_role("link", name="Articles").first.is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(shot, ROOT / "docs" / "dashboard.png")

    # The admin's own scripts run under the policy: the article form's widgets work.
    page.goto(reverse("admin:newsroom_article_add"))
    page.get_by_role("heading", name="Add article").wait_for()
    page.goto(reverse("admin:newsroom_article_changelist"))
    page.locator("#action-toggle").check()
    assert (
        page.locator(".action-counter")
        .inner_text()
        .startswith(f"{page.locator('tr input.action-select:checked').count()} of")
    )
    assert refused == []


def test_a_wrong_code_keeps_the_admin_closed(browser_page, desk_editor):
    _user, device = desk_editor
    page = browser_page
    wrong = f"{(int(current_code(device)) + 500_000) % 1_000_000:06d}"

    page.goto(reverse("admin:login"))
    page.get_by_label("Username").fill("desk")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Authentication code").fill(wrong)
    page.locator("#login-form input[type=submit]").click()

    assert page.get_by_text("That authentication code is not right.").is_visible()
    page.goto(reverse("admin:index"))
    page.wait_for_url(f"**{reverse('admin:login')}**")


def test_staff_without_an_app_set_it_up_through_the_emailed_link(
    browser_page, desk_editor, mailoutbox
):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user, device = desk_editor
    device.delete()
    page = browser_page

    page.goto(reverse("admin:login"))
    page.get_by_label("Username").fill("desk")
    page.get_by_label("Password").fill(PASSWORD)
    page.locator("#login-form input[type=submit]").click()

    # The password alone shows no secret: the page says where the link went.
    page.wait_for_url(f"**{reverse('staff_otp_setup')}**")
    assert page.get_by_text("We sent a link to your email address").is_visible()
    assert page.get_by_text("d***@newsroom.example").is_visible()
    assert page.get_by_role("img", name="QR code holding the sign-in secret below").count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "two-factor-landing.png"), full_page=True)
    [email] = mailoutbox
    assert email.to == ["desk@newsroom.example"]
    link = re.search(r"https?://\S+/two-factor/link/\S+/", email.body).group(0)

    # The link is on SITE_URL; the browser opens its path on the test's server.
    page.goto("/" + link.split("://", 1)[1].split("/", 1)[1])
    page.wait_for_url(f"**{reverse('staff_otp_setup')}**")
    assert page.get_by_role("img", name="QR code holding the sign-in secret below").is_visible()
    page.screenshot(path=str(ARTIFACTS / "two-factor-setup.png"), full_page=True)
    new_device = TOTPDevice.objects.get(user=user)
    page.get_by_label("Code from the app").fill(current_code(new_device))
    page.get_by_role("button", name="Confirm and continue").click()

    # Recovery codes, shown once, then the admin.
    page.get_by_text("They are shown only now").wait_for()
    assert page.locator("ol.recovery-codes li").count() == 10
    page.screenshot(path=str(ARTIFACTS / "recovery-codes.png"), full_page=True)
    page.get_by_role("link", name="I have kept them: continue").click()
    page.wait_for_url(f"**{reverse('admin:index')}")
    new_device.refresh_from_db()
    assert new_device.confirmed
