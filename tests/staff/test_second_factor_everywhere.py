"""Every staff-only page, found by walking the URL resolver, refuses a password-only session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings
from django.contrib import admin
from django.test import Client, RequestFactory
from django.urls import Resolver404, URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils.regex_helper import normalize

from newsroom.models import Article
from tests.helpers import login_staff, staff_device
from tests.newsroom.factories import ArticleFactory, StaffFactory

# The only staff views a session without a verified second factor may open: signing in
# and out, and the set-up, which shows no secret until a second channel is used.
OPEN_TO_PASSWORD_ONLY = {
    "admin:login",
    "admin:logout",
    "staff_otp_setup",
    "staff_enrol_send",
    "staff_enrol_open",
    "staff_enrol_code",
}


def _patterns(patterns, prefix: str = "", namespace: str = "") -> Iterator[tuple]:
    """(name, full regex, pattern) of every route, named or not."""
    for entry in patterns:
        regex = prefix + entry.pattern.regex.pattern.lstrip("^")
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _patterns(entry.url_patterns, regex, inner)
        else:
            yield (f"{namespace}{entry.name}" if entry.name else regex), regex, entry


def _url(regex: str, pattern: URLPattern) -> str | None:
    """A path the pattern itself answers: each argument filled with a value it takes."""
    app_labels = sorted({model._meta.app_label for model in admin.site._registry})
    for form, params in normalize(regex):
        for value in ("1", "x", *app_labels):
            url = "/" + form % dict.fromkeys(params, value)
            try:
                if resolve(url).func is pattern.callback:
                    return url
            except Resolver404:
                continue
    return None


def staff_urls() -> list[tuple[str, str]]:
    """(name, path) of every route under ADMIN_URL, and a draft's preview."""
    found = []
    for name, regex, pattern in _patterns(get_resolver().url_patterns):
        if regex.startswith(settings.ADMIN_URL):
            url = _url(regex, pattern)
            assert url is not None, f"no path could be made for {name}"
            found.append((name, url))
    draft = ArticleFactory(status=Article.Status.DRAFT, published_at=None)
    found.append(("article preview", draft.get_absolute_url()))
    return found


def admin_actions() -> list[tuple[str, dict]]:
    """(changelist path, POST data) running each action of each model on one row."""
    request = RequestFactory().get("/")
    request.user = StaffFactory()
    posts = []
    for model, model_admin in admin.site._registry.items():
        changelist = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for action in model_admin.get_actions(request):
            posts.append((changelist, {"action": action, "_selected_action": ["1"]}))
    return posts


def password_only(user) -> Client:
    """A client signed in with the password alone: no device verified this session."""
    client = Client()
    client.force_login(user)
    return client


def assert_refused(response, where: str) -> None:
    login, setup = reverse("admin:login"), reverse("staff_otp_setup")
    if response.status_code in (403, 405):  # refused, or a method the page never takes
        return
    assert response.status_code == 302, f"{where} answered {response.status_code}"
    assert response["Location"].startswith((login, setup)), (
        f"{where} sent to {response['Location']}"
    )


@pytest.fixture(params=["with an app set up", "without one yet"])
def staff_member(request, db):
    user = StaffFactory()
    if request.param == "with an app set up":
        staff_device(user)
    return user


@pytest.mark.django_db
def test_the_walk_finds_the_dashboard_exports_previews_and_every_model():
    names = {name for name, _ in staff_urls()}

    assert {
        "admin:index",
        "admin:donations_gift_export_donors",
        "admin:subscriptions_subscriber_export",
        "admin:subscriptions_edition_preview",
        "staff_recovery_codes",
        "article preview",
    } <= names
    for model in admin.site._registry:
        opts = model._meta
        for view in ("changelist", "add", "change", "delete", "history"):
            assert f"admin:{opts.app_label}_{opts.model_name}_{view}" in names
    assert admin_actions()


def test_a_password_alone_opens_no_staff_page(staff_member):
    for name, url in staff_urls():
        if name in OPEN_TO_PASSWORD_ONLY:
            continue
        for method in ("get", "post"):
            # Signed in afresh each time: a refusal may sign the session out.
            response = getattr(password_only(staff_member), method)(url)
            assert_refused(response, f"{method.upper()} {url} ({name})")


def test_a_password_alone_runs_no_admin_action(staff_member):
    for changelist, data in admin_actions():
        response = password_only(staff_member).post(changelist, data)
        assert_refused(response, f"action {data['action']} on {changelist}")


def test_the_set_up_pages_open_to_a_password_alone_show_no_secret(db):
    client = password_only(StaffFactory())

    response = client.get(reverse("staff_otp_setup"))

    assert response.status_code == 200
    assert "otpauth://" not in response.content.decode()


def test_a_password_only_draft_preview_goes_to_set_up_and_shows_nothing(db):
    draft = ArticleFactory(headline="Not yet for anyone", status=Article.Status.DRAFT)

    response = password_only(StaffFactory()).get(draft.get_absolute_url())

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("staff_otp_setup"))
    assert b"Not yet for anyone" not in response.content


def test_a_verified_session_opens_the_same_pages(db):
    client = Client()
    login_staff(client)
    draft = ArticleFactory(headline="Being written", status=Article.Status.DRAFT)

    for url in (
        reverse("admin:index"),
        reverse("admin:newsroom_article_changelist"),
        reverse("admin:newsroom_article_change", args=[draft.pk]),
        reverse("admin:donations_gift_export_donors"),
        reverse("staff_recovery_codes"),
        draft.get_absolute_url(),
    ):
        assert client.get(url).status_code == 200, url
