from __future__ import annotations

from subscriptions import digest_admin  # noqa: F401  (registers the editions' admin)
