"""Every public page carries a Content Security Policy: no inline script, no foreign origin."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from subscriptions import tokens
from subscriptions.digest.compose import edition_compose
from tests.helpers import login_staff
from tests.newsroom.factories import ArticleFactory, AuthorFactory, CategoryFactory, TopicFactory
from tests.subscriptions.factories import NewsletterFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

STRIPE_ORIGINS = {"https://checkout.stripe.com", "https://billing.stripe.com"}


def policy_of(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def foreign_origins(values: list[str]) -> set[str]:
    return {
        v for v in values if re.match(r"^(https?:)?//|^[a-z0-9.-]+\.[a-z]{2,}|^\*|^https?:$", v)
    }


@pytest.fixture
def public_pages(settings):
    author = AuthorFactory(slug="rana-haddad")
    topic = TopicFactory(slug="water")
    category = CategoryFactory(slug="economy", name="Economy")
    article = ArticleFactory(
        slug="port-traffic", category=category, authors=[author], topics=[topic]
    )
    newsletter = NewsletterFactory()
    subscriber = SubscriptionFactory(newsletter=newsletter).subscriber
    edition = edition_compose(newsletter=newsletter, date=timezone.localdate())
    site = settings.SITE_URL
    return {
        "home": reverse("home"),
        "article": article.get_absolute_url(),
        "category": reverse("category", kwargs={"slug": "economy"}),
        "category feed": reverse("category_feed", kwargs={"slug": "economy"}),
        "topic": reverse("topic", kwargs={"slug": "water"}),
        "author": reverse("author", kwargs={"slug": "rana-haddad"}),
        "search": reverse("search") + "?q=port",
        "browse": reverse("browse"),
        "feed": reverse("feed"),
        "sitemap": reverse("sitemap"),
        "robots": reverse("robots_txt"),
        "donate": reverse("donations:donate"),
        "donate monthly": reverse("donations:donate") + "?frequency=monthly",
        "thanks": reverse("donations:thanks"),
        "cancelled": reverse("donations:cancelled"),
        "manage my giving": reverse("donations:manage"),
        "newsletters": reverse("subscriptions:newsletters"),
        "for you": reverse("subscriptions:for_you"),
        "preferences": tokens.preferences_url(subscriber=subscriber).removeprefix(site),
        "unsubscribe": tokens.unsubscribe_url(subscriber=subscriber).removeprefix(site),
        "confirm": tokens.confirm_url(subscriber=subscriber).removeprefix(site),
        "archive": reverse("subscriptions:edition_archive", kwargs={"slug": newsletter.slug}),
        "edition": edition.get_absolute_url(),
        "terms": reverse("subscriptions:terms"),
        "privacy": reverse("subscriptions:privacy"),
        "not found": "/no-such-page/",
    }


def test_every_public_page_has_a_policy_without_inline_scripts_or_foreign_origins(
    client, public_pages
):
    for name, url in public_pages.items():
        response = client.get(url)
        assert response.status_code == (404 if name == "not found" else 200), name
        assert "Content-Security-Policy" in response, f"{name} ({url}) has no policy"
        policy = policy_of(response)

        assert policy["default-src"] == ["'self'"], name
        assert policy["frame-ancestors"] == ["'none'"], name
        assert policy["object-src"] == ["'none'"], name
        for directive in ("script-src", "style-src"):
            assert "'unsafe-inline'" not in policy[directive], f"{name}: {directive}"
            assert "'unsafe-eval'" not in policy[directive], f"{name}: {directive}"
        for directive, values in policy.items():
            allowed = STRIPE_ORIGINS if directive == "form-action" else set()
            assert foreign_origins(values) <= allowed, f"{name}: {directive} {values}"


def test_the_donate_form_may_go_to_stripe_checkout_and_nowhere_else(client, public_pages):
    policy = policy_of(client.get(public_pages["donate"]))

    assert set(policy["form-action"]) == {"'self'", *STRIPE_ORIGINS}
    assert "https://checkout.stripe.com" not in policy["script-src"]


def test_public_pages_carry_no_nonce_so_cached_copies_stay_valid(client, public_pages):
    """A cached page is served to many readers; a nonce in it would be one reader's."""
    for name in ("home", "article", "donate", "newsletters"):
        response = client.get(public_pages[name])
        assert "'nonce-" not in response["Content-Security-Policy"], name
        assert "nonce=" not in response.content.decode(), name


def test_public_pages_have_no_inline_script_or_style(client, public_pages):
    inline_script = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/ld\+json)[^>]*>", re.I)
    for name, url in public_pages.items():
        body = client.get(url).content.decode()
        assert not inline_script.search(body), name
        assert "<style" not in body, name
        assert not re.search(r"\son[a-z]+=", body), name
        assert not re.search(r"\sstyle=", body), name
        assert "javascript:" not in body, name


def test_the_admin_allows_its_inline_styles_but_no_inline_script(client):
    login_staff(client)

    policy = policy_of(client.get(reverse("admin:index")))

    assert "'unsafe-inline'" in policy["style-src"]
    assert "'unsafe-inline'" not in policy["script-src"]
    assert policy["frame-ancestors"] == ["'none'"]


@pytest.mark.parametrize("path", ["/", "/ar/news/a-story/", "/healthz", "/admin/"])
@pytest.mark.parametrize("report_only", [False, True])
def test_the_kept_policy_is_the_one_django_csp_builds(settings, path, report_only):
    from csp.constants import HEADER, HEADER_REPORT_ONLY
    from csp.middleware import CSPMiddleware as DjangoCSPMiddleware
    from django.http import HttpResponse
    from django.test import RequestFactory

    from newsroom.security import CSPMiddleware

    settings.ADMIN_URL = "admin/"
    if report_only:
        settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {
            "DIRECTIVES": {"default-src": ["'none'"], "report-uri": "/csp-reports/"}
        }
    middleware = CSPMiddleware(lambda request: HttpResponse())

    def headers(process_response) -> dict[str, str]:
        request = RequestFactory().get(path)
        middleware.process_request(request)
        response = process_response(middleware, request, HttpResponse())
        return {h: response[h] for h in (HEADER, HEADER_REPORT_ONLY) if h in response}

    for _ in range(2):  # built, then kept
        ours = headers(CSPMiddleware.process_response)
        assert ours == headers(DjangoCSPMiddleware.process_response)
    assert (HEADER_REPORT_ONLY in ours) is report_only


def test_a_changed_policy_is_served_at_once(client, settings):
    client.get("/")
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'self'"]}}

    assert client.get("/")["Content-Security-Policy"] == "default-src 'self'"


def test_a_nonce_used_by_a_page_is_in_its_policy():
    from django.http import HttpResponse
    from django.test import RequestFactory

    from newsroom.security import CSPMiddleware

    middleware = CSPMiddleware(lambda request: HttpResponse())
    request = RequestFactory().get("/")
    middleware.process_request(request)
    nonce = str(request.csp_nonce)

    response = middleware.process_response(request, HttpResponse())

    assert f"'nonce-{nonce}'" in response["Content-Security-Policy"]
