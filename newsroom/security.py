"""The hardened site: request size limit, Content Security Policy, staff two-factor login.

Staff sign in at the admin with a password and, once they have an authenticator app,
its six-digit code (or one of their recovery codes) in the same form (django-otp's
devices, RFC 6238). A staff member without a confirmed app is kept on the staff app's
two-factor pages, which ask for a second channel before showing a secret. django-axes
locks a username out from one address after repeated failures, at sign-in and at set-up;
the address is the one our own proxies report (`client_ip`).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable
from dataclasses import asdict

from csp.constants import HEADER, HEADER_REPORT_ONLY, SELF, UNSAFE_INLINE
from csp.middleware import CheckableLazyObject, PolicyParts
from csp.middleware import CSPMiddleware as BaseCSPMiddleware
from csp.utils import build_policy
from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import logout
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ValidationError
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_otp import match_token
from django_otp.plugins.otp_totp.models import TOTPDevice


def admin_prefix() -> str:
    return "/" + settings.ADMIN_URL


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or the one our own proxies put in CLIENT_IP_HEADER.

    With CLIENT_IP_PROXY_HOPS = 0 nothing in front of the site is trusted. With N, a list
    header such as X-Forwarded-For gives its Nth entry from the end: each proxy appends the
    address it saw, and entries before ours are whatever the client claimed. A header
    holding one address, as a CDN writes CF-Connecting-IP or True-Client-IP over whatever
    the client sent, is that address. Anything that is not an address gives REMOTE_ADDR.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    hops = settings.CLIENT_IP_PROXY_HOPS
    if hops < 1:
        return remote
    header = request.META.get(settings.CLIENT_IP_HEADER, "")
    entries = [part.strip() for part in header.split(",") if part.strip()]
    if len(entries) == 1:
        claimed = entries[0]
    elif len(entries) >= hops:
        claimed = entries[-hops]
    else:  # no header, or fewer entries than proxies: not the way we were told requests come
        return remote
    try:
        return str(ipaddress.ip_address(claimed))
    except ValueError:
        return remote


class RequestSizeLimitMiddleware:
    """Answer 413 to a request whose declared body is too large, without reading it.

    DATA_UPLOAD_MAX_MEMORY_SIZE only stops form parsing part-way; this refuses the
    request before CSRF checks, webhooks or forms touch `request.body`.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        declared = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(declared)
        except ValueError:
            return HttpResponse(
                "The Content-Length header is not a number.\n",
                status=400,
                content_type="text/plain; charset=utf-8",
            )
        if request.path_info.startswith(admin_prefix()):
            limit = settings.ADMIN_MAX_REQUEST_BODY_BYTES
        else:
            limit = settings.MAX_REQUEST_BODY_BYTES
        if length > limit:
            response = HttpResponse(
                f"This request is too large: we accept at most {limit:,} bytes.\n",
                status=413,
                content_type="text/plain; charset=utf-8",
            )
            # The unread body must not be taken for the next request on this connection.
            response["Connection"] = "close"
            return response
        return self.get_response(request)


# What a view may set on its response for a policy of its own (django-csp's decorators).
_RESPONSE_POLICY = (
    "_csp_config",
    "_csp_update",
    "_csp_replace",
    "_csp_exempt",
    "_csp_config_ro",
    "_csp_update_ro",
    "_csp_replace_ro",
    "_csp_exempt_ro",
)


class CSPMiddleware(BaseCSPMiddleware):
    """django-csp's middleware, with inline styles allowed on the admin's pages only.

    The admin's widgets and charts set `style` attributes, which no nonce can cover;
    scripts stay restricted to our own files there too.

    django-csp builds the policy's text anew for every response (about 25 µs, a tenth of
    a cached page's time), while nearly every response has one of two: the site's or the
    admin's. Those are built once and kept until the settings change; a response that
    used a nonce or carries a policy of its own goes through django-csp as it is.
    """

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if (
            getattr(request, "_csp_nonce", None) is not None
            or any(hasattr(response, name) for name in _RESPONSE_POLICY)
            or (settings.DEBUG and response.status_code in (404, 500))
        ):
            return super().process_response(request, response)
        admin = request.path_info.startswith(admin_prefix())
        for header, report_only in ((HEADER, False), (HEADER_REPORT_ONLY, True)):
            policy = self._kept_policy(request, response, admin=admin, report_only=report_only)
            if policy and header not in response and not _excluded(request, report_only):
                response[header] = policy
        # As django-csp does: a nonce asked for after the header is written is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response

    def _kept_policy(
        self, request: HttpRequest, response: HttpResponse, *, admin: bool, report_only: bool
    ) -> str:
        key = (admin, report_only)
        if key not in _POLICIES:
            parts = self.get_policy_parts(request, response, report_only)
            _POLICIES[key] = build_policy(**asdict(parts), report_only=report_only)
        return _POLICIES[key]

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponse, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if not report_only and request.path_info.startswith(admin_prefix()):
            parts.replace = {**(parts.replace or {}), "style-src": [SELF, UNSAFE_INLINE]}
        return parts


# (admin page, report-only) -> the policy's text; see CSPMiddleware.
_POLICIES: dict[tuple[bool, bool], str] = {}


@receiver(setting_changed)
def _policies_forget(*, setting: str, **kwargs) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY") or setting == "ADMIN_URL":
        _POLICIES.clear()


def _excluded(request: HttpRequest, report_only: bool) -> bool:
    name = "CONTENT_SECURITY_POLICY_REPORT_ONLY" if report_only else "CONTENT_SECURITY_POLICY"
    prefixes = (getattr(settings, name, None) or {}).get("EXCLUDE_URL_PREFIXES") or ()
    return request.path_info.startswith(tuple(prefixes))


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials=None
) -> HttpResponse:
    """The page a locked-out sign-in gets from django-axes: 429 with how long to wait."""
    from django.contrib import admin

    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    context = {
        **admin.site.each_context(request),
        "title": gettext("Sign-in locked"),
        "minutes": minutes,
    }
    return render(request, "admin/locked_out.html", context, status=429)


def login_failure_record(request: HttpRequest, *, username: str) -> None:
    """Count a failed attempt for `username` from this address, as a wrong password counts.

    django-axes listens to this signal; once the limit is reached it marks the request
    and AxesMiddleware answers with the lockout page.
    """
    user_login_failed.send(sender=__name__, credentials={"username": username}, request=request)


def login_locked(request: HttpRequest, *, username: str) -> bool:
    """Whether `username` is locked out from this address now."""
    from axes.handlers.proxy import AxesProxyHandler

    return not AxesProxyHandler.is_allowed(request, credentials={"username": username})


def has_confirmed_device(user) -> bool:
    """Whether the account has an authenticator app set up (recovery codes alone are not one)."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def second_factor_optional(view: Callable) -> Callable:
    """Mark a staff view a session without a verified second factor may open: the set-up."""
    view.second_factor_optional = True
    return view


def second_factor_refusal(request: HttpRequest) -> HttpResponse | None:
    """Where staff without a verified second factor go instead of staff-only content.

    Nowhere (None) for a verified session and for anyone who is not staff. Without a
    confirmed device: the two-factor set-up. With one but a session not verified by it
    (signed in before the device was set up elsewhere): signed out, to sign in with a code.
    """
    user = request.user
    if not (user.is_authenticated and user.is_staff) or user.is_verified():
        return None
    query = urlencode({"next": request.get_full_path()})
    if has_confirmed_device(user):
        logout(request)
        return HttpResponseRedirect(f"{reverse('admin:login')}?{query}")
    return HttpResponseRedirect(f"{reverse('staff_otp_setup')}?{query}")


class StaffTwoFactorMiddleware:
    """Keep staff without a verified second factor out of every view under ADMIN_URL.

    Needs django_otp's OTPMiddleware before it. It decides by the resolved view, so a
    new admin or staff page is covered without asking; the only ones open to a
    password-only session are the admin's sign-in and sign-out and the views marked
    `second_factor_optional` (the set-up). Staff-only content outside the admin (a draft's
    preview) asks `second_factor_refusal` itself.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable, view_args: tuple, view_kwargs: dict
    ) -> HttpResponse | None:
        if not request.path_info.startswith(admin_prefix()):
            return None
        if getattr(view, "second_factor_optional", False):
            return None
        if request.path in {reverse("admin:login"), reverse("admin:logout")}:
            return None
        return second_factor_refusal(request)


class StaffLoginForm(AdminAuthenticationForm):
    """The admin login: username, password and, once set up, the authenticator's code."""

    otp_token = forms.CharField(
        label=_("Authentication code"),
        required=False,
        max_length=20,
        strip=True,
        # No numeric keypad or digits-only pattern: a recovery code has letters.
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code"}),
        help_text=_(
            "The six digits your authenticator app shows for this site, or one of your "
            "recovery codes. The first time you sign in, leave it empty: we will email you "
            "a link to set the app up."
        ),
    )

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "otp_required": _("Enter the six-digit code from your authenticator app."),
        "otp_invalid": _(
            "That authentication code is not right. Codes change every 30 seconds: "
            "enter the one your app shows now (or an unused recovery code)."
        ),
    }

    def confirm_login_allowed(self, user) -> None:
        super().confirm_login_allowed(user)
        if not has_confirmed_device(user):
            return  # StaffTwoFactorMiddleware sends them to set a device up first.
        token = (self.cleaned_data.get("otp_token") or "").replace(" ", "")
        if not token:
            raise ValidationError(self.error_messages["otp_required"], code="otp_required")
        # Every confirmed device of the account: the app, and the recovery codes.
        device = match_token(user, token)
        if device is None:
            # A wrong code counts as a failed login, so guessing codes runs into the lockout.
            login_failure_record(self.request, username=user.get_username())
            raise ValidationError(self.error_messages["otp_invalid"], code="otp_invalid")
        # django_otp's user_logged_in receiver stores this device in the session.
        user.otp_device = device


def email_hash(email: str) -> str:
    """The SHA-256 of a normalised address: how it is kept where the address itself is not."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()
