"""A reader in chromium switches the site to Arabic and Hebrew: the layout mirrors, stories follow.

The run saves full-page screenshots of the demo's Arabic home page to
test-artifacts/home-ar.png; with UPDATE_DOCS_SCREENSHOT=1 also to docs/home-ar.png.
"""

from __future__ import annotations

import os
import shutil

import pytest
from django.core.management import call_command

from newsroom.models import Article
from tests.conftest import ARTIFACTS, ROOT

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo():
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115


def _box(page, locator) -> dict:
    box = locator.bounding_box()
    assert box is not None
    return box


def test_switching_to_arabic_mirrors_the_layout(browser_page, demo):
    page = browser_page
    page.set_viewport_size({"width": 1200, "height": 900})

    page.goto("/")
    width = page.viewport_size["width"]
    brand = _box(page, page.locator(".brand"))
    first_section = _box(page, page.locator(".site-nav li a").first)
    assert brand["x"] < width / 2 and first_section["x"] < width / 2
    page.get_by_role("navigation", name="Languages").get_by_role("link", name="العربية").click()

    page.wait_for_url("**/ar/")
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert page.locator("html").get_attribute("lang") == "ar"
    # The brand and the first section now start from the right-hand side.
    brand = _box(page, page.locator(".brand"))
    first_section = _box(page, page.locator(".site-nav li a").first)
    assert brand["x"] + brand["width"] > width / 2
    assert first_section["x"] + first_section["width"] > width / 2
    assert (
        page.get_by_role("navigation", name="الأقسام")
        .get_by_role("link", name="المناخ والمياه")
        .is_visible()
    )
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "home-ar.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "home-ar.png")


def test_a_story_switches_to_its_version_in_another_language(browser_page, demo):
    english = Article.objects.get(slug="valley-farmers-trade-flood-canals-for-drip-lines")
    hebrew = Article.objects.get(story=english.story, language="he")
    page = browser_page

    page.goto(english.get_absolute_url())
    page.get_by_role("navigation", name="Languages").get_by_role("link", name="עברית").click()

    page.wait_for_url(f"**{hebrew.get_absolute_url()}")
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert page.get_by_role("heading", level=1).inner_text() == hebrew.headline
    assert page.get_by_text("מאת").first.is_visible()
    # A story with no Arabic version leads to the Arabic front page.
    only_english = Article.objects.get(slug="bread-prices-rise-as-wheat-subsidy-narrows")
    page.goto(only_english.get_absolute_url())
    page.get_by_role("navigation", name="Languages").get_by_role("link", name="العربية").click()
    page.wait_for_url("**/ar/")
