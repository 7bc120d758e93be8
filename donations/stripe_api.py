"""The one doorway to Stripe: every SDK call of the project is a function here.

Callers use `stripe_api.<function>(...)` through the module, so tests replace these
functions with a recording fake and everything behind them stays real. Each function
takes and returns plain dicts (`StripeObject.to_dict()`), so the rest of the code
never depends on the SDK's object model.

`settings.STRIPE_API_BASE`, when set, points the SDK at another API host (a local
mock). One client is kept per thread, process and settings, so its HTTP connection to
Stripe is kept open between requests, and a changed setting still gets a client of its
own at once.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from typing import Any

import requests
import stripe
from django.conf import settings
from requests.utils import get_environ_proxies

# Stripe's default tolerance for a webhook's timestamp (docs.stripe.com/webhooks
# "Prevent replay attacks"): older signatures are refused.
WEBHOOK_TOLERANCE_SECONDS = 300

# The languages Stripe's hosted pages speak (docs.stripe.com/js/appendix/supported_locales,
# the Checkout column, and the portal's `locale`): the API refuses a session asking for
# any other. Arabic and Hebrew are not among them, so those donors get "auto" (their
# browser's language where Stripe has it) and our own wording in the line items.
CHECKOUT_LOCALES = frozenset(
    {"bg", "cs", "da", "de", "el", "en", "en-GB", "es", "es-419", "et", "fi", "fil", "fr"}
    | {"fr-CA", "hr", "hu", "id", "it", "ja", "ko", "lt", "lv", "ms", "mt", "nb", "nl"}
    | {"pl", "pt", "pt-BR", "ro", "ru", "sk", "sl", "sv", "th", "tr", "vi", "zh"}
    | {"zh-HK", "zh-TW"}
)
PORTAL_LOCALES = CHECKOUT_LOCALES | {"en-AU", "en-CA", "en-IE", "en-IN", "en-NZ", "en-SG"}

SignatureVerificationError = stripe.SignatureVerificationError
StripeError = stripe.StripeError


# One client per thread (its requests session is not shared between threads), per
# process and per settings.
_kept = threading.local()


def _client() -> stripe.StripeClient:
    if not settings.STRIPE_SECRET_KEY:
        # On a laptop without keys: fail at once, as Stripe would, instead of calling out.
        raise stripe.AuthenticationError("STRIPE_SECRET_KEY is not set.")
    # The process id too: a forked worker must not share its parent's open connection.
    key = (
        os.getpid(),
        settings.STRIPE_SECRET_KEY,
        settings.STRIPE_API_BASE,
        settings.STRIPE_MAX_NETWORK_RETRIES,
        settings.STRIPE_TIMEOUT_SECONDS,
    )
    clients = _kept.__dict__.setdefault("clients", {})
    client = clients.get(key)
    if client is None:
        base = settings.STRIPE_API_BASE or stripe.DEFAULT_API_BASE
        # requests reads the proxy variables and ~/.netrc from the environment on every
        # call; the environment does not change within a process, so they are read once
        # here. A netrc entry would replace the API key's Authorization header.
        session = requests.Session()
        session.trust_env = False
        clients[key] = client = stripe.StripeClient(
            settings.STRIPE_SECRET_KEY,
            base_addresses={"api": base},
            # Safe with idempotency keys: a retried POST is answered with the first result
            # (docs.stripe.com/api/idempotent_requests).
            max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
            # The SDK's own default waits 80 s per try: a hung Stripe would hold the donor's
            # request until gunicorn kills it. Each try is bounded here instead.
            http_client=stripe.RequestsClient(
                timeout=settings.STRIPE_TIMEOUT_SECONDS,
                session=session,
                proxy=get_environ_proxies(base) or None,
            ),
        )
    return client


def warm_up() -> None:
    """Build this process's client and load the SDK's Checkout modules."""
    if settings.STRIPE_SECRET_KEY:
        # The SDK imports its service modules when they are first reached.
        _client().v1.checkout.sessions  # noqa: B018


def _plain(obj: Any) -> dict:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def stripe_locale(language: str, *, offered: frozenset[str] = CHECKOUT_LOCALES) -> str:
    """The `locale` to open a Stripe page with for a donor who reads `language`."""
    return language if language in offered else "auto"


def checkout_session_create(*, params: dict, idempotency_key: str, language: str) -> dict:
    """Create a hosted Checkout Session in the donor's language; the returned dict
    carries `id` and `url`."""
    params = {**params, "locale": stripe_locale(language)}
    session = _client().v1.checkout.sessions.create(params, {"idempotency_key": idempotency_key})
    return _plain(session)


def checkout_sessions_list(*, created_gte: int) -> Iterator[dict]:
    """Every Checkout Session created at or after the Unix time `created_gte`."""
    page = _client().v1.checkout.sessions.list({"created": {"gte": created_gte}, "limit": 100})
    for session in page.auto_paging_iter():
        yield _plain(session)


def invoices_list(*, created_gte: int, status: str = "paid") -> Iterator[dict]:
    """Every invoice in `status` created at or after the Unix time `created_gte`."""
    page = _client().v1.invoices.list(
        {"created": {"gte": created_gte}, "status": status, "limit": 100}
    )
    for invoice in page.auto_paging_iter():
        yield _plain(invoice)


def events_list(*, created_gte: int, types: list[str]) -> Iterator[dict]:
    """Every event of `types` created at or after the Unix time `created_gte`, newest first.

    Stripe keeps events for 30 days (docs.stripe.com/api/events/list); the SDK fetches
    the following pages (`has_more`, `starting_after`) as the loop reaches them.
    """
    page = _client().v1.events.list({"created": {"gte": created_gte}, "types": types, "limit": 100})
    for event in page.auto_paging_iter():
        yield _plain(event)


def invoice_payment_intent_id(*, invoice_id: str) -> str | None:
    """The PaymentIntent that paid an invoice.

    Since API version 2025-03-31 an invoice no longer names its PaymentIntent; its
    InvoicePayments do (Stripe's changelog, 2025-03-31 "basil": multiple partial
    payments on invoices).
    """
    payments = _client().v1.invoice_payments.list({"invoice": invoice_id, "status": "paid"})
    for payment in payments.auto_paging_iter():
        details = _plain(payment).get("payment") or {}
        if details.get("payment_intent"):
            return details["payment_intent"]
    return None


def payment_intent_retrieve(*, payment_intent: str) -> dict:
    """A PaymentIntent with its latest charge expanded (for the card's last four digits)."""
    intent = _client().v1.payment_intents.retrieve(payment_intent, {"expand": ["latest_charge"]})
    return _plain(intent)


def refund_create(*, payment_intent: str, amount: int | None, idempotency_key: str) -> dict:
    """Ask Stripe to refund `amount` cents (all of it when None) of a payment."""
    params: dict[str, Any] = {"payment_intent": payment_intent, "reason": "requested_by_customer"}
    if amount is not None:
        params["amount"] = amount
    refund = _client().v1.refunds.create(params, {"idempotency_key": idempotency_key})
    return _plain(refund)


def billing_portal_session_create(*, customer: str, return_url: str, language: str) -> dict:
    """A Customer Portal session (docs.stripe.com/customer-management) to send the donor
    to, in their language."""
    session = _client().v1.billing_portal.sessions.create(
        {
            "customer": customer,
            "return_url": return_url,
            "locale": stripe_locale(language, offered=PORTAL_LOCALES),
        }
    )
    return _plain(session)


def webhook_event_construct(*, payload: bytes, signature: str) -> dict:
    """Verify `Stripe-Signature` on the raw body and return the event as a dict.

    Raises SignatureVerificationError for a forged, missing or stale signature
    (docs.stripe.com/webhooks#verify-events).
    """
    stripe.WebhookSignature.verify_header(
        payload.decode("utf-8"),
        signature,
        settings.STRIPE_WEBHOOK_SECRET,
        WEBHOOK_TOLERANCE_SECONDS,
    )
    return json.loads(payload)
