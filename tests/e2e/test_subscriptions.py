"""A reader subscribes in chromium, confirms from the email, and follows two categories."""

from __future__ import annotations

import re

import pytest

from subscriptions.models import Follow, Subscriber, Subscription
from tests.factories import CategoryFactory, NewsletterFactory

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

    page.get_by_role("link", name="Personalise your news").click()
    for name in ("Politics", "Economy"):
        button = page.get_by_role("button", name=f"Follow {name}")
        button.click()
        # Toggled in place by the script, without leaving the page.
        page.get_by_role("button", name=f"Following {name}").wait_for()
        assert page.get_by_role("button", name=f"Following {name}").get_attribute("aria-pressed") == "true"
    assert page.url.endswith("/for-you/")

    follows = Follow.objects.filter(subscriber=subscriber)
    assert {f.category for f in follows} == {politics, economy}

    page.reload()
    assert page.get_by_role("button", name="Following Politics").get_attribute("aria-pressed") == "true"
    assert page.get_by_role("button", name="Follow Culture").get_attribute("aria-pressed") == "false"
