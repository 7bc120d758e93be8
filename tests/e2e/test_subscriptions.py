"""A reader subscribes in chromium, confirms from the email, and follows two categories."""

from __future__ import annotations

import re

import pytest

from subscriptions.models import Follow, Subscriber, Subscription
from tests.newsroom.factories import ArticleFactory, CategoryFactory
from tests.subscriptions.factories import NewsletterFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_subscribe_confirm_and_follow_two_categories(browser_page, mailoutbox):
    page = browser_page
    NewsletterFactory()
    politics = CategoryFactory(name="Politics", slug="politics")
    economy = CategoryFactory(name="Economy", slug="economy")
    CategoryFactory(name="Culture", slug="culture")
    # The signup form's hidden time zone is filled from the browser's.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Beirut"})

    page.goto("/newsletters/")
    form = page.locator("section.signup--page form")
    form.get_by_label("Your email address").fill("browser.reader@mail.example")
    form.get_by_role("button", name="Sign up").click()

    page.get_by_role("heading", name="Check your inbox").wait_for()
    assert len(mailoutbox) == 1
    link = re.search(r"https?://\S+/newsletters/confirm/\S+/", mailoutbox[0].body).group(0)
    path = "/" + link.split("://", 1)[1].split("/", 1)[1]

    page.goto(path)
    page.get_by_role("heading", name="You're subscribed").wait_for()
    subscriber = Subscriber.objects.get(email="browser.reader@mail.example")
    assert subscriber.time_zone == "Asia/Beirut"
    assert subscriber.subscriptions.get().status == Subscription.Status.ACTIVE

    # Follow one category from its own (cached) page and another from /for-you/.
    ArticleFactory(category=politics, headline="Parliament passes the water bill")
    ArticleFactory(category=economy, headline="Port traffic doubles in a year")
    page.goto("/category/politics/")
    page.locator("html[data-follow-ready]").wait_for(state="attached")
    page.get_by_role("button", name="Follow Politics").click()
    page.get_by_role("button", name="Following Politics").wait_for()
    assert page.url.endswith("/category/politics/")  # toggled in place

    page.goto("/for-you/")
    page.get_by_role("button", name="Follow Economy").click()
    page.get_by_role("button", name="Following Economy").wait_for()
    assert (
        page.get_by_role("button", name="Following Economy").get_attribute("aria-pressed") == "true"
    )

    follows = Follow.objects.filter(subscriber=subscriber)
    assert {f.category for f in follows} == {politics, economy}

    page.reload()
    assert (
        page.get_by_role("button", name="Following Politics").get_attribute("aria-pressed")
        == "true"
    )
    assert (
        page.get_by_role("button", name="Follow Culture").get_attribute("aria-pressed") == "false"
    )
    page.get_by_role("link", name="Port traffic doubles in a year").wait_for()
    page.get_by_role("link", name="Parliament passes the water bill").wait_for()


def test_without_javascript_signup_and_follow_still_work(
    browser_page, live_server, mailoutbox, settings
):
    NewsletterFactory()
    CategoryFactory(name="Politics", slug="politics")
    context = browser_page.context.browser.new_context(
        base_url=live_server.url, java_script_enabled=False
    )
    page = context.new_page()
    try:
        page.goto("/category/politics/")
        page.get_by_role("button", name="Follow Politics").click()
        page.get_by_role("heading", name="You follow Politics").wait_for()
        page.get_by_role("link", name="Back to where you were").click()
        assert page.url.endswith("/category/politics/")

        page.goto("/newsletters/")
        form = page.locator("section.signup--page form")
        form.get_by_label("Your email address").fill("plain.reader@mail.example")
        form.get_by_role("button", name="Sign up").click()
        page.get_by_role("heading", name="Check your inbox").wait_for()
    finally:
        context.close()

    # No script filled the time zone: the newsroom's own is used.
    assert Subscriber.objects.get().time_zone == settings.TIME_ZONE
    assert len(mailoutbox) == 1
