"""The README shows staff the dashboard: docs/ holds the screenshot the browser test takes."""

from __future__ import annotations

from PIL import Image

from tests.conftest import ROOT


def test_the_readme_shows_the_dashboard_screenshot_from_docs():
    readme = (ROOT / "README.md").read_text()
    assert "](docs/dashboard.png)" in readme
    with Image.open(ROOT / "docs" / "dashboard.png") as shot:
        # A full-page capture by tests/e2e/test_staff.py, 1,280 pixels wide (the browser's default).
        assert shot.format == "PNG" and shot.width >= 1200 and shot.height > 2 * shot.width
