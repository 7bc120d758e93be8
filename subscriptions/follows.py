"""The reader's follows as the browser carries them: a signed cookie.

An anonymous reader's follows live in the cookie itself. Once the reader confirms an
email in this browser, the cookie instead names the subscriber (id and address
fingerprint, signed), and follows are read from and written to their Follow rows.
The cookie is set only in answer to a POST or the confirmation link, never on a plain
GET of a public page, so cached pages stay cacheable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse

from subscriptions import tokens
from subscriptions.models import Subscriber
from subscriptions.services import MAX_FOLLOWS, FollowRefs

COOKIE = "newsroom_follows"
SALT = "subscriptions.follows"
MAX_AGE = 60 * 60 * 24 * 365


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
    if isinstance(data.get("s"), int):
        subscriber = Subscriber.objects.filter(pk=data["s"]).first()
        if subscriber is not None and data.get("e") == tokens.fingerprint(subscriber.email):
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
    _set(response, {"s": subscriber.pk, "e": tokens.fingerprint(subscriber.email)})
