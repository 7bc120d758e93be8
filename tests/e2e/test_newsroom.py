"""A reader in chromium: home page, a category, an article."""

from __future__ import annotations

import pytest

from tests.newsroom.factories import ArticleFactory, CategoryFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_reader_goes_from_home_to_a_category_to_an_article(browser_page):
    water = CategoryFactory(name="Climate & Water", slug="climate-water", order=1)
    ArticleFactory(
        headline="Valley farmers switch to drip lines",
        dek="A cooperative cut its water use by a third.",
        body="<p>The pumps start at five.</p><p>The canal stays dry.</p>",
        pull_quotes=["We did not save the water to spend it again."],
        category=water,
    )
    ArticleFactory(
        headline="Coalition talks stall",
        category=CategoryFactory(name="Politics", slug="politics", order=2),
    )
    page = browser_page

    page.goto("/")
    assert page.title() == "The Levant Ledger"
    page.get_by_role("navigation", name="Sections").get_by_role(
        "link", name="Climate & Water"
    ).click()

    page.wait_for_url("**/category/climate-water/")
    assert page.get_by_role("heading", level=1).inner_text() == "Climate & Water"
    assert page.get_by_text("Coalition talks stall").count() == 0
    page.get_by_role("link", name="Valley farmers switch to drip lines").click()

    page.wait_for_url("**/articles/**")
    assert (
        page.get_by_role("heading", level=1).inner_text() == "Valley farmers switch to drip lines"
    )
    assert page.get_by_text("The canal stays dry.").is_visible()
    assert page.get_by_role("complementary", name="Quote from the article").inner_text() == (
        "We did not save the water to spend it again."
    )
    assert page.locator("html").get_attribute("dir") == "ltr"
