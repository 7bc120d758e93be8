"""Every public URL survives hostile input: no combination of method, query and body gives a 5xx.

The URLs come from the URLconf itself, so a new public route is fuzzed as soon as it
exists (and `test_every_public_route_is_fuzzed` fails if it cannot be filled in).
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote_from_bytes

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from donations import reader_state, stripe_api
from donations import services as donation_services
from subscriptions import follows, tokens
from subscriptions.digest.compose import edition_compose
from tests.donations.factories import AppealFactory, PaidGiftFactory
from tests.donations.fixtures import DOORWAY, FakeStripe
from tests.newsroom.factories import ArticleFactory, AuthorFactory, CategoryFactory, TopicFactory
from tests.subscriptions.factories import NewsletterFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "multipart/form-data; boundary=----b0undary",
    "application/json",
    "text/plain; charset=utf-8",
    "application/octet-stream",
    "text/xml",
    "",
]
# Routes that only staff or the file server answer; everything else is public.
NOT_PUBLIC = ("admin/", "media/")


def public_routes() -> list[str]:
    """Every route of the URLconf outside the admin and media, as its pattern text."""

    def walk(patterns, prefix=""):
        for pattern in patterns:
            text = str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + text)
            elif isinstance(pattern, URLPattern):
                yield prefix + text

    from django.conf import settings as django_settings

    hidden = (django_settings.ADMIN_URL, *NOT_PUBLIC)
    return [route for route in walk(get_resolver().url_patterns) if not route.startswith(hidden)]


def fill(route: str, values: dict[str, str]) -> str:
    """A concrete path for a route pattern, with each parameter taken from `values`."""
    path = route.replace("^", "").replace("$", "").replace("(_mime)?", "")
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: values[m.group(1)], path)
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], path)
    path = path.replace("\\", "")
    return "/" + path


@pytest.fixture
def world(monkeypatch, settings):
    """Real content for every parameter a route takes, and Stripe's doorway faked."""
    settings.DONATION_MIN_CENTS = 500
    fake = FakeStripe()
    for name in DOORWAY:
        monkeypatch.setattr(stripe_api, name, getattr(fake, name))
    author = AuthorFactory(slug="rana-haddad")
    topic = TopicFactory(slug="water")
    category = CategoryFactory(slug="economy", name="Economy")
    ArticleFactory(slug="port-traffic", category=category, authors=[author], topics=[topic])
    newsletter = NewsletterFactory()
    subscriber = SubscriptionFactory(newsletter=newsletter).subscriber
    edition = edition_compose(newsletter=newsletter, date=timezone.localdate())
    appeal = AppealFactory()
    gift = PaidGiftFactory()
    valid_tokens = {
        "preferences": tokens.preferences_url(subscriber=subscriber).rsplit("/", 2)[-2],
        "unsubscribe": tokens.unsubscribe_url(subscriber=subscriber).rsplit("/", 2)[-2],
        "confirm": tokens.confirm_url(subscriber=subscriber).rsplit("/", 2)[-2],
        "manage": donation_services.manage_token_make(email=gift.donor_email),
    }
    routes = public_routes()
    paths = []
    for route in routes:
        slug = {
            "articles/": "port-traffic",
            "category/": "economy",
            "topic/": "water",
            "author/": "rana-haddad",
        }.get(route.lstrip("^").split("(")[0], newsletter.slug)
        token = next((t for key, t in valid_tokens.items() if key in route), "x")
        values = {
            "slug": slug,
            "pk": str(appeal.pk if "/a/" in route else gift.pk),
            "token": token,
            "date": edition.date.isoformat(),
        }
        paths.append(fill(route, values))
    return {"routes": routes, "paths": paths}


def test_every_public_route_is_fuzzed(world):
    """Each route, filled with real values, resolves: the fuzzing below reaches every view."""
    assert len(world["paths"]) == len(world["routes"]) > 30
    assert {
        "/donate/",
        "/webhooks/stripe/",
        "/newsletters/subscribe/",
        "/follow/",
        "/search/",
    } <= set(world["paths"])
    for path in world["paths"]:
        resolve(path)  # raises Resolver404 for a path that misses its route


# --- hostile pieces ----------------------------------------------------------------------

NASTY_CHARS = st.sampled_from(
    [
        "\x00",
        "\u200f",
        "\u202e",
        "\u200b",
        "\ufeff",
        "\ud800",
        "\udfff",
        "\U0001f4a3",
        "%",
        "%00",
        "%zz",
        "&",
        "=",
        "+",
        "[",
        "]",
        "\\",
        "'",
        '"',
        "<script>",
        "{{",
        "{%",
        "../",
        "\r\n",
        "\t",
        " " * 3,
        "ـ",
        "مرحبا",
        "שלום",
        "ß",
        "İ",
        "\u0301",
    ]
)
TEXT = st.one_of(
    st.text(max_size=40),
    st.lists(st.one_of(NASTY_CHARS, st.text(max_size=5)), max_size=12).map("".join),
    st.builds(lambda c, n: c * n, NASTY_CHARS, st.integers(1_000, 60_000)),  # oversized
    st.sampled_from(
        [
            "5",
            "-1",
            "0",
            "1e309",
            "NaN",
            "99999999999999999999",
            "9" * 40,
            "1e30",
            "²",
            "\u0661\u0662",
            "2026-13-45",
            "one_time",
            "monthly",
            "annual",
            "true",
            "null",
            "[]",
            "{}",
        ]
    ),
)
KEY = st.one_of(
    st.sampled_from(
        [
            "email",
            "name",
            "amount",
            "custom_amount",
            "frequency",
            "cover_fee",
            "newsletters",
            "newsletter",
            "category",
            "topic",
            "action",
            "next",
            "q",
            "page",
            "token",
            "session_id",
            "csrfmiddlewaretoken",
            "time_zone",
            "dedication",
            "honoree_name",
            "a[b][c]",
            "a[]",
            "a[0][1]",
            "email[]",
            "__proto__",
            "",
        ]
    ),
    TEXT,
)
PAIRS = st.lists(st.tuples(KEY, TEXT), max_size=25)
COOKIES = [reader_state.COOKIE_NAME, follows.COOKIE, "sessionid", "csrftoken"]
# What a browser can send in a cookie: printable ASCII without separators.
COOKIE_VALUE = st.one_of(
    st.text(
        st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=';,"\\'),
        max_size=300,
    ),
    st.sampled_from(["", "e30:1abc:xyz", "null", "W10", "eyJzIjoxfQ:1v:sig"]),
)


def encode(text: str) -> bytes:
    """UTF-8, with lone surrogates written as the invalid bytes a hostile client sends."""
    return text.encode("utf-8", "surrogatepass")


def form_bytes(pairs: list[tuple[str, str]]) -> bytes:
    return b"&".join(
        quote_from_bytes(encode(k)).encode() + b"=" + quote_from_bytes(encode(v)).encode()
        for k, v in pairs
    )


def multipart_bytes(pairs: list[tuple[str, str]]) -> bytes:
    parts = [
        b'------b0undary\r\nContent-Disposition: form-data; name="'
        + encode(k)
        + b'"\r\n\r\n'
        + encode(v)
        for k, v in pairs
    ]
    return b"\r\n".join([*parts, b"------b0undary--\r\n"])


BODY = st.one_of(
    st.just(b""),
    st.binary(max_size=2_000),
    PAIRS.map(form_bytes),
    PAIRS.map(multipart_bytes),
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXT),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)
        ),
        max_leaves=12,
    ).map(lambda value: json.dumps(value).encode()),
)


def assert_survives(client, method: str, path: str, query: bytes, body: bytes, content_type: str):
    url = f"{path}?{query.decode()}" if query else path
    response = client.generic(method, url, body, content_type=content_type)
    assert response.status_code < 500, (
        f"{method} {url[:200]} ({content_type}, {len(body)} bytes) -> {response.status_code}"
    )


@settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(data=st.data())
def test_no_public_url_answers_hostile_input_with_a_server_error(client, world, data):
    path = data.draw(st.sampled_from(world["paths"]), label="path")
    if "<token>" not in path and data.draw(st.booleans(), label="garbage in the path"):
        # Swap a path segment for garbage: tokens, slugs and ids that were never issued.
        segments = path.strip("/").split("/")
        index = data.draw(st.integers(0, len(segments) - 1))
        segments[index] = quote_from_bytes(encode(data.draw(TEXT, label="segment")))[:4000]
        path = "/" + "/".join(segments) + "/"
    method = data.draw(st.sampled_from(METHODS), label="method")
    query = form_bytes(data.draw(PAIRS, label="query"))
    body = data.draw(BODY, label="body") if method not in ("GET", "HEAD") else b""
    content_type = data.draw(st.sampled_from(CONTENT_TYPES), label="content type")
    # The cookies the site reads (appeal state, anonymous follows, the session), forged.
    client.cookies.clear()
    for name in data.draw(
        st.lists(st.sampled_from(COOKIES), unique=True, max_size=3), label="cookies"
    ):
        client.cookies[name] = data.draw(COOKIE_VALUE, label=name)

    assert_survives(client, method, path, query, body, content_type)


def test_every_route_and_method_survives_a_fixed_set_of_hostile_requests(client, world):
    """The sweep hypothesis might miss: each route, each method, the classic payloads."""
    nasty = [
        ("a[b][c]", "\x00\u202e\ud800"),
        ("email", "x" * 100_000),
        ("email", "a@b.c"),
        ("email", "b@c.d"),
        ("amount", "1e309"),
        ("newsletters", "-1"),
        ("page", "\x00"),
        ("q", "\u200f" * 500),
        ("next", "//evil.example/"),
        ("frequency", "\ud800"),
    ]
    for path in world["paths"]:
        for method in METHODS:
            for content_type, body in (
                ("application/x-www-form-urlencoded", form_bytes(nasty)),
                ("multipart/form-data; boundary=----b0undary", multipart_bytes(nasty)),
                ("application/json", b'{"type": [], "id": {"a": null}, "data": "\\u0000"}'),
            ):
                sent = b"" if method in ("GET", "HEAD") else body
                assert_survives(
                    client, method, path, form_bytes(nasty[:3] + nasty[5:]), sent, content_type
                )


def test_an_email_provider_webhook_that_is_not_configured_answers_404(client):
    """Mailgun and Mandrill need a key, none set: not found, not a crash."""
    for path in ("/webhooks/anymail/mailgun/tracking/", "/webhooks/anymail/mandrill/tracking/"):
        assert client.post(path, b"{}", content_type="application/json").status_code == 404
    # Amazon SES needs only boto3 (installed) and the basic auth it is first answered 401 for.
    ses = client.post("/webhooks/anymail/amazon_ses/tracking/", b"{}", content_type="text/plain")
    assert ses.status_code == 401
    # Inbound mail is never received here.
    assert (
        client.post(
            "/webhooks/anymail/postmark/inbound/", b"{}", content_type="application/json"
        ).status_code
        == 404
    )


# --- integers in query strings and forms ----------------------------------------------

# What `str.isdigit()` accepts and `int()` refuses or misreads, and numbers past any id.
NUMBERS = ["²", "\u0661\u0662", "1e30", "-1", "9" * 40, "NaN"]
# Every query parameter a public view reads.
QUERY_PARAMETERS = [
    "page",
    "q",
    "appeal",
    "amount",
    "frequency",
    "placement",
    "article",
    "session_id",
    "check",
    "p",
    "done",
    "next",
    *(f"utm_{part}" for part in ("source", "medium", "campaign", "term", "content")),
]


@pytest.mark.parametrize("value", NUMBERS)
def test_no_public_page_answers_a_hostile_number_in_its_query_with_a_server_error(
    client, world, value
):
    # Each view parses each parameter on its own, so one request can carry them all; the
    # thanks page reads `check` beside a session id that looks real.
    every = form_bytes([(parameter, value) for parameter in QUERY_PARAMETERS])
    beside_a_session = form_bytes(
        [(p, "cs_x" if p == "session_id" else value) for p in QUERY_PARAMETERS]
    )
    for path in world["paths"]:
        for query in (every, beside_a_session):
            assert_survives(client, "GET", path, query, b"", "")


@pytest.mark.parametrize("value", NUMBERS)
@pytest.mark.parametrize("field", ["amount", "custom_amount", "appeal", "article"])
def test_the_donate_form_answers_a_hostile_number_without_a_server_error(
    client, world, field, value
):
    fields = {"frequency": "one_time", "amount": "other", "custom_amount": "30"}
    fields.update({"email": "rana@mail.example", field: value})
    body = form_bytes(list(fields.items()))
    assert_survives(client, "POST", "/donate/", b"", body, "application/x-www-form-urlencoded")


@pytest.mark.parametrize("value", NUMBERS)
def test_the_thanks_page_answers_a_hostile_check_count_without_a_server_error(client, value):
    gift = PaidGiftFactory(stripe_checkout_session_id="cs_test_hostile", paid_at=None)
    query = form_bytes([("session_id", gift.stripe_checkout_session_id), ("check", value)])
    assert_survives(client, "GET", "/donate/thanks/", query, b"", "")


@pytest.mark.parametrize("value", NUMBERS)
def test_the_preferences_page_answers_a_hostile_newsletter_id_without_a_server_error(
    client, world, value
):
    path = next(p for p in world["paths"] if p.startswith("/preferences/") and p.endswith("/"))
    body = form_bytes([("action", "unsubscribe"), ("newsletter", value)])
    assert_survives(client, "POST", path, b"", body, "application/x-www-form-urlencoded")
