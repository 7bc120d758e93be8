"""Consent: the wording a reader agrees to, stored once per version; a record of each action."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import strip_tags

from subscriptions.models import ConsentRecord, ConsentText, Newsletter, Subscriber


@dataclass(frozen=True)
class RequestMeta:
    """Where a consent action came from, as ConsentRecord keeps it."""

    ip: str | None = None
    user_agent: str = ""
    source: str = ""
    # When the reader acted; None for now. Set when the action is processed after the request.
    at: datetime | None = None


def consent_document() -> str:
    """The exact words a reader agrees to: the consent line, the terms and the privacy policy.

    Rendered from the same templates as the form and the /terms/ and /privacy/ pages, so
    changing any of them makes a new version.
    """
    context = {"NEWSROOM_NAME": settings.NEWSROOM_NAME}
    parts = [
        strip_tags(render_to_string("subscriptions/legal/consent_line.html", context)),
        "TERMS OF USE",
        strip_tags(render_to_string("subscriptions/legal/terms_body.html", context)),
        "PRIVACY POLICY",
        strip_tags(render_to_string("subscriptions/legal/privacy_body.html", context)),
    ]
    return "\n\n".join(" ".join(part.split()) for part in parts)


def consent_text_store(*, text: str) -> ConsentText:
    """Store a version of the consent wording once, keyed by its SHA-256."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    try:
        with transaction.atomic():
            consent, _ = ConsentText.objects.get_or_create(sha256=digest, defaults={"text": text})
    except IntegrityError:  # another request stored the same version a moment ago
        consent = ConsentText.objects.get(sha256=digest)
    return consent


def consent_text_current() -> ConsentText:
    return consent_text_store(text=consent_document())


def consent_version_shown() -> str:
    """The SHA-256 of the current consent wording, stored (once) before a form shows it.

    A stored version is never deleted (old consent records point at it), so once the
    cache says it is stored the database is not asked again: a page render costs no
    query for it, and a changed wording has a new hash and is stored on its first showing.
    """
    text = consent_document()
    digest = hashlib.sha256(text.encode()).hexdigest()
    key = f"subscriptions:consent-stored:{digest}"
    if not cache.get(key):
        consent_text_store(text=text)
        cache.set(key, True, timeout=None)
    return digest


def consent_text_for_version(version: str | None) -> ConsentText:
    """The version the form showed (its hash travels with the form), else the current one."""
    if version:
        shown = ConsentText.objects.filter(sha256=version).first()
        if shown is not None:
            return shown
    return consent_text_current()


def _record(
    *,
    subscriber: Subscriber,
    action: str,
    meta: RequestMeta,
    newsletter: Newsletter | None = None,
    consent_text: ConsentText | None = None,
) -> ConsentRecord:
    # The only way consent records are written: create, never update or delete.
    return ConsentRecord.objects.create(
        subscriber=subscriber,
        newsletter=newsletter,
        action=action,
        at=meta.at or timezone.now(),
        ip_address=meta.ip or None,
        user_agent=meta.user_agent[:500],
        source=meta.source[:100],
        consent_text=consent_text,
    )
