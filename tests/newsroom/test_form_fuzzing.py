"""Each public form, posted with generated data shaped like its real fields, reaches its view.

The fixed hostile list in test_hostile_input throws garbage at every route; most of it is
turned away by routing or the method check before any form sees it. Here every example is
a plausible submission of one form (the fields its page sends, with values a reader or a
bot types), so almost all of them reach validation: each test counts where its examples
ended and fails when fewer than MOST of them reached the form, as well as on any 5xx.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from django.core.cache import cache
from hypothesis import given, settings
from hypothesis import strategies as st

from donations.forms import preset_amounts
from donations.models import Frequency, Gift, Placement
from subscriptions import tokens
from tests.donations.factories import AppealFactory
from tests.donations.strategies import HOSTILE_AMOUNTS, typed_amounts
from tests.newsroom.factories import CategoryFactory, TopicFactory
from tests.subscriptions.factories import NewsletterFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

# The share of examples that must reach the form's validation, not routing or a method check.
MOST = 0.8
# The same examples on every run, so the share that reaches the form cannot flicker in CI.
EXAMPLES = settings(max_examples=150, deadline=None, database=None, derandomize=True)
# The preferences page renders every time zone: fewer examples keep the suite quick.
FEWER = settings(max_examples=100, deadline=None, database=None, derandomize=True)

NASTY = st.sampled_from(
    ["\x00", "\u202e", "\u200f", "\ufeff", "<script>", "{{ x }}", "'; --", "\r\n", "ـ", "İ"]
)
# What a tampered page or a bot puts in any field: any Unicode, hostile pieces, long text.
TEXT = st.one_of(
    st.text(max_size=40),
    st.lists(st.one_of(NASTY, st.text(max_size=4)), max_size=8).map("".join),
    st.text(min_size=121, max_size=300),
)


def offered(values: list[str] | st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Mostly what the page offers (nine times in ten), otherwise anything at all."""
    choices = values if isinstance(values, st.SearchStrategy) else st.sampled_from(values)
    return st.integers(0, 9).flatmap(lambda roll: TEXT if roll == 0 else choices)


NAME = offered(["", "Rana Haddad", "ليلى حداد", "José Núñez", "O'Brien", "张伟"])
READER_EMAIL = st.sampled_from(["leila@mail.example", "Rana.Haddad+news@mail.example", "a@b.co"])
EMAIL = offered(
    st.one_of(
        READER_EMAIL,
        READER_EMAIL,
        st.emails(),
        st.sampled_from(["", "not-an-address", "@mail.example", "رنا@مثال.example"]),
        st.just("a" * 250 + "@mail.example"),
    )
)
ID = offered(st.one_of(st.integers(1, 5).map(str), st.sampled_from(["", "0", "-1", "²", "9" * 30])))
CHECKBOX = st.sampled_from([None, "on", "on", "", "off", "true"])


def form(fields: dict[str, object]) -> dict[str, object]:
    """The body a browser sends: unchecked boxes and empty multi-selects are left out."""
    return {key: value for key, value in fields.items() if value is not None}


def post(client, path: str, data: dict, **headers):
    # Each example is a new reader: rate limits count no earlier example.
    cache.clear()
    response = client.post(path, data, **headers)
    assert response.status_code < 500, (path, data, response.status_code)
    return response


def templates(response) -> set[str]:
    return {template.name for template in response.templates}


def assert_most_reached_the_form(outcomes: Counter) -> None:
    total = sum(outcomes.values())
    reached = total - outcomes["not reached"]
    assert reached >= MOST * total, outcomes
    assert outcomes["accepted"] > 0, outcomes


# --- donate --------------------------------------------------------------------------------

CUSTOM_AMOUNT = st.one_of(
    typed_amounts(currency="usd", largest=3_000_000).map(lambda typed: typed[1]),
    typed_amounts(currency="usd", largest=3_000_000).map(lambda typed: typed[1]),
    HOSTILE_AMOUNTS,
    TEXT,
)


@st.composite
def donate_forms(draw) -> dict:
    frequency = draw(offered(list(Frequency.values)))
    presets = preset_amounts(appeal=None, frequency=frequency) if frequency in Frequency else []
    dedication = draw(offered(["", "", "honor", "memory"]))
    amount = draw(offered([*map(str, presets), "other", "other"]))
    # The page's script empties nothing, but a reader who picks a preset rarely types.
    typed = draw(CUSTOM_AMOUNT if amount == "other" else offered([""]))
    return form(
        {
            "frequency": frequency,
            "amount": amount,
            "custom_amount": typed,
            "cover_fee": draw(CHECKBOX),
            "name": draw(NAME),
            "email": draw(EMAIL),
            "anonymous": draw(CHECKBOX),
            "dedication": dedication,
            "honoree_name": draw(NAME) if dedication else "",
            "honoree_email": draw(st.one_of(st.just(""), EMAIL)),
            # The honeypot: empty from people, filled by some bots.
            "website": draw(st.sampled_from(["", "", "", "", "http://spam.example"])),
            "appeal": draw(st.one_of(st.just(""), ID)),
            "placement": draw(offered(["", *Placement.values])),
            "article": draw(st.one_of(st.just(""), ID)),
            "utm_source": draw(offered(["", "newsletter", "x.com"])),
            "utm_campaign": draw(offered(["", "year-end", "حملة"])),
        }
    )


def test_the_donate_form_answers_every_shaped_submission_at_its_validation(
    client, donation_settings, fake_stripe
):
    AppealFactory()  # a banner appeal: its id is one of those a link may carry
    outcomes = Counter()

    @EXAMPLES
    @given(data=donate_forms())
    def submit(data):
        response = post(client, "/donate/", data)
        if response.status_code == 303:
            outcomes["accepted"] += 1
            gift = Gift.objects.order_by("-pk").first()
            assert 500 <= gift.amount_cents - gift.fee_cents <= 2_500_000
        elif "donations/donate.html" in templates(response) and response.status_code == 400:
            outcomes["refused with a message"] += 1
        elif response.status_code == 400 and b"could not be processed" in response.content:
            outcomes["honeypot"] += 1
        else:
            outcomes["not reached"] += 1

    submit()
    assert_most_reached_the_form(outcomes)


# --- subscribe -----------------------------------------------------------------------------


def test_the_subscribe_form_answers_every_shaped_submission_at_its_validation(client):
    ids = [str(NewsletterFactory().pk) for _ in range(3)]
    NewsletterFactory(active=False)
    outcomes = Counter()

    @EXAMPLES
    @given(
        email=EMAIL,
        newsletters=st.lists(offered(ids), max_size=4),
        time_zone=offered(["Asia/Amman", "Europe/Paris", "UTC", ""]),
        consent_version=offered(["2026-01", ""]),
        source=offered(["footer", "newsletters-page"]),
        website=st.sampled_from(["", "", "", "http://spam.example"]),
    )
    def submit(email, newsletters, time_zone, consent_version, source, website):
        data = {
            "email": email,
            "time_zone": time_zone,
            "consent_version": consent_version,
            "source": source,
            "website": website,
        }
        if newsletters:
            data["newsletters"] = newsletters
        response = post(client, "/newsletters/subscribe/", data)
        if "subscriptions/check_inbox.html" in templates(response):
            outcomes["accepted"] += 1
        elif "subscriptions/newsletters.html" in templates(response):
            outcomes["refused with a message"] += 1
        else:
            outcomes["not reached"] += 1

    submit()
    assert_most_reached_the_form(outcomes)


# --- preferences ---------------------------------------------------------------------------


def test_the_preferences_form_answers_every_shaped_submission_at_its_validation(client):
    newsletters = [str(NewsletterFactory().pk) for _ in range(2)]
    categories = [str(CategoryFactory().pk) for _ in range(2)]
    topics = [str(TopicFactory().pk) for _ in range(2)]
    outcomes = Counter()

    @FEWER
    @given(
        action=offered(["save", "save", "pause", "resume", "unsubscribe", "link_browser"]),
        newsletters=st.lists(offered(newsletters), max_size=3),
        categories=st.lists(offered(categories), max_size=3),
        topics=st.lists(offered(topics), max_size=3),
        time_zone=offered(["Asia/Amman", "Asia/Tehran", "America/New_York"]),
        newsletter=st.one_of(st.just(""), offered(newsletters)),
        confirm=CHECKBOX,
        delete=st.integers(0, 9),
    )
    def submit(action, newsletters, categories, topics, time_zone, newsletter, confirm, delete):
        # A reader of their own: "delete" (one example in ten) leaves no one for the next.
        subscriber = SubscriptionFactory().subscriber
        path = tokens.preferences_url(subscriber=subscriber).split("://", 1)[-1]
        path = path[path.index("/") :]
        data = form(
            {
                "action": "delete" if delete == 0 else action,
                "newsletters": newsletters or None,
                "categories": categories or None,
                "topics": topics or None,
                "time_zone": time_zone,
                "newsletter": newsletter,
                "confirm": confirm,
            }
        )
        response = post(client, path, data)
        used = templates(response)
        if response.status_code == 303 or "subscriptions/deleted.html" in used:
            outcomes["accepted"] += 1
        elif "subscriptions/preferences.html" in used or "subscriptions/follow_error.html" in used:
            outcomes["refused with a message"] += 1
        else:
            outcomes["not reached"] += 1

    submit()
    assert_most_reached_the_form(outcomes)


# --- follow --------------------------------------------------------------------------------


def test_the_follow_endpoint_answers_every_shaped_submission_at_its_validation(client):
    categories = [CategoryFactory().slug for _ in range(2)]
    topics = [TopicFactory().slug for _ in range(2)]
    outcomes = Counter()

    @EXAMPLES
    @given(
        kind=offered(["category", "topic"]),
        slug=offered([*categories, *topics]),
        action=offered(["", "toggle", "follow", "unfollow"]),
        next_url=offered(["", "/", "/articles/port-traffic/", "//evil.example/"]),
        wants_json=st.booleans(),
    )
    def submit(kind, slug, action, next_url, wants_json):
        client.cookies.clear()
        data = {"kind": kind, "slug": slug, "action": action, "next": next_url}
        headers = {"HTTP_ACCEPT": "application/json"} if wants_json else {}
        response = post(client, "/follow/", data, **headers)
        if wants_json and response["Content-Type"] == "application/json":
            body = json.loads(response.content)
            outcome = "accepted" if "following" in body else "refused with a message"
        elif "subscriptions/follow_done.html" in templates(response):
            outcome = "accepted"
        elif "subscriptions/follow_error.html" in templates(response):
            outcome = "refused with a message"
        else:
            outcome = "not reached"
        outcomes[outcome] += 1

    submit()
    assert_most_reached_the_form(outcomes)


# --- manage my giving ----------------------------------------------------------------------


def test_the_manage_my_giving_form_answers_every_shaped_submission_at_its_validation(
    client, donation_settings
):
    outcomes = Counter()

    @EXAMPLES
    @given(email=EMAIL, extra=st.dictionaries(offered(["next", "token"]), TEXT, max_size=2))
    def submit(email, extra):
        response = post(client, "/donate/manage/", {**extra, "email": email})
        if "donations/manage_sent.html" in templates(response):
            outcomes["accepted"] += 1
        elif "donations/manage_request.html" in templates(response):
            outcomes["refused with a message"] += 1
        else:
            outcomes["not reached"] += 1

    submit()
    assert_most_reached_the_form(outcomes)
