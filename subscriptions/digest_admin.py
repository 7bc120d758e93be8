"""Admin for editions and their sending."""

from __future__ import annotations
