"""Pages and endpoints of the donations app: validate, call one service, respond.

Caching: the donate page and the appeal endpoints never touch the session and set no
cookie on a plain GET, so a CDN may keep them. The donate form posts to a
csrf-exempt endpoint that defends itself instead (a honeypot, rate limits per IP and
per email in the cache, an optional CAPTCHA check, and Stripe's own checks), because
a CSRF token would make the page uncacheable and a forged gift cannot profit anyone.
"""

from __future__ import annotations

import base64
import time
from urllib.parse import urlencode

from django.conf import settings
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from donations import reader_state, selectors, services, stripe_api
from donations.forms import UTM_FIELDS, DonateForm, ManageLinkForm, preset_amounts
from donations.models import Appeal, Frequency, Gift, Placement
from donations.money import fee_cents, fee_description, format_cents
from newsroom import ratelimit
from newsroom.links import absolute
from newsroom.parsing import parse_amount_int, parse_int
from newsroom.security import client_ip

# A transparent 1x1 GIF: the impression beacon.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
MANAGE_SESSION_KEY = "donations_manage"
MANAGE_SESSION_SECONDS = 3600
TOO_MANY = gettext_lazy(
    "Too many attempts in a short time. Please wait a few minutes and try again. "
    "Nothing has been charged."
)


def _too_many() -> HttpResponse:
    response = HttpResponse(str(TOO_MANY), status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = "120"
    return response


def _frequency(value: str | None, appeal: Appeal | None) -> str:
    if value in Frequency.values:
        return value
    return appeal.default_frequency if appeal else Frequency.MONTHLY


def _appeal_from(value: str | None) -> Appeal | None:
    pk = parse_int(value, minimum=1)
    return Appeal.objects.filter(pk=pk).first() if pk else None


def _donate_context(
    request: HttpRequest,
    *,
    form: DonateForm,
    frequency: str,
    appeal: Appeal | None,
    hero: Appeal | None,
) -> dict:
    carried = {
        key: request.GET.get(key) or request.POST.get(key)
        for key in ("appeal", "placement", "article", *UTM_FIELDS)
    }
    carried = {key: value for key, value in carried.items() if value}
    tabs = [
        {
            "value": value,
            "label": label,
            "url": "?" + urlencode({**carried, "frequency": value}),
            "current": value == frequency,
        }
        for value, label in Frequency.choices
    ]
    shown = appeal or hero
    return {
        "form": form,
        "frequency": frequency,
        "frequency_word": {
            "one_time": _("once"),
            "monthly": _("monthly"),
            "annual": _("every year"),
        }[frequency],
        "tabs": tabs,
        "appeal": shown,
        "raised_cents": selectors.appeal_raised_cents(shown) if shown and shown.goal_cents else 0,
        "presets": [
            {
                "cents": cents,
                "label": format_cents(cents),
                "fee": format_cents(fee_cents(cents), exact=True),
            }
            for cents in form.presets
        ],
        "fee_description": fee_description(),
        "fee_bp": settings.DONATION_FEE_BASIS_POINTS,
        "fee_fixed": settings.DONATION_FEE_FIXED_CENTS,
        "currency": settings.DONATION_CURRENCY.upper(),
        "min_label": format_cents(settings.DONATION_MIN_CENTS),
        "max_label": format_cents(settings.DONATION_MAX_CENTS),
    }


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def donate(request: HttpRequest) -> HttpResponse:
    """GET the donate form; POST it to start a Stripe Checkout."""
    source = request.POST if request.method == "POST" else request.GET
    appeal = _appeal_from(source.get("appeal"))
    hero = None
    if appeal is None:
        hero = selectors.appeal_for_reader(
            placement=Placement.DONATE_PAGE_HERO, state=reader_state.read(request)
        )
    frequency = _frequency(source.get("frequency"), appeal or hero)
    presets = preset_amounts(appeal=appeal or hero, frequency=frequency)

    if request.method != "POST":
        asked = parse_amount_int(request.GET.get("amount"))
        if asked in presets:
            initial_amount = str(asked)
        else:
            initial_amount = str(presets[min(1, len(presets) - 1)]) if presets else "other"
        initial = {
            "frequency": frequency,
            "amount": initial_amount,
            **{
                key: request.GET.get(key, "")
                for key in ("appeal", "placement", "article", *UTM_FIELDS)
            },
        }
        form = DonateForm(initial=initial, presets=presets)
        response = render(
            request,
            "donations/donate.html",
            _donate_context(request, form=form, frequency=frequency, appeal=appeal, hero=hero),
        )
        # Public and the same for every reader in the same state (see reader_state).
        patch_cache_control(response, public=True, max_age=60)
        patch_vary_headers(response, ["Cookie"])
        return response

    # Closed when the cache cannot count: unlimited attempts are how stolen cards are tested.
    if not ratelimit.allow(
        f"checkout-ip:{client_ip(request)}",
        rate=settings.CHECKOUT_RATE_LIMIT_PER_IP,
        when_cache_fails=ratelimit.FAIL_CLOSED,
    ):
        return _too_many()
    form = DonateForm(request.POST, presets=presets)
    if form.is_honeypot_filled:
        return HttpResponseBadRequest(
            _("Your gift could not be processed."), content_type="text/plain; charset=utf-8"
        )
    status = 400
    if form.is_valid():
        email_key = f"checkout-email:{form.cleaned_data['email'].strip().lower()}"
        if not ratelimit.allow(
            email_key,
            rate=settings.CHECKOUT_RATE_LIMIT_PER_EMAIL,
            when_cache_fails=ratelimit.FAIL_CLOSED,
        ):
            return _too_many()
        if settings.CHECKOUT_CAPTCHA_CHECK and not import_string(settings.CHECKOUT_CAPTCHA_CHECK)(
            request
        ):
            form.add_error(
                None, _("Please complete the check that you are a person, then try again.")
            )
        else:
            try:
                _gift, url = services.checkout_start(
                    # The page's language: receipts and Checkout speak it.
                    gift_request=form.gift_request(language=translation.get_language())
                )
            except services.CheckoutUnavailable:
                form.add_error(
                    None,
                    _(
                        "We could not reach our payment processor. Nothing was charged; "
                        "please try again in a moment."
                    ),
                )
                status = 503
            else:
                # 303: the browser follows with a GET (RFC 9110, section 15.4.4).
                return HttpResponseRedirect(url, status=303)
    response = render(
        request,
        "donations/donate.html",
        _donate_context(request, form=form, frequency=frequency, appeal=appeal, hero=hero),
        status=status,
    )
    patch_cache_control(response, private=True, no_store=True)
    return response


@never_cache
@require_GET
def thanks(request: HttpRequest) -> HttpResponse:
    """Stripe sends the donor here; the gift is confirmed only by Stripe's webhook."""
    session_id = request.GET.get("session_id", "")[:255]
    gift = (
        Gift.objects.filter(stripe_checkout_session_id=session_id).first()
        if session_id.startswith("cs_")
        else None
    )
    checks = parse_int(request.GET.get("check"), default=0, minimum=0)
    confirmed = gift is not None and gift.paid_at is not None
    context = {
        "gift": gift,
        "confirmed": confirmed,
        # Poll-free: the page reloads itself a few times with a meta refresh, then stops.
        "refresh_url": (
            "?" + urlencode({"session_id": session_id, "check": checks + 1})
            if gift is not None and not confirmed and checks < 12
            else ""
        ),
        "signer_name": settings.THANK_YOU_SIGNER_NAME,
        "signer_title": settings.THANK_YOU_SIGNER_TITLE,
    }
    response = render(request, "donations/thanks.html", context)
    if gift is not None:
        state = reader_state.read(request)
        state.last_gift = reader_state.today()
        state.subscriber = state.subscriber or selectors.is_subscriber(gift.donor_email)
        reader_state.write(response, state)
    return response


@require_GET
def cancelled(request: HttpRequest) -> HttpResponse:
    response = render(request, "donations/cancelled.html")
    patch_cache_control(response, public=True, max_age=300)
    return response


@never_cache
@require_GET
def appeal_click(request: HttpRequest, pk: int) -> HttpResponse:
    """Count a click on an appeal and continue to the donate form it asked for.

    Clicks are counted here, not on the page: the page that showed the appeal may
    have come from a cache, and this redirect always reaches the server.
    """
    appeal = get_object_or_404(Appeal, pk=pk)
    services.appeal_count(appeal_id=appeal.pk, counter="clicks")
    params = {"appeal": appeal.pk}
    for key in ("placement", "article", "amount", "frequency", *UTM_FIELDS):
        value = request.GET.get(key, "")[:100]
        if value:
            params[key] = value
    return redirect(reverse("donations:donate") + "?" + urlencode(params))


@require_GET
def appeal_seen(request: HttpRequest, pk: int) -> HttpResponse:
    """The impression beacon: a 1x1 image the appeal carries, counted in the cache.

    An image works without JavaScript and in email, is requested on every view of a
    cached page (the page is cached, this response is not), and `loading="lazy"`
    means it counts readers who scrolled near the appeal.
    """
    if pk in selectors.appeal_ids():
        services.appeal_count(appeal_id=pk, counter="impressions")
    response = HttpResponse(PIXEL, content_type="image/gif")
    patch_cache_control(response, no_store=True, private=True)
    return response


@csrf_exempt
@require_POST
def appeal_dismiss(request: HttpRequest, pk: int) -> HttpResponse:
    """Hide an appeal from this reader for APPEAL_DISMISS_DAYS (in their signed cookie).

    Exempt from CSRF: the only effect is on the requester's own cookie.
    """
    appeal = get_object_or_404(Appeal, pk=pk)
    target = request.POST.get("next", "/")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "/"
    response = HttpResponseRedirect(target, status=303)
    state = reader_state.read(request)
    state.dismiss(appeal.pk, reader_state.today())
    reader_state.write(response, state)
    return response


# --- manage my giving ---------------------------------------------------------------


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def manage(request: HttpRequest) -> HttpResponse:
    """Ask for a sign-in link; the answer is the same whether we know the address or not."""
    if request.method != "POST":
        return render(request, "donations/manage_request.html", {"form": ManageLinkForm()})
    # Closed when the cache cannot count: these links sign a donor in to their giving.
    if not ratelimit.allow(
        f"manage-ip:{client_ip(request)}",
        rate=settings.CHECKOUT_RATE_LIMIT_PER_IP,
        when_cache_fails=ratelimit.FAIL_CLOSED,
    ):
        return _too_many()
    form = ManageLinkForm(request.POST)
    if not form.is_valid():
        return render(request, "donations/manage_request.html", {"form": form}, status=400)
    email = form.cleaned_data["email"].strip().lower()
    if ratelimit.allow(
        f"manage-email:{email}",
        rate=settings.CHECKOUT_RATE_LIMIT_PER_EMAIL,
        when_cache_fails=ratelimit.FAIL_CLOSED,
    ):
        services.manage_link_request(email=email, language=translation.get_language())
    return render(
        request,
        "donations/manage_sent.html",
        {"email": email, "minutes": settings.DONATION_MANAGE_LINK_MINUTES},
    )


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def manage_open(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button; POST spends the link. Mail scanners that follow links with
    GET therefore cannot use up a donor's single-use link."""
    try:
        if request.method != "POST":
            services.manage_token_read(token=token)
            return render(request, "donations/manage_open.html", {"token": token})
        email = services.manage_token_use(token=token)
    except services.ManageLinkInvalid as exc:
        return render(request, "donations/manage_invalid.html", {"reason": str(exc)}, status=410)
    request.session.cycle_key()
    request.session[MANAGE_SESSION_KEY] = {"email": email, "at": int(time.time())}
    return redirect("donations:manage_giving")


def _manage_email(request: HttpRequest) -> str | None:
    data = request.session.get(MANAGE_SESSION_KEY) or {}
    if not data or time.time() - data.get("at", 0) > MANAGE_SESSION_SECONDS:
        return None
    return data.get("email")


@never_cache
@require_GET
def manage_giving(request: HttpRequest) -> HttpResponse:
    email = _manage_email(request)
    if email is None:
        return redirect("donations:manage")
    gifts = list(selectors.gifts_for_email(email))
    plans = {gift.plan for gift in gifts if gift.plan}
    return render(
        request,
        "donations/manage_giving.html",
        {
            "email": email,
            "gifts": gifts,
            "plans": sorted(plans, key=lambda plan: plan.pk),
            "has_customer": bool(selectors.customer_id_for_email(email)),
        },
    )


@never_cache
@require_POST
def manage_portal(request: HttpRequest) -> HttpResponse:
    """Into Stripe's customer portal, to change the card or stop a recurring gift."""
    email = _manage_email(request)
    if email is None:
        return redirect("donations:manage")
    try:
        url = services.portal_url(
            email=email,
            return_url=absolute(reverse("donations:manage_giving")),
            language=translation.get_language(),
        )
    except stripe_api.StripeError:
        url = None
    if not url:
        return render(request, "donations/manage_portal_error.html", status=503)
    return HttpResponseRedirect(url, status=303)


@never_cache
@require_GET
def manage_receipt(request: HttpRequest, pk: int) -> HttpResponse:
    email = _manage_email(request)
    if email is None:
        return redirect("donations:manage")
    gift = selectors.gifts_for_email(email).filter(pk=pk).first()
    if gift is None:
        raise Http404("No such gift.")
    return render(request, "donations/receipt_page.html", {"gift": gift, **services.org_context()})


@csrf_exempt  # RFC 8058 section 3: the one-click POST carries no cookie and no CSRF token
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def honoree_opt_out(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button and changes nothing; POST stops honoree notes and answers 200."""
    try:
        services.honoree_opt_out_read(token=token)
    except services.HonoreeOptOutInvalid:
        response = render(request, "donations/honoree_opt_out.html", {"invalid": True}, status=400)
    else:
        # Link scanners follow links: only a POST opts out (RFC 8058 section 3).
        if request.method == "POST":
            services.honoree_opt_out(token=token)
        context = {"done": request.method == "POST"}
        response = render(request, "donations/honoree_opt_out.html", context)
    response["Referrer-Policy"] = "no-referrer"
    return response
