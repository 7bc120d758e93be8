"""Staff set up their authenticator app, through a second channel, before the admin opens.

A session signed in with the password only sees no secret: it lands on a page that
emails the account a one-use link, and takes a one-use code an Admin issued. Either,
presented in that session, opens the set-up (QR code and secret) for a while.
"""

from __future__ import annotations

import base64
import time

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from newsroom import ratelimit
from newsroom.audit import request_actor
from newsroom.security import (
    has_confirmed_device,
    lockout_response,
    login_failure_record,
    login_locked,
    second_factor_optional,
)
from staff import services

# The session's open set-up: which pending device, in which device state, until when.
OPENED_KEY = "staff_enrol_opened"
# What became of the link this session asked for: "sent", "limited" or "unsent".
LINK_KEY = "staff_enrol_link"


class ConfirmDeviceForm(forms.Form):
    token = forms.CharField(
        label=gettext_lazy("Code from the app"),
        max_length=10,
        strip=True,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "pattern": "[0-9 ]*"}
        ),
    )


class AdminCodeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Set-up code from an Admin"),
        max_length=20,
        strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


def _qr_svg(text: str) -> str:
    """The otpauth:// URL as an inline SVG QR code, drawn here: no image service sees the secret."""
    # Imported here, not with the module: qrcode brings PIL (about 11 MB), and every web and
    # worker process loads this module with the URL conf, while only a staff member's
    # authenticator set-up draws a code.
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return image.to_string(encoding="unicode")


def _next_url(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse("admin:index")


def _setup_redirect(request: HttpRequest) -> HttpResponseRedirect:
    query = urlencode({"next": _next_url(request)})
    return HttpResponseRedirect(f"{reverse('staff_otp_setup')}?{query}")


def _username(request: HttpRequest) -> str:
    return request.user.get_username()


def _opened_device(request: HttpRequest) -> TOTPDevice | None:
    """The pending device this session may set up now, if a link or code opened it."""
    opened = request.session.get(OPENED_KEY)
    if not opened or opened["until"] < time.time():
        return None
    device = TOTPDevice.objects.filter(
        pk=opened["device"], user=request.user, confirmed=False
    ).first()
    if device is None or services.device_state(request.user) != opened["state"]:
        return None
    return device


def _open(request: HttpRequest, device: TOTPDevice) -> HttpResponseRedirect:
    request.session[OPENED_KEY] = {
        "device": device.pk,
        "state": services.device_state(request.user),
        "until": time.time() + settings.STAFF_ENROL_LINK_MINUTES * 60,
    }
    return _setup_redirect(request)


def _link_send(request: HttpRequest) -> str:
    user = request.user
    # Closed when the cache cannot count: each link sets up a second factor for the account.
    if not ratelimit.allow(
        f"staff-enrol-link:{user.pk}",
        rate=settings.STAFF_ENROL_LINK_RATE,
        when_cache_fails=ratelimit.FAIL_CLOSED,
    ):
        outcome = "limited"
    elif services.enrol_link_send(user=user):
        outcome = "sent"
    else:
        outcome = "unsent"
    request.session[LINK_KEY] = outcome
    return outcome


def _landing(
    request: HttpRequest,
    *,
    code_form: AdminCodeForm | None = None,
    refused: str = "",
    status: int = 200,
) -> HttpResponse:
    """The page a session without a second factor sees: where the link went, the code form."""
    user = request.user
    context = {
        **admin.site.each_context(request),
        "title": _("Set up two-factor sign-in"),
        "email": services.email_masked(user.email) if user.email else "",
        "link": request.session.get(LINK_KEY, ""),
        "minutes": settings.STAFF_ENROL_LINK_MINUTES,
        "code_form": code_form or AdminCodeForm(),
        "refused": refused,
        "next": _next_url(request),
    }
    return render(request, "staff/otp_landing.html", context, status=status)


def _refused(request: HttpRequest, exc: services.EnrolmentRefused, **kwargs) -> HttpResponse:
    if exc.guess:
        # Counted as a wrong password is: guessing runs into the lockout.
        login_failure_record(request, username=_username(request))
    return _landing(request, refused=str(exc), status=400, **kwargs)


@second_factor_optional
@never_cache
@staff_member_required
@require_http_methods(["GET", "POST"])
def setup(request: HttpRequest) -> HttpResponse:
    """Without a second channel: the landing page. With one: the secret, confirmed by a code."""
    user = request.user
    if has_confirmed_device(user):
        # Only the login form verifies an existing device; a second one is never added here.
        return HttpResponseRedirect(_next_url(request))
    if login_locked(request, username=_username(request)):
        return lockout_response(request)
    device = _opened_device(request)
    if device is None:
        if request.method == "POST":
            return _setup_redirect(request)
        if LINK_KEY not in request.session:
            _link_send(request)
        return _landing(request)
    form = ConfirmDeviceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        codes = services.enrol_confirm(
            user=user,
            device=device,
            token=form.cleaned_data["token"].replace(" ", ""),
            actor=request_actor(request),
        )
        if codes is not None:
            otp_login(request, device)
            request.session.pop(OPENED_KEY, None)
            request.session.pop(LINK_KEY, None)
            return _recovery_codes_page(request, codes=codes, first=True)
        login_failure_record(request, username=_username(request))
        form.add_error(
            "token",
            _(
                "That code is not right. Check that the app shows this site, "
                "then enter the code it shows now (codes change every 30 seconds)."
            ),
        )
    secret = base64.b32encode(device.bin_key).decode("ascii")
    context = {
        **admin.site.each_context(request),
        "title": _("Set up two-factor sign-in"),
        "form": form,
        "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "config_url": device.config_url,
        "qr_svg": mark_safe(_qr_svg(device.config_url)),  # generated above from our own data
        "next": _next_url(request),
    }
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "staff/otp_setup.html", context, status=status)


@second_factor_optional
@never_cache
@staff_member_required
@require_POST
def link_resend(request: HttpRequest) -> HttpResponse:
    """Email a new set-up link, a few times per quarter hour at most."""
    if has_confirmed_device(request.user):
        return HttpResponseRedirect(_next_url(request))
    outcome = _link_send(request)
    if outcome == "limited":
        messages.error(
            request,
            _(
                "You asked for several links in a short time. Use the newest one in your "
                "inbox, or ask again in a few minutes."
            ),
        )
    elif outcome == "sent":
        messages.success(request, _("We sent a new link. Links sent before it still work once."))
    return _setup_redirect(request)


@second_factor_optional
@never_cache
@staff_member_required
@require_GET
def link_open(request: HttpRequest, token: str) -> HttpResponse:
    """The emailed link: opens the set-up in this session, once, for its own account."""
    if has_confirmed_device(request.user):
        return HttpResponseRedirect(_next_url(request))
    if login_locked(request, username=_username(request)):
        return lockout_response(request)
    try:
        device = services.enrol_link_open(user=request.user, token=token)
    except services.EnrolmentRefused as exc:
        return _refused(request, exc)
    return _open(request, device)


@second_factor_optional
@never_cache
@staff_member_required
@require_POST
def code_enter(request: HttpRequest) -> HttpResponse:
    """An Admin's one-use code: opens the set-up in this session."""
    if has_confirmed_device(request.user):
        return HttpResponseRedirect(_next_url(request))
    if login_locked(request, username=_username(request)):
        return lockout_response(request)
    form = AdminCodeForm(request.POST)
    if not form.is_valid():
        return _landing(request, code_form=form, status=400)
    try:
        device = services.enrol_code_redeem(user=request.user, code=form.cleaned_data["code"])
    except services.EnrolmentRefused as exc:
        return _refused(request, exc, code_form=form)
    return _open(request, device)


def _recovery_codes_page(
    request: HttpRequest, *, codes: list[str], first: bool = False
) -> HttpResponse:
    heading = _("{name}: recovery codes for {username}").format(
        name=settings.NEWSROOM_NAME, username=request.user.get_username()
    )
    context = {
        **admin.site.each_context(request),
        "title": _("Your recovery codes"),
        "codes": codes,
        "codes_text": "\n".join([heading, "", *codes]),
        "first": first,
        "next": _next_url(request),
    }
    return render(request, "staff/recovery_codes.html", context)


@never_cache
@staff_member_required
@require_http_methods(["GET", "POST"])
def recovery_codes(request: HttpRequest) -> HttpResponse:
    """How many recovery codes are left, and new ones (shown once) in place of the old."""
    if not request.user.is_verified():
        return _setup_redirect(request)
    if request.method == "POST":
        codes = services.recovery_codes_regenerate(user=request.user, actor=request_actor(request))
        return _recovery_codes_page(request, codes=codes)
    context = {
        **admin.site.each_context(request),
        "title": _("Recovery codes"),
        "left": services.recovery_codes_left(user=request.user),
        "next": _next_url(request),
    }
    return render(request, "staff/recovery_codes.html", context)


class LanguageForm(forms.Form):
    language = forms.ChoiceField(
        label=gettext_lazy("The language of the admin for you"),
        choices=settings.LANGUAGES,
        error_messages={"invalid_choice": gettext_lazy("Choose Arabic, Hebrew or English.")},
    )


@never_cache
@staff_member_required
@require_http_methods(["GET", "POST"])
def language(request: HttpRequest) -> HttpResponse:
    """Each staff member picks the language the admin speaks to them."""
    if request.method == "POST":
        form = LanguageForm(request.POST)
        if form.is_valid():
            services.staff_language_set(user=request.user, language=form.cleaned_data["language"])
            with translation.override(form.cleaned_data["language"]):
                messages.success(request, _("The admin now speaks your language."))
            return HttpResponseRedirect(_next_url(request), status=303)
        status = 400
    else:
        form = LanguageForm(initial={"language": translation.get_language()})
        status = 200
    context = {
        **admin.site.each_context(request),
        "title": _("Your language"),
        "form": form,
        "next": _next_url(request),
    }
    return render(request, "staff/language.html", context, status=status)
