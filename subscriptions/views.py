"""Pages of the subscriptions app: signup, confirmation, following, preferences, leaving.

Two kinds of page live here:
- public ones that may be cached (/newsletters/, /terms/, /privacy/) and the endpoints
  their forms post to (subscribe, follow): no session, no CSRF cookie, no cookie on GET.
  The endpoints are csrf_exempt and defend themselves with rate limits, validation, and
  double opt-in (a subscription does nothing until the mailbox owner clicks);
- per-reader ones reached by a signed link or the reader's own cookie (confirm,
  preferences, unsubscribe, /for-you/): never cached (`private, no-store`) and sent with
  `Referrer-Policy: no-referrer` so a token in the URL does not leak to other sites.
"""

from __future__ import annotations

import ipaddress
import json

from django.conf import settings
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from newsroom import ratelimit
from newsroom.models import Category, Topic
from newsroom.parsing import parse_int
from newsroom.security import client_ip
from subscriptions import appeals, selectors, services, tokens
from subscriptions import follows as reader_follows
from subscriptions.forms import DeleteForm, FollowForm, PreferencesForm, SignupForm
from subscriptions.models import Newsletter, Subscription

# Per client address: enough for a household behind one NAT, too few for a list-bomber.
SUBSCRIBE_RATE = "10/10m"
FOLLOW_RATE = "120/10m"


def _meta(request: HttpRequest, source: str) -> services.RequestMeta:
    try:
        ip = str(ipaddress.ip_address(client_ip(request)))
    except ValueError:  # a proxy passed something that is not an address
        ip = None
    return services.RequestMeta(
        ip=ip,
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
        source=source,
    )


def _private(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


def _too_many(request: HttpRequest) -> HttpResponse:
    response = render(request, "subscriptions/too_many.html", status=429)
    response["Retry-After"] = "600"
    return _private(response)


def _invalid_link(request: HttpRequest) -> HttpResponse:
    return _private(render(request, "subscriptions/invalid_link.html", status=400))


# --- public pages ------------------------------------------------------------------------------


@require_GET
def newsletters(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "subscriptions/newsletters.html",
        {"newsletters": selectors.active_newsletters()},
    )


@require_GET
def terms(request: HttpRequest) -> HttpResponse:
    return render(request, "subscriptions/legal/terms.html")


@require_GET
def privacy(request: HttpRequest) -> HttpResponse:
    return render(request, "subscriptions/legal/privacy.html")


@csrf_exempt  # posted from cached pages that carry no CSRF token; see the module docstring
@require_POST
def subscribe(request: HttpRequest) -> HttpResponse:
    # Open when the cache cannot count: an address gets one confirmation an hour however
    # often it is signed up (services.signup), and sign-up must not fall with Redis.
    if not ratelimit.allow(
        f"subscribe:{client_ip(request)}", rate=SUBSCRIBE_RATE, when_cache_fails=ratelimit.FAIL_OPEN
    ):
        return _too_many(request)
    form = SignupForm(request.POST)
    if not form.is_valid():
        response = render(
            request,
            "subscriptions/newsletters.html",
            {"newsletters": selectors.active_newsletters(), "form": form},
            status=400,
        )
        return _private(response)
    data = form.cleaned_data
    if not data["website"]:
        services.subscription_request(
            email=data["email"],
            newsletter_ids=[newsletter.pk for newsletter in data["newsletters"]],
            time_zone=data["time_zone"],
            consent_version=data["consent_version"],
            meta=_meta(request, data["source"]),
            # Unless the reader chose otherwise, the language of the page they signed up on.
            language=data["language"] or translation.get_language(),
        )
    # The same answer for a new, pending, confirmed or suppressed address (no enumeration).
    response = render(
        request,
        "subscriptions/check_inbox.html",
        {
            "email": services.normalize_email(data["email"]),
            "valid_days": settings.SUBSCRIPTIONS_CONFIRM_MAX_AGE_DAYS,
        },
    )
    reader_follows.mark_signup(request, response, email=data["email"])
    return _private(response)


def _masked(email: str) -> str:
    """Enough of an address for its owner to know it, too little for anyone else to read it."""
    local, _, domain = email.partition("@")
    host, dot, tld = domain.rpartition(".")
    return f"{local[:1]}•••@{host[:1]}•••{dot}{tld}" if host else f"{local[:1]}•••@{domain}"


def _confirmed_page(
    request: HttpRequest, subscriber, *, signed_up_here: bool = False, **context
) -> HttpResponse:
    masked = _masked(subscriber.email)
    return render(
        request,
        "subscriptions/confirmed.html",
        {
            "subscriber": subscriber,
            # The whole address only to the browser that typed it: a link can be forwarded.
            "shown_email": subscriber.email if signed_up_here else masked,
            "masked_email": masked,
            "active": Subscription.objects.filter(
                subscriber=subscriber, status=Subscription.Status.ACTIVE
            ).select_related("newsletter"),
            "preferences_url": tokens.preferences_url(subscriber=subscriber),
            **context,
        },
    )


def _confirm_subscriber(request: HttpRequest, token: str):
    return selectors.subscriber_from_token(tokens.CONFIRM, token, max_age=tokens.CONFIRM_MAX_AGE)[0]


@never_cache
@require_GET
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    """Confirm by opening the link: one click, as double opt-in asks.

    A GET that changes state is tolerable here because it is idempotent and can only do
    what the mailbox's owner asked for on our form: opening the link again (a mail
    client's link scanner, a second click) activates nothing new, records no second
    consent line and sends nothing. A scanner that opens it for a reader who never asked
    confirms a request somebody made with this address: the first email then carries
    one-click unsubscribe, and the consent record keeps the IP and user agent of both.

    The link confirms the address; it binds this browser to the subscriber, and merges
    the browser's follows into theirs, only when this browser is the one that signed up.
    Anyone can be sent a link: a browser that did not ask is offered a button instead.
    """
    try:
        subscriber = _confirm_subscriber(request, token)
    except selectors.TokenInvalid:
        return _invalid_link(request)
    if selectors.suppressed_among([subscriber.email]):
        return _private(render(request, "subscriptions/confirm_suppressed.html", status=409))
    current = reader_follows.read(request)
    linked = current.subscriber is not None and current.subscriber.pk == subscriber.pk
    signed_up_here = reader_follows.signed_up_here(request, email=subscriber.email)
    merge = signed_up_here and current.subscriber is None
    refs = current.refs()
    activated = services.subscription_confirm(
        subscriber=subscriber,
        meta=_meta(request, "confirmation-link"),
        follows=refs if merge else None,
    )
    response = _confirmed_page(
        request,
        subscriber,
        signed_up_here=signed_up_here,
        activated=activated,
        offer_link=not (linked or signed_up_here),
        browser_follows=current.subscriber is None and bool(refs.category_ids or refs.topic_ids),
        browser_subscriber=current.subscriber is not None,
        token=token,
    )
    if signed_up_here and not linked:
        reader_follows.link_subscriber(response, subscriber)
    appeals.mark_subscriber(request, response)
    return _private(response)


@never_cache
@require_POST
def confirm_browser(request: HttpRequest, token: str) -> HttpResponse:
    """The reader's answer to "link this browser?" on the confirmation page (CSRF-protected)."""
    try:
        subscriber = _confirm_subscriber(request, token)
    except selectors.TokenInvalid:
        return _invalid_link(request)
    if selectors.suppressed_among([subscriber.email]):
        return _private(render(request, "subscriptions/confirm_suppressed.html", status=409))
    choice = request.POST.get("choice", "")
    if choice not in ("link", "apart"):
        return _error(request, _("Unknown choice."), 400)
    current = reader_follows.read(request)
    if choice == "link" and current.subscriber is None:
        services.follows_merge(subscriber=subscriber, follows=current.refs())
    response = _confirmed_page(request, subscriber, choice=choice)
    if choice == "link":
        reader_follows.link_subscriber(response, subscriber)
    return _private(response)


@csrf_exempt  # RFC 8058 section 3: the one-click POST carries no cookie and no CSRF token
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button and changes nothing; POST unsubscribes at once and answers 200."""
    try:
        subscriber, newsletter = selectors.subscriber_from_token(
            tokens.UNSUBSCRIBE, token, max_age=tokens.UNSUBSCRIBE_MAX_AGE
        )
    except selectors.TokenInvalid:
        return _invalid_link(request)
    context = {
        "subscriber": subscriber,
        "newsletter": newsletter,
        "preferences_url": tokens.preferences_url(subscriber=subscriber),
    }
    if request.method == "GET":
        # Link scanners follow links: a GET never unsubscribes (RFC 8058 section 3).
        return _private(render(request, "subscriptions/unsubscribe.html", context))
    source = (
        "one-click" if request.POST.get("List-Unsubscribe") == "One-Click" else "unsubscribe-page"
    )
    services.subscription_unsubscribe(
        subscriber=subscriber, newsletter=newsletter, meta=_meta(request, source)
    )
    # 200 with the answer itself, no redirect: RFC 8058 section 3.
    return _private(render(request, "subscriptions/unsubscribed.html", context))


# --- following ------------------------------------------------------------------------------


def _followed_item(kind: str, slug: str) -> Category | Topic | None:
    model = Category if kind == "category" else Topic
    return model.objects.filter(slug=slug).first()


def _safe_next(request: HttpRequest, value: str) -> str:
    if value and url_has_allowed_host_and_scheme(
        value, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return value
    return ""


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _error(request: HttpRequest, message: str, status: int) -> HttpResponse:
    if _wants_json(request):
        return _private(JsonResponse({"error": message}, status=status))
    return _private(
        render(request, "subscriptions/follow_error.html", {"message": message}, status=status)
    )


@csrf_exempt  # the button sits on cached pages; following changes only this browser's cookie
@require_POST
def follow(request: HttpRequest) -> HttpResponse:
    # Open when the cache cannot count: following changes only this browser's cookie.
    if not ratelimit.allow(
        f"follow:{client_ip(request)}", rate=FOLLOW_RATE, when_cache_fails=ratelimit.FAIL_OPEN
    ):
        return _too_many(request)
    form = FollowForm(request.POST)
    if not form.is_valid():
        message = " ".join(error for errors in form.errors.values() for error in errors)
        return _error(request, message, 400)
    kind, slug = form.cleaned_data["kind"], form.cleaned_data["slug"]
    item = _followed_item(kind, slug)
    if item is None:
        return _error(
            request,
            _("There is no category “%(slug)s” to follow.") % {"slug": slug}
            if kind == "category"
            else _("There is no topic “%(slug)s” to follow.") % {"slug": slug},
            404,
        )

    current = reader_follows.read(request)
    ids = current.category_ids if kind == "category" else current.topic_ids
    action = form.cleaned_data["action"] or "toggle"
    following = (item.pk not in ids) if action == "toggle" else action == "follow"
    if current.subscriber is not None:
        services.follow_set(
            subscriber=current.subscriber,
            category=item if kind == "category" else None,
            topic=item if kind == "topic" else None,
            following=following,
        )
    elif following and item.pk not in ids:
        if len(ids) >= services.MAX_FOLLOWS:
            return _error(
                request, _("You follow as many categories and topics as we can keep."), 400
            )
        ids.append(item.pk)
    elif not following and item.pk in ids:
        ids.remove(item.pk)

    if _wants_json(request):
        response = JsonResponse(
            {"kind": kind, "slug": item.slug, "name": item.name, "following": following}
        )
    else:
        response = render(
            request,
            "subscriptions/follow_done.html",
            {
                "item": item,
                "kind": kind,
                "following": following,
                "next": _safe_next(request, form.cleaned_data["next"]),
            },
        )
    if current.subscriber is None:
        reader_follows.write_anonymous(response, current)
    return _private(response)


@require_GET
def follow_state(request: HttpRequest) -> JsonResponse:
    """What this browser follows, for the script that marks buttons on cached pages."""
    current = reader_follows.read(request)
    response = JsonResponse(
        {
            "categories": list(
                Category.objects.filter(pk__in=current.category_ids).values_list("slug", flat=True)
            ),
            "topics": list(
                Topic.objects.filter(pk__in=current.topic_ids).values_list("slug", flat=True)
            ),
            "subscriber": current.subscriber is not None,
        }
    )
    response["Vary"] = "Cookie"
    return _private(response)


@require_GET
def for_you(request: HttpRequest) -> HttpResponse:
    current = reader_follows.read(request)
    followed_categories = list(Category.objects.filter(pk__in=current.category_ids))
    followed_topics = list(Topic.objects.filter(pk__in=current.topic_ids))
    articles = selectors.for_you_articles(
        category_ids=current.category_ids, topic_ids=current.topic_ids
    )
    response = render(
        request,
        "subscriptions/for_you.html",
        {
            "articles": articles,
            "followed_categories": followed_categories,
            "followed_topics": followed_topics,
            "other_categories": Category.objects.exclude(pk__in=current.category_ids),
            "other_topics": Topic.objects.exclude(pk__in=current.topic_ids),
        },
    )
    response["Vary"] = "Cookie"
    return _private(response)


# --- preferences ----------------------------------------------------------------------------


def _preferences_subscriber(token: str):
    return selectors.subscriber_from_token(
        tokens.PREFERENCES, token, max_age=tokens.PREFERENCES_MAX_AGE
    )[0]


def _preferences_form(subscriber) -> PreferencesForm:
    follows = list(subscriber.follows.all())
    return PreferencesForm(
        initial={
            "newsletters": [
                s.newsletter_id
                for s in subscriber.subscriptions.all()
                if s.status == Subscription.Status.ACTIVE
            ],
            "categories": [f.category_id for f in follows if f.category_id],
            "topics": [f.topic_id for f in follows if f.topic_id],
            "time_zone": services.valid_time_zone(subscriber.time_zone),
            "language": subscriber.language,
        }
    )


NOTICES = {
    "saved": gettext_lazy("Your preferences are saved."),
    "paused": gettext_lazy("Your newsletters are paused for a week."),
    "resumed": gettext_lazy("Your newsletters will arrive again from tomorrow morning."),
    "unsubscribed": gettext_lazy("You are unsubscribed."),
    "linked": gettext_lazy(
        "This browser is now linked: what you follow here shapes your newsletter."
    ),
}


@never_cache
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    try:
        subscriber = _preferences_subscriber(token)
    except selectors.TokenInvalid:
        return _invalid_link(request)
    form = _preferences_form(subscriber)
    delete_form = DeleteForm()
    browser = reader_follows.read(request)
    status = 200
    if request.method == "POST":
        action = request.POST.get("action", "")
        meta = _meta(request, "preferences")
        notice = ""
        if action == "save":
            form = PreferencesForm(request.POST)
            if form.is_valid():
                services.preferences_update(
                    subscriber=subscriber,
                    newsletters=form.cleaned_data["newsletters"],
                    categories=form.cleaned_data["categories"],
                    topics=form.cleaned_data["topics"],
                    time_zone=form.cleaned_data["time_zone"],
                    language=form.cleaned_data["language"],
                    meta=meta,
                )
                notice = "saved"
                subscriber.refresh_from_db(fields=["language"])
        elif action == "pause":
            services.subscriber_pause(subscriber=subscriber, meta=meta)
            notice = "paused"
        elif action == "resume":
            services.subscriber_resume(subscriber=subscriber, meta=meta)
            notice = "resumed"
        elif action == "unsubscribe":
            newsletter = None
            newsletter_id = request.POST.get("newsletter", "")
            if newsletter_id:
                newsletter = Newsletter.objects.filter(
                    pk=parse_int(newsletter_id, default=0)
                ).first()
                if newsletter is None:
                    return _error(request, _("That newsletter does not exist."), 400)
            services.subscription_unsubscribe(
                subscriber=subscriber, newsletter=newsletter, meta=meta
            )
            notice = "unsubscribed"
        elif action == "link_browser":
            # The link names the reader; linking the browser that opened it is asked, never assumed.
            if browser.subscriber is None:
                services.follows_merge(subscriber=subscriber, follows=browser.refs())
            notice = "linked"
        elif action == "delete":
            delete_form = DeleteForm(request.POST)
            if delete_form.is_valid():
                live_plans = appeals.reader_live_plans(email=subscriber.email)
                services.subscriber_delete(subscriber=subscriber, actor=None, by="reader")
                return _private(
                    render(request, "subscriptions/deleted.html", {"live_plans": live_plans})
                )
        else:
            return _error(request, _("Unknown action."), 400)
        if notice:
            # Post/redirect/get: reloading the page does not repeat the action. The page
            # answers in the reader's language, which they may just have changed.
            with translation.override(subscriber.language):
                url = reverse("subscriptions:preferences", kwargs={"token": token})
            response = HttpResponseRedirect(f"{url}?done={notice}", status=303)
            if notice == "linked":
                reader_follows.link_subscriber(response, subscriber)
            return _private(response)
        status = 400
    subscriber.refresh_from_db()
    response = render(
        request,
        "subscriptions/preferences.html",
        {
            "subscriber": subscriber,
            "token": token,
            "form": form,
            "delete_form": delete_form,
            "live_plans": appeals.reader_live_plans(email=subscriber.email),
            "notice": NOTICES.get(request.GET.get("done", ""), ""),
            "subscriptions": subscriber.subscriptions.select_related("newsletter").order_by(
                "newsletter__name"
            ),
            "suppressed": bool(selectors.suppressed_among([subscriber.email])),
            "paused": bool(subscriber.paused_until and subscriber.paused_until > timezone.now()),
            "offer_link": browser.subscriber is None or browser.subscriber.pk != subscriber.pk,
            "browser_follows": browser.subscriber is None
            and bool(browser.category_ids or browser.topic_ids),
        },
        status=status,
    )
    return _private(response)


@require_GET
def preferences_data(request: HttpRequest, token: str) -> HttpResponse:
    """Download everything held about the address, as JSON."""
    try:
        subscriber = _preferences_subscriber(token)
    except selectors.TokenInvalid:
        return _invalid_link(request)
    data = selectors.subscriber_export(subscriber=subscriber)
    response = HttpResponse(
        json.dumps(data, indent=2, ensure_ascii=False),
        content_type="application/json; charset=utf-8",
    )
    response["Content-Disposition"] = (
        f'attachment; filename="{slug_of(settings.NEWSROOM_NAME)}-my-data.json"'
    )
    return _private(response)


def slug_of(name: str) -> str:
    return "-".join("".join(ch if ch.isalnum() else " " for ch in name.lower()).split())
