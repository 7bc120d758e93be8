"""The reader-state cookie: what a reader without a session told us about themselves.

It holds the appeals a reader dismissed (each until a date), the day of their last
gift, and whether they get the newsletter. It is signed (django.core.signing), so a
reader can delete it but not forge it. Cached pages vary on a short key of it
(`selectors.reader_state_key`), so appeals honour it while pages stay cacheable.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

COOKIE_NAME = "reader_state"
SALT = "donations.reader-state"
# Browsers cap cookie lifetimes at 400 days (RFC 6265bis, section 5.6.1).
MAX_AGE = 400 * 86_400
QUIET_DAYS_AFTER_GIFT = 30
LAPSED_AFTER_DAYS = 365


@dataclass
class ReaderState:
    dismissed: dict[int, date] = field(default_factory=dict)
    last_gift: date | None = None
    subscriber: bool = False

    def hidden_appeals(self, today: date) -> frozenset[int]:
        return frozenset(pk for pk, until in self.dismissed.items() if until >= today)

    def quiet(self, today: date) -> bool:
        """True for 30 days after a gift: no appeal at all."""
        return self.last_gift is not None and today < self.last_gift + timedelta(
            days=QUIET_DAYS_AFTER_GIFT
        )

    def donor_class(self, today: date) -> str:
        if self.last_gift is None:
            return "none"
        if today - self.last_gift > timedelta(days=LAPSED_AFTER_DAYS):
            return "lapsed"
        return "recent"

    def key(self, today: date) -> str:
        """A short digest of everything that changes which appeal is shown; "" for nothing."""
        hidden = sorted(self.hidden_appeals(today))
        donor = self.donor_class(today)
        if not hidden and donor == "none" and not self.subscriber:
            return ""
        raw = f"{hidden}|{self.quiet(today)}|{donor}|{int(self.subscriber)}"
        return hashlib.sha256(raw.encode()).hexdigest()[:12]

    def dismiss(self, appeal_id: int, today: date) -> None:
        # Expired entries are dropped so the cookie stays small.
        self.dismissed = {pk: until for pk, until in self.dismissed.items() if until >= today}
        self.dismissed[appeal_id] = today + timedelta(days=settings.APPEAL_DISMISS_DAYS)

    def dumps(self) -> str:
        payload: dict = {}
        if self.dismissed:
            payload["x"] = {str(pk): until.isoformat() for pk, until in self.dismissed.items()}
        if self.last_gift:
            payload["g"] = self.last_gift.isoformat()
        if self.subscriber:
            payload["s"] = 1
        return signing.dumps(payload, salt=SALT, compress=True)


def today() -> date:
    return timezone.localdate()


def read(request: HttpRequest) -> ReaderState:
    raw = request.COOKIES.get(COOKIE_NAME)
    if not raw:
        return ReaderState()
    try:
        payload = signing.loads(raw, salt=SALT, max_age=MAX_AGE)
        return ReaderState(
            dismissed={
                int(pk): date.fromisoformat(until) for pk, until in payload.get("x", {}).items()
            },
            last_gift=date.fromisoformat(payload["g"]) if payload.get("g") else None,
            subscriber=bool(payload.get("s")),
        )
    except (signing.BadSignature, ValueError, TypeError, AttributeError):
        return ReaderState()


def write(response: HttpResponse, state: ReaderState) -> None:
    response.set_cookie(
        COOKIE_NAME,
        state.dumps(),
        max_age=MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=not settings.DEBUG,
    )
