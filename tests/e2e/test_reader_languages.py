"""The Arabic digest and the Arabic donate page, laid out right-to-left in a real browser.

The run saves the Arabic digest as rendered to test-artifacts/digest-ar.png; with
UPDATE_DOCS_SCREENSHOT=1 also to docs/digest-ar.png.
"""

from __future__ import annotations

import os
import shutil

import pytest
from django.utils import timezone

from subscriptions.digest.compose import edition_compose
from subscriptions.digest.render import preview_html
from tests.conftest import ARTIFACTS, ROOT
from tests.newsroom.factories import CategoryFactory
from tests.subscriptions.digest.helpers import news, subscribe
from tests.subscriptions.factories import NewsletterFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LEAD = "استئناف محادثات وقف إطلاق النار في القاهرة"


def _box(page, selector: str) -> dict:
    return page.locator(selector).first.bounding_box()


def test_the_arabic_digest_reads_from_the_right(browser_page, site_url):
    newsletter = NewsletterFactory(top_stories_count=2)
    economy = CategoryFactory(name="اقتصاد")
    news(
        headline=LEAD,
        dek="الوسطاء يقدّمون مسودة جديدة للهدنة، والطرفان يدرسانها هذا الأسبوع.",
        language="ar",
        top_story_rank=1,
    )
    news(
        headline="حركة الموانئ ترتفع للشهر الثالث",
        dek="السفن تعود إلى العقبة وحيفا وبيروت مع تراجع كلفة التأمين البحري.",
        language="ar",
        category=economy,
    )
    news(headline="Ceasefire talks resume in Cairo", top_story_rank=1)
    reader = subscribe(newsletter, language="ar", name="سلمى", follows=[economy])
    edition = edition_compose(newsletter=newsletter, date=timezone.localdate())

    page = browser_page
    page.set_viewport_size({"width": 700, "height": 900})
    page.set_content(preview_html(edition=edition, subscriber=reader))

    assert page.locator("html").get_attribute("dir") == "rtl"
    assert page.get_by_text("صباح الخير يا سلمى").is_visible()
    assert page.get_by_text("Ceasefire talks resume in Cairo").count() == 0
    card = _box(page, "table.card")
    headline = _box(page, f"a.headline:text('{LEAD}')")
    kicker = _box(page, "td.kicker")
    # Mirrored: text starts at the card's right edge, leaving the gap on the left.
    card_right = card["x"] + card["width"]
    assert card_right - (headline["x"] + headline["width"]) < 40
    assert headline["x"] - card["x"] > 40
    assert card_right - (kicker["x"] + kicker["width"]) < 40
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "digest-ar.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(shot, ROOT / "docs" / "digest-ar.png")


def test_the_arabic_donate_page_mirrors_the_english_one(browser_page, donation_settings):
    page = browser_page
    page.set_viewport_size({"width": 1000, "height": 900})

    page.goto("/donate/?frequency=monthly")
    english = page.locator("button.donate-submit").bounding_box()
    page.goto("/ar/donate/?frequency=monthly")

    assert page.locator("html").get_attribute("dir") == "rtl"
    button = page.locator("button.donate-submit")
    assert button.inner_text().startswith("تبرّع ") and button.inner_text().endswith(" شهريًا")
    assert button.is_visible()
    arabic = button.bounding_box()
    width = page.viewport_size["width"]
    # The submit button sits at the start of the line: the left in English, the right here.
    assert english["x"] < width / 2 < arabic["x"] + arabic["width"]
    assert page.get_by_label("بريدك الإلكتروني").is_visible()
