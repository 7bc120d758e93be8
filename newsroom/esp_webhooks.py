"""django-anymail's webhook routes, each ESP's view imported on the route's first request.

anymail.urls imports every ESP's webhook module to build its routes, and with them Resend's
svix, pydantic and httpx and Amazon SES's boto3: about 30 MB in every web and worker
process that loads the URL conf (a Celery worker does, at start, to run Django's checks),
where a newsroom hears from one ESP. The routes are anymail.urls' own, written out here;
tests/newsroom/test_esp_webhooks.py holds them to anymail's at every upgrade.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from anymail.exceptions import AnymailConfigurationError
from anymail.webhooks.base import AnymailCoreWebhookView
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, path, re_path
from django.utils.module_loading import import_string

View = Callable[..., HttpResponse]


def webhook_view(view_class_path: str) -> View:
    """The as_view() of the webhook view class at view_class_path, imported when first called."""

    @functools.cache
    def class_view() -> View:
        return import_string(view_class_path).as_view()

    def view(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return class_view()(request, *args, **kwargs)

    # What as_view() copies from anymail's dispatch(): csrf_exempt (an ESP posts no CSRF
    # token, and CsrfViewMiddleware reads the flag from the routed view) and login_required.
    view.__dict__.update(AnymailCoreWebhookView.dispatch.__dict__)
    view.view_class_path = view_class_path
    return view


# anymail.urls.urlpatterns, in its order.
ANYMAIL_URLPATTERNS = [
    path(
        "amazon_ses/inbound/",
        webhook_view("anymail.webhooks.amazon_ses.AmazonSESInboundWebhookView"),
        name="amazon_ses_inbound_webhook",
    ),
    path(
        "brevo/inbound/",
        webhook_view("anymail.webhooks.brevo.BrevoInboundWebhookView"),
        name="brevo_inbound_webhook",
    ),
    path(
        "mailersend/inbound/",
        webhook_view("anymail.webhooks.mailersend.MailerSendInboundWebhookView"),
        name="mailersend_inbound_webhook",
    ),
    re_path(
        r"^mailgun/inbound(_mime)?/$",
        webhook_view("anymail.webhooks.mailgun.MailgunInboundWebhookView"),
        name="mailgun_inbound_webhook",
    ),
    path(
        "mailjet/inbound/",
        webhook_view("anymail.webhooks.mailjet.MailjetInboundWebhookView"),
        name="mailjet_inbound_webhook",
    ),
    path(
        "mailtrap/inbound/",
        webhook_view("anymail.webhooks.mailtrap.MailtrapInboundWebhookView"),
        name="mailtrap_inbound_webhook",
    ),
    path(
        "postal/inbound/",
        webhook_view("anymail.webhooks.postal.PostalInboundWebhookView"),
        name="postal_inbound_webhook",
    ),
    path(
        "postmark/inbound/",
        webhook_view("anymail.webhooks.postmark.PostmarkInboundWebhookView"),
        name="postmark_inbound_webhook",
    ),
    path(
        "sendgrid/inbound/",
        webhook_view("anymail.webhooks.sendgrid.SendGridInboundWebhookView"),
        name="sendgrid_inbound_webhook",
    ),
    path(
        "sendinblue/inbound/",
        webhook_view("anymail.webhooks.sendinblue.SendinBlueInboundWebhookView"),
        name="sendinblue_inbound_webhook",
    ),
    path(
        "sparkpost/inbound/",
        webhook_view("anymail.webhooks.sparkpost.SparkPostInboundWebhookView"),
        name="sparkpost_inbound_webhook",
    ),
    path(
        "amazon_ses/tracking/",
        webhook_view("anymail.webhooks.amazon_ses.AmazonSESTrackingWebhookView"),
        name="amazon_ses_tracking_webhook",
    ),
    path(
        "brevo/tracking/",
        webhook_view("anymail.webhooks.brevo.BrevoTrackingWebhookView"),
        name="brevo_tracking_webhook",
    ),
    path(
        "mailersend/tracking/",
        webhook_view("anymail.webhooks.mailersend.MailerSendTrackingWebhookView"),
        name="mailersend_tracking_webhook",
    ),
    path(
        "mailgun/tracking/",
        webhook_view("anymail.webhooks.mailgun.MailgunTrackingWebhookView"),
        name="mailgun_tracking_webhook",
    ),
    path(
        "mailjet/tracking/",
        webhook_view("anymail.webhooks.mailjet.MailjetTrackingWebhookView"),
        name="mailjet_tracking_webhook",
    ),
    path(
        "mailtrap/tracking/",
        webhook_view("anymail.webhooks.mailtrap.MailtrapTrackingWebhookView"),
        name="mailtrap_tracking_webhook",
    ),
    path(
        "postal/tracking/",
        webhook_view("anymail.webhooks.postal.PostalTrackingWebhookView"),
        name="postal_tracking_webhook",
    ),
    path(
        "postmark/tracking/",
        webhook_view("anymail.webhooks.postmark.PostmarkTrackingWebhookView"),
        name="postmark_tracking_webhook",
    ),
    path(
        "resend/inbound/",
        webhook_view("anymail.webhooks.resend.ResendInboundWebhookView"),
        name="resend_inbound_webhook",
    ),
    path(
        "resend/tracking/",
        webhook_view("anymail.webhooks.resend.ResendTrackingWebhookView"),
        name="resend_tracking_webhook",
    ),
    path(
        "sendgrid/tracking/",
        webhook_view("anymail.webhooks.sendgrid.SendGridTrackingWebhookView"),
        name="sendgrid_tracking_webhook",
    ),
    path(
        "sendinblue/tracking/",
        webhook_view("anymail.webhooks.sendinblue.SendinBlueTrackingWebhookView"),
        name="sendinblue_tracking_webhook",
    ),
    path(
        "sparkpost/tracking/",
        webhook_view("anymail.webhooks.sparkpost.SparkPostTrackingWebhookView"),
        name="sparkpost_tracking_webhook",
    ),
    path(
        "unisender_go/tracking/",
        webhook_view("anymail.webhooks.unisender_go.UnisenderGoTrackingWebhookView"),
        name="unisender_go_tracking_webhook",
    ),
    path(
        "mandrill/",
        webhook_view("anymail.webhooks.mandrill.MandrillCombinedWebhookView"),
        name="mandrill_webhook",
    ),
    path(
        "mandrill/tracking/",
        webhook_view("anymail.webhooks.mandrill.MandrillCombinedWebhookView"),
        name="mandrill_tracking_webhook",
    ),
]


def esp_webhooks() -> list[URLPattern]:
    """django-anymail's tracking webhooks, and the inbound webhook of INBOUND_EMAIL_ESP.

    anymail.urls routes every ESP's inbound and tracking webhooks, and a view whose
    ESP lacks its key (or boto3, for Amazon SES) raises on every request: a 500 for
    anyone who posts to it. Each answers 404 instead while its ESP is not configured;
    an inbound webhook answers 404 unless its ESP is INBOUND_EMAIL_ESP, so mail is
    taken only from the ESP the newsroom receives it through.
    """

    def not_found_until_configured(view, inbound_esp: str = ""):
        @functools.wraps(view)
        def webhook(request, *args, **kwargs):
            if inbound_esp and inbound_esp != settings.INBOUND_EMAIL_ESP:
                raise Http404("Mail is not received through this email provider.")
            try:
                return view(request, *args, **kwargs)
            except AnymailConfigurationError:
                raise Http404("This email provider's webhook is not configured.") from None

        return webhook

    inbound = {
        route.name.removesuffix("_inbound_webhook")
        for route in ANYMAIL_URLPATTERNS
        if route.name.endswith("_inbound_webhook")
    }
    if settings.INBOUND_EMAIL_ESP and settings.INBOUND_EMAIL_ESP not in inbound:
        raise ImproperlyConfigured(
            f"INBOUND_EMAIL_ESP={settings.INBOUND_EMAIL_ESP!r} is not an email provider "
            f"that receives mail; use one of {', '.join(sorted(inbound))}, or leave it empty."
        )
    return [
        URLPattern(
            route.pattern,
            not_found_until_configured(
                route.callback,
                route.name.removesuffix("_inbound_webhook")
                if route.name.endswith("_inbound_webhook")
                else "",
            ),
            route.default_args,
            route.name,
        )
        for route in ANYMAIL_URLPATTERNS
        if route.name.endswith(("_tracking_webhook", "_inbound_webhook"))
    ]
