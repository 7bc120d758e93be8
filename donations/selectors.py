"""Reads of the donations app that pages, emails and tasks share."""

from __future__ import annotations
