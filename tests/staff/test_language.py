"""Each staff member picks the language the admin speaks to them."""

from __future__ import annotations

import pytest

from staff.models import StaffPreference

pytestmark = pytest.mark.django_db


def test_a_staff_member_who_picks_arabic_gets_the_admin_in_arabic(sign_in):
    client = sign_in("superuser")

    response = client.post("/admin/my-language/", {"language": "ar", "next": "/admin/"})
    page = client.get("/admin/").content.decode()

    assert response.status_code == 303 and response["Location"] == "/admin/"
    assert '<html lang="ar" dir="rtl">' in page
    assert "تسجيل الخروج" in page  # "Log out", from Django's own Arabic catalogue
    assert "لوحة المتابعة" in page and "حسب اللغة" in page  # the dashboard, from ours


def test_the_choice_is_each_staff_members_own(sign_in):
    hebrew, english = sign_in("superuser"), sign_in("superuser")
    hebrew.post("/admin/my-language/", {"language": "he"})

    assert '<html lang="he" dir="rtl">' in hebrew.get("/admin/").content.decode()
    assert '<html lang="en" dir="ltr">' in english.get("/admin/").content.decode()


def test_readers_pages_keep_the_language_of_their_address(sign_in):
    client = sign_in("superuser")
    client.post("/admin/my-language/", {"language": "he"})

    page = client.get("/newsletters/").content.decode()

    assert '<html lang="en" dir="ltr">' in page


def test_a_language_the_site_lacks_is_refused_and_changes_nothing(sign_in):
    client = sign_in("superuser")
    client.post("/admin/my-language/", {"language": "ar"})

    response = client.post("/admin/my-language/", {"language": "fr"})

    assert response.status_code == 400
    assert StaffPreference.objects.get(user=client.user).language == "ar"


def test_the_language_page_is_linked_from_every_admin_page(sign_in):
    page = sign_in("superuser").get("/admin/").content.decode()

    assert 'href="/admin/my-language/?next=/admin/"' in page
