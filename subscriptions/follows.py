"""The reader's follows as the browser carries them: a signed cookie.

An anonymous reader's follows live in the cookie itself. Once the reader confirms an
email in the browser that signed up, or links a browser with the button on the
confirmation page, the cookie instead names the subscriber (public id and address
fingerprint, signed), and follows are read from and written to their Follow rows.
A link from an email alone never binds a browser: whoever holds a link need not be its
reader.
The cookie is set only in answer to a POST or the confirmation link, never on a plain
GET of a public page, so cached pages stay cacheable.

A second cookie marks the browser that signed up: the fingerprints of the addresses it
asked to subscribe, signed, read only by the confirmation page.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from subscriptions import tokens
from subscriptions.models import Subscriber
from subscriptions.services import MAX_FOLLOWS, FollowRefs

COOKIE = "newsroom_follows"
SALT = "subscriptions.follows"
MAX_AGE = 60 * 60 * 24 * 365

SIGNUP_COOKIE = "newsroom_signup"
SIGNUP_SALT = "subscriptions.signup-browser"
# A browser that asks for more addresses than this within a week keeps the latest ones.
SIGNUP_MAX_ADDRESSES = 10


@dataclass
class ReaderFollows:
    category_ids: list[int] = field(default_factory=list)
    topic_ids: list[int] = field(default_factory=list)
    subscriber: Subscriber | None = None

    def refs(self) -> FollowRefs:
        return FollowRefs(category_ids=tuple(self.category_ids), topic_ids=tuple(self.topic_ids))


def _ids(value) -> list[int]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, int)][:MAX_FOLLOWS]


def read(request: HttpRequest) -> ReaderFollows:
    try:
        data = signing.loads(request.COOKIES.get(COOKIE, ""), salt=SALT, max_age=MAX_AGE)
    except signing.BadSignature:
        return ReaderFollows()
    if not isinstance(data, dict):
        return ReaderFollows()
    if "p" in data or "s" in data:
        try:
            lookup = tokens.subscriber_lookup(data)
        except signing.BadSignature:
            return ReaderFollows()
        subscriber = Subscriber.objects.filter(**lookup).first()
        if subscriber is not None and tokens.fingerprint_matches(subscriber.email, data.get("e")):
            follows = list(subscriber.follows.values_list("category_id", "topic_id"))
            return ReaderFollows(
                category_ids=[c for c, _ in follows if c],
                topic_ids=[t for _, t in follows if t],
                subscriber=subscriber,
            )
        return ReaderFollows()
    return ReaderFollows(category_ids=_ids(data.get("c")), topic_ids=_ids(data.get("t")))


def _set(response: HttpResponse, data: dict) -> None:
    response.set_cookie(
        COOKIE,
        signing.dumps(data, salt=SALT, compress=True),
        max_age=MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=not settings.DEBUG,
    )


def write_anonymous(response: HttpResponse, follows: ReaderFollows) -> None:
    _set(response, {"c": follows.category_ids[:MAX_FOLLOWS], "t": follows.topic_ids[:MAX_FOLLOWS]})


def link_subscriber(response: HttpResponse, subscriber: Subscriber) -> None:
    """From now on this browser's follows are the subscriber's."""
    _set(response, tokens.subscriber_claim(subscriber))


# --- the browser that signed up -----------------------------------------------------------


def _same_origin(request: HttpRequest) -> bool:
    """True unless the browser says the form was posted from another site.

    The sign-up form is posted without a CSRF token (it sits on cached pages), so another
    site could make a visitor's browser sign up for the other site's own address; such a
    browser must not count as the one that signed up (RFC 6454 origins, Fetch metadata).
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("Origin")
    if origin is not None:
        return origin == f"{request.scheme}://{request.get_host()}"
    return True


def _signup_fingerprints(request: HttpRequest) -> list[str]:
    try:
        data = signing.loads(
            request.COOKIES.get(SIGNUP_COOKIE, ""), salt=SIGNUP_SALT, max_age=tokens.CONFIRM_MAX_AGE
        )
    except signing.BadSignature:
        return []
    if not isinstance(data, list):
        return []
    return [item for item in data if isinstance(item, str)][-SIGNUP_MAX_ADDRESSES:]


def _confirm_path() -> str:
    """The cookie goes only to confirmation links, not to every (cached) page."""
    return reverse("subscriptions:confirm", kwargs={"token": "-"}).removesuffix("-/")


def mark_signup(request: HttpRequest, response: HttpResponse, *, email: str) -> None:
    """Remember that this browser asked to subscribe `email`, for as long as its link lives.

    Set whatever the address's state, so the answer to the form stays the same for all.
    """
    if not _same_origin(request):
        return
    fingerprint = tokens.fingerprint(email)
    kept = [item for item in _signup_fingerprints(request) if item != fingerprint]
    response.set_cookie(
        SIGNUP_COOKIE,
        signing.dumps([*kept, fingerprint][-SIGNUP_MAX_ADDRESSES:], salt=SIGNUP_SALT),
        max_age=tokens.CONFIRM_MAX_AGE,
        path=_confirm_path(),
        httponly=True,
        samesite="Lax",
        secure=not settings.DEBUG,
    )


def signed_up_here(request: HttpRequest, *, email: str) -> bool:
    """True when this browser is the one that asked to subscribe `email`."""
    return tokens.fingerprint(email) in _signup_fingerprints(request)
