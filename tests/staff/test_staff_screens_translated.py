"""The staff app's own screens and emails speak the staff member's chosen language."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from staff import roles
from staff.models import StaffPreference
from tests.helpers import current_code
from tests.newsroom.factories import StaffFactory
from tests.staff.conftest import member
from tests.staff.two_factor import (
    PASSWORD,
    emailed_link_path,
    password_sign_in,
    recovery_codes_from,
)

pytestmark = pytest.mark.django_db

IP = "203.0.113.9"


def newcomer(language: str):
    """A staff member without an authenticator app, who chose `language` for the admin."""
    user = StaffFactory(username="newcomer", email="newcomer@newsroom.example")
    user.set_password(PASSWORD)
    user.save()
    StaffPreference.objects.create(user=user, language=language)
    return user


def test_the_dashboard_speaks_arabic_to_a_staff_member_who_chose_it(sign_in):
    client = sign_in("superuser")
    client.post("/admin/my-language/", {"language": "ar"})

    page = client.get("/admin/").content.decode()

    assert "الإيرادات الشهرية المتكررة" in page  # Monthly recurring revenue
    assert "المشتركون المؤكَّدون في نهاية كل أسبوع" in page
    for english in (
        "Monthly recurring revenue",
        "A gift counts on the day it was paid",
        "Confirmed subscribers at the end of each week",
        "Gifts per day, last",
        "No edition has been composed yet.",
    ):
        assert english not in page


def test_the_recovery_codes_pages_speak_arabic(sign_in):
    client = sign_in("superuser")
    client.post("/admin/my-language/", {"language": "ar"})

    left = client.get(reverse("staff_recovery_codes")).content.decode()
    made = client.post(reverse("staff_recovery_codes")).content.decode()

    assert "إنشاء رموز استرداد جديدة" in left
    assert "unused recovery code" not in left and "Make new recovery codes" not in left
    assert "هذه رموز الاسترداد الخاصة بك" in made
    assert "These are your recovery codes" not in made
    assert "Download as a text file" not in made


def test_the_set_up_pages_speak_arabic(client, mailoutbox):
    newcomer("ar")
    password_sign_in(client, "newcomer")

    landing = client.get(reverse("staff_otp_setup"), REMOTE_ADDR=IP).content.decode()
    client.get(emailed_link_path(mailoutbox[0]), REMOTE_ADDR=IP)
    setup = client.get(reverse("staff_otp_setup"), REMOTE_ADDR=IP).content.decode()

    assert '<html lang="ar" dir="rtl">' in landing
    assert "رابط في بريدك الإلكتروني" in landing
    assert "A link in your email" not in landing and "Send the link again" not in landing
    assert "أدخل الرمز الذي يعرضه التطبيق الآن" in setup
    assert "Enter the code the app now shows" not in setup
    assert "Confirm and continue" not in setup


def test_the_set_up_link_is_emailed_in_hebrew_to_a_staff_member_who_chose_it(client, mailoutbox):
    newcomer("he")
    password_sign_in(client, "newcomer")

    client.get(reverse("staff_otp_setup"), REMOTE_ADDR=IP)

    [email] = mailoutbox
    html = email.alternatives[0][0]
    assert "הגדרת כניסה באימות דו-שלבי" in email.subject
    assert "Set up two-factor sign-in" not in email.subject
    assert "פתחו את הקישור הזה באותו דפדפן שבו נכנסתם" in email.body
    assert "If it was you" not in email.body and "If it was you" not in html
    assert '<html lang="he" dir="rtl">' in html
    assert "two-factor/link/" in html


def test_a_recovery_code_sign_in_is_warned_about_in_hebrew(client, mailoutbox):
    user = newcomer("he")
    password_sign_in(client, "newcomer")
    client.get(reverse("staff_otp_setup"), REMOTE_ADDR=IP)
    client.get(emailed_link_path(mailoutbox[0]), REMOTE_ADDR=IP)
    device = TOTPDevice.objects.get(user=user)
    codes = recovery_codes_from(
        client.post(reverse("staff_otp_setup"), {"token": current_code(device)}, REMOTE_ADDR=IP)
    )

    browser = Client()
    password_sign_in(browser, "newcomer", code=codes[0])
    page = browser.get(reverse("admin:index")).content.decode()

    assert "נכנסת עם קוד שחזור; נותרו עוד 9." in page
    assert "You signed in with a recovery code" not in page


def test_the_roles_are_named_in_the_staff_members_language(sign_in):
    client = sign_in("superuser")
    client.post("/admin/my-language/", {"language": "ar"})
    editor = member(roles.EDITORS, username="layla")
    Group.objects.create(name="Night desk")

    users = client.get(reverse("admin:auth_user_changelist")).content.decode()
    form = client.get(reverse("admin:auth_user_change", args=[editor.pk])).content.decode()
    groups = client.get(reverse("admin:auth_group_changelist")).content.decode()

    for page in (users, form, groups):
        assert "المحررون" in page and "المسؤولون" in page
        assert ">Editors<" not in page and ">Admins<" not in page
        # A group staff made themselves keeps the name they gave it.
        assert "Night desk" in page
    assert Group.objects.filter(name=roles.EDITORS).exists()  # the row is not renamed


def test_states_in_the_admin_lists_are_in_the_staff_members_language(sign_in):
    from datetime import date

    from subscriptions.models import Edition
    from tests.donations.factories import AppealFactory, PaidGiftFactory
    from tests.subscriptions.factories import NewsletterFactory

    client = sign_in("superuser")
    client.post("/admin/my-language/", {"language": "ar"})
    Edition.objects.create(
        newsletter=NewsletterFactory(),
        date=date(2026, 11, 2),
        state=Edition.State.SKIPPED,
        cutoff_end="2026-11-02T04:00:00Z",
    )
    PaidGiftFactory()
    AppealFactory(placement="site_banner", audience="non_donors")

    editions = client.get(reverse("admin:subscriptions_edition_changelist")).content.decode()
    gifts = client.get(reverse("admin:donations_gift_changelist")).content.decode()
    appeals = client.get(reverse("admin:donations_appeal_changelist")).content.decode()

    assert "تُخطّي: لا جديد" in editions and "Skipped: nothing new" not in editions
    assert "مدفوع" in gifts and ">Paid<" not in gifts
    assert "شريط أعلى الموقع" in appeals and "قرّاء لم يتبرعوا قط" in appeals
    assert "Site banner" not in appeals and "Readers who have never given" not in appeals


def test_the_admins_list_of_apps_names_the_models_in_arabic(sign_in):
    client = sign_in("superuser")
    client.post("/admin/my-language/", {"language": "ar"})

    page = client.get(reverse("admin:index")).content.decode()

    for arabic in ("مقالات", "نداءات التبرع", "النشرات البريدية", "المشتركون", "الأعداد"):
        assert f">{arabic}<" in page
    for english in (">Articles<", ">Appeals<", ">Newsletters<", ">Subscribers<", ">Editions<"):
        assert english not in page


def test_the_article_form_labels_its_fields_in_arabic(sign_in):
    client = sign_in("superuser")
    client.post("/admin/my-language/", {"language": "ar"})

    page = client.get(reverse("admin:newsroom_article_add")).content.decode()

    assert 'for="id_headline">العنوان' in page and "المقدمة (العنوان الفرعي)" in page
    assert 'for="id_headline">Headline' not in page and "Standfirst (dek)" not in page
