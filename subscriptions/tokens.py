"""Signed, per-subscriber tokens for links in emails (no login needed).

Each token is `django.core.signing` output: HMAC-SHA256 under SECRET_KEY with a salt per
purpose, so a token made for one purpose (confirm) is refused for another (unsubscribe),
and nobody without the key can make one. Signing does not hide the payload, so it names
the subscriber by their random public id (never the row id, which tells list size and
growth, nor the address) and carries a keyed fingerprint of the address, so a token
stops working when the address on the row changes.

A digest signs two tokens per reader, so they are made here as `signing.dumps` makes them
without its per-call costs: the key derived once per purpose, the JSON written directly
(tests/subscriptions/test_tokens.py holds links made by `signing.dumps` itself). They are
read back with `signing.loads`, which also accepts the keys in SECRET_KEY_FALLBACKS.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Iterable, Iterator
from functools import lru_cache

from django.conf import settings
from django.core import signing
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import translation

from newsroom.links import absolute

UNSUBSCRIBE = "subscriptions.unsubscribe"
PREFERENCES = "subscriptions.preferences"
CONFIRM = "subscriptions.confirm"

# RFC 8058 links must keep working long after the email was sent.
UNSUBSCRIBE_MAX_AGE = 60 * 60 * 24 * 90
PREFERENCES_MAX_AGE = 60 * 60 * 24 * 90
# Double opt-in links expire after a week (settings.SUBSCRIPTIONS_CONFIRM_MAX_AGE_DAYS).
CONFIRM_MAX_AGE = 60 * 60 * 24 * settings.SUBSCRIPTIONS_CONFIRM_MAX_AGE_DAYS

# 64 bits: enough to tell addresses apart, short in a URL.
FINGERPRINT_LENGTH = 16


def fingerprint(email: str) -> str:
    """A keyed digest of the address: ties a token to it without revealing it.

    Keyed with SECRET_KEY (HMAC) so that, unlike a plain hash, nobody can test a guessed
    address against a token they have seen.
    """
    normalised = email.strip().lower()
    mac = _hmac("subscriptions.tokens.fingerprint", settings.SECRET_KEY)
    mac.update(normalised.encode())
    return mac.hexdigest()[:FINGERPRINT_LENGTH]


def fingerprint_matches(email: str, claimed: object) -> bool:
    """Whether `claimed` is the address's fingerprint under SECRET_KEY or a fallback key.

    Links signed before a key rotation still verify under SECRET_KEY_FALLBACKS
    (signing.loads), and so must the fingerprint they carry.
    """
    if not isinstance(claimed, str):
        return False
    normalised = email.strip().lower().encode()
    for secret in (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS):
        mac = _hmac("subscriptions.tokens.fingerprint", secret)
        mac.update(normalised)
        if hmac.compare_digest(mac.hexdigest()[:FINGERPRINT_LENGTH], claimed):
            return True
    return False


@lru_cache(maxsize=64)
def _keyed(key_salt: str, secret: str) -> hmac.HMAC:
    # django.utils.crypto.salted_hmac's key: SHA-256 of the salt then the secret. Derived
    # once per salt and secret, then copied for each message.
    key = hashlib.sha256(key_salt.encode() + secret.encode()).digest()
    return hmac.new(key, digestmod=hashlib.sha256)


def _hmac(key_salt: str, secret: str) -> hmac.HMAC:
    """salted_hmac(key_salt, ..., secret, algorithm="sha256"), before its message."""
    return _keyed(key_salt, secret).copy()


def subscriber_claim(subscriber) -> dict[str, str]:
    """What a link or cookie says about its reader: public id and address fingerprint."""
    return {"p": subscriber.public_id.hex, "e": fingerprint(subscriber.email)}


def subscriber_lookup(payload: dict) -> dict[str, object]:
    """The query naming the payload's subscriber; raise signing.BadSignature without one."""
    public_id = payload.get("p")
    if isinstance(public_id, str):
        try:
            return {"public_id": uuid.UUID(hex=public_id)}
        except ValueError as exc:
            raise signing.BadSignature("token payload has no subscriber") from exc
    # Older links and cookies named the primary key ("s"). Each is still refused once past
    # its own max age (CONFIRM_MAX_AGE, UNSUBSCRIBE_MAX_AGE, PREFERENCES_MAX_AGE, the follows
    # cookie's follows.MAX_AGE); once the longest has passed since public ids were
    # introduced, no valid one is left and this branch can be dropped.
    legacy = payload.get("s")
    if isinstance(legacy, int) and not isinstance(legacy, bool):
        return {"pk": legacy}
    raise signing.BadSignature("token payload has no subscriber")


def make_token(purpose: str, *, subscriber, newsletter_id: int | None = None) -> str:
    """signing.dumps(claim, salt=purpose), which signing.loads reads."""
    return _signed(purpose, _claim_json(subscriber), newsletter_id, _timestamp(int(time.time())))


def _claim_json(subscriber) -> str:
    """subscriber_claim's JSON, without its closing brace (a newsletter may follow).

    The claim is two hex strings (and a number): its JSON needs no escaping. It is not
    compressed: zlib shortens one such claim in a thousand, by three bytes at most.
    """
    return f'{{"p":"{subscriber.public_id.hex}","e":"{fingerprint(subscriber.email)}"'


def _signed(purpose: str, claim: str, newsletter_id: int | None, timestamp: str) -> str:
    payload = claim if newsletter_id is None else f'{claim},"n":{int(newsletter_id)}'
    value = f"{_b64(payload.encode() + b'}')}:{timestamp}"
    mac = _hmac(f"{purpose}signer", settings.SECRET_KEY)
    mac.update(value.encode())
    return f"{value}:{_b64(mac.digest())}"


@lru_cache(maxsize=1)
def _timestamp(now: int) -> str:
    # TimestampSigner's timestamp: the same for every token signed within a second.
    return signing.b62_encode(now)


def _b64(data: bytes) -> str:
    return signing.b64_encode(data).decode()


def read_token(purpose: str, token: str, *, max_age: int) -> dict:
    """Return the payload; raise signing.BadSignature (or SignatureExpired) otherwise."""
    payload = signing.loads(token, salt=purpose, max_age=max_age)
    if not isinstance(payload, dict):
        raise signing.BadSignature("token payload has no subscriber")
    subscriber_lookup(payload)
    return payload


def _reader_url(name: str, *, subscriber, token: str) -> str:
    """The page `name` in the reader's language: its URL's prefix is what decides it."""
    before, after = _around_token(name, *_resolved_by(subscriber.language))
    return absolute(f"{before}{token}{after}")


def _resolved_by(language: str | None) -> tuple:
    """The language, then what else reverse() depends on: the URLconf, the script prefix
    and the default language (so that a change of any of them is a new entry)."""
    return (language, *_url_setup())


def _url_setup() -> tuple:
    # The URLconf and script prefix are asgiref Locals: each read costs about a
    # microsecond, read once per batch of readers (readers_links), not per reader.
    return (get_urlconf(), get_script_prefix(), settings.ROOT_URLCONF, settings.LANGUAGE_CODE)


# A token is base64url and colons, which reverse() writes as they are: the path around one
# is the same for every token, so it is reversed once per page and language, not per reader.
_PLACEHOLDER = "0placeholder0"


@lru_cache(maxsize=256)
def _around_token(name: str, language: str | None, *resolved_by) -> tuple[str, str]:
    """The path of page `name` in `language` before and after its token (`resolved_by`:
    see _resolved_by)."""
    with translation.override(language):
        before, after = reverse(name, kwargs={"token": _PLACEHOLDER}).split(_PLACEHOLDER)
    return before, after


def confirm_url(*, subscriber) -> str:
    token = make_token(CONFIRM, subscriber=subscriber)
    return _reader_url("subscriptions:confirm", subscriber=subscriber, token=token)


def unsubscribe_url(*, subscriber, newsletter=None) -> str:
    token = make_token(
        UNSUBSCRIBE, subscriber=subscriber, newsletter_id=newsletter.pk if newsletter else None
    )
    return _reader_url("subscriptions:unsubscribe", subscriber=subscriber, token=token)


def preferences_url(*, subscriber) -> str:
    token = make_token(PREFERENCES, subscriber=subscriber)
    return _reader_url("subscriptions:preferences", subscriber=subscriber, token=token)


def reader_links(*, subscriber, newsletter=None) -> tuple[str, str]:
    """preferences_url and unsubscribe_url of one reader, the same bytes, made together.

    A digest makes both for every reader: their claim (and its fingerprint), timestamp
    and URL configuration are worked out once for the two.
    """
    [links] = readers_links([subscriber], newsletter=newsletter)
    return links


def readers_links(subscribers: Iterable, *, newsletter=None) -> Iterator[tuple[str, str]]:
    """reader_links of each of `subscribers` (a batch's readers), in their order: the URL
    configuration is read once for them all."""
    url_setup = _url_setup()
    newsletter_id = newsletter.pk if newsletter else None
    for subscriber in subscribers:
        claim = _claim_json(subscriber)
        timestamp = _timestamp(int(time.time()))
        resolved_by = (subscriber.language, *url_setup)
        before, after = _around_token("subscriptions:preferences", *resolved_by)
        preferences = f"{before}{_signed(PREFERENCES, claim, None, timestamp)}{after}"
        before, after = _around_token("subscriptions:unsubscribe", *resolved_by)
        unsubscribe = f"{before}{_signed(UNSUBSCRIBE, claim, newsletter_id, timestamp)}{after}"
        yield absolute(preferences), absolute(unsubscribe)


def list_unsubscribe_headers(*, subscriber, newsletter=None) -> dict[str, str]:
    """RFC 2369 List-Unsubscribe with RFC 8058 one-click POST."""
    return unsubscribe_headers(unsubscribe_url(subscriber=subscriber, newsletter=newsletter))


def unsubscribe_headers(url: str) -> dict[str, str]:
    """List-Unsubscribe headers for the reader's one-click unsubscribe link `url`.

    The mailto: is offered only when mail to it is received (INBOUND_EMAIL_ESP).
    """
    links = [f"<{url}>"]
    if settings.INBOUND_EMAIL_ESP:
        links.append(f"<mailto:{settings.UNSUBSCRIBE_MAILTO}?subject=unsubscribe>")
    return {
        "List-Unsubscribe": ", ".join(links),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
