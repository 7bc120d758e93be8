"""Demo newsletters and subscribers for `manage.py seed_demo`."""

from __future__ import annotations


def seed() -> list[str]:
    """Create the demo data of this app; return lines to print."""
    return []
