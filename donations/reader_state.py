"""The reader-state cookie: what a reader without a session told us about themselves.

It holds the appeals a reader dismissed (each until a date), the day of their last
gift, and whether they get the newsletter. It is signed (django.core.signing), so a
reader can delete it but not forge it. Cached pages vary on a short key of it
(`selectors.reader_state_key`), so appeals honour it while pages stay cacheable.

It is set by the thank-you page, by confirming a subscription, and by a reader token:
links in receipts and in the digest carry `?rt=<token>` (what the email knew: subscriber,
day of the last gift; never an address or an id), which `ReaderTokenMiddleware` adds to
the cookie before redirecting to the clean URL. Each such visit rewrites the cookie, so
the day of the last gift outlives the browser's 400-day cap on the cookie itself.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from datetime import time as dt_time

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_date

COOKIE_NAME = "reader_state"
SALT = "donations.reader-state"
# Browsers cap cookie lifetimes at 400 days (RFC 6265bis, section 5.6.1).
MAX_AGE = 400 * 86_400
QUIET_DAYS_AFTER_GIFT = 30
# A donor is "lapsed" from 13 to 36 whole months after their last gift; after that the
# gift is too old to speak of and they are asked as someone who never gave ("none").
LAPSED_FROM_MONTHS = 13
LAPSED_UNTIL_MONTHS = 36
LINK_PARAM = "rt"
LINK_SALT = "donations.reader-token"


def months_since(day: date, today: date) -> int:
    """Whole calendar months from `day` to `today` (a month from 31 Jan is 28/29 Feb)."""
    months = (today.year - day.year) * 12 + today.month - day.month
    if today.day < day.day and not _last_day_of_month(today):
        months -= 1
    return months


def _last_day_of_month(day: date) -> bool:
    return (day + timedelta(days=1)).month != day.month


def donor_class(last_gift: date | None, today: date) -> str:
    """ "none" (never gave, or over 36 months ago), "recent" (under 13 months) or "lapsed"."""
    if last_gift is None:
        return "none"
    months = months_since(last_gift, today)
    if months < LAPSED_FROM_MONTHS:
        return "recent"
    if months <= LAPSED_UNTIL_MONTHS:
        return "lapsed"
    return "none"


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
        return donor_class(self.last_gift, today)

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


class _Today:
    """The local date, worked out once for the day it names in each time zone.

    Kept with the instants that day starts and ends at, so it is never served outside
    them: it turns at local midnight exactly, and a clock set back (tests travel in
    time) is seen too.
    """

    def __init__(self) -> None:
        self._known: tuple[tzinfo, date, float, float] | None = None

    def __call__(self) -> date:
        zone = timezone.get_current_timezone()
        now = time.time()
        known = self._known
        if known is not None and known[0] is zone and known[2] <= now < known[3]:
            return known[1]
        day = datetime.fromtimestamp(now, zone).date()
        # zoneinfo maps a midnight that a clock change skips or repeats to the instant
        # the day actually begins (fold=0: the offset in force before the change).
        starts = datetime.combine(day, dt_time.min, tzinfo=zone).timestamp()
        ends = datetime.combine(day + timedelta(days=1), dt_time.min, tzinfo=zone).timestamp()
        self._known = (zone, day, starts, ends)
        return day


_today = _Today()


def today() -> date:
    """The reader's local date (timezone.localdate), which appeals' rules count in."""
    return _today()


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


def mark_subscriber(request: HttpRequest, response: HttpResponse) -> None:
    """Remember on this browser that its reader gets the newsletter (changes only the appeal)."""
    state = read(request)
    state.subscriber = True
    write(response, state)


def token_make(*, subscriber: bool = False, last_gift: date | None = None) -> str:
    """A reader token for links in emails: what the email knows of its reader, nothing else."""
    payload: dict = {}
    if subscriber:
        payload["s"] = 1
    if last_gift:
        payload["g"] = last_gift.isoformat()
    # No timestamp: the token states facts as of the email, which the cookie only adds to.
    return signing.Signer(salt=LINK_SALT).sign_object(payload, compress=True)


def token_apply(state: ReaderState, token: str) -> bool:
    """Add what a reader token says to `state`; False (nothing changed) for a forged token."""
    try:
        payload = signing.Signer(salt=LINK_SALT).unsign_object(token)
        last_gift = parse_date(payload["g"]) if payload.get("g") else None
        subscriber = bool(payload.get("s"))
    except (signing.BadSignature, ValueError, TypeError, AttributeError):
        return False
    # A token only adds: an older email must not undo a newer gift or subscription.
    state.subscriber = state.subscriber or subscriber
    if last_gift and (state.last_gift is None or last_gift > state.last_gift):
        state.last_gift = last_gift
    return True


def with_token(url: str, token: str) -> str:
    """`url` with the reader token in its query."""
    return f"{url}{'&' if '?' in url else '?'}{LINK_PARAM}={token}"
