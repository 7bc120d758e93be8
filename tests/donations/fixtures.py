"""Fixtures of giving that other folders' tests use too: the Stripe settings and a fake doorway.

A plugin (tests/conftest.py lists it in `pytest_plugins`): nothing here is autouse, so each
folder's conftest.py says which of these its tests always get.
"""

from __future__ import annotations

import time

import pytest
import stripe

from donations import stripe_api

WEBHOOK_SECRET = "whsec_test_secret"


class FakeStripe:
    """Stands in for donations.stripe_api: records every call, answers like Stripe."""

    def __init__(self, checkout_url_base: str = "https://checkout.stripe.test/c/pay/"):
        self.calls: list[tuple[str, dict]] = []
        self.checkout_url_base = checkout_url_base
        self.sessions: list[dict] = []
        self.invoices: list[dict] = []
        self.events: list[dict] = []
        self.intents: dict[str, dict] = {}
        self.invoice_intents: dict[str, str] = {}
        self.fail_with: Exception | None = None
        self.customer_portal_url = "https://billing.stripe.test/p/session/test_1"

    def named(self, name: str) -> list[dict]:
        return [kwargs for called, kwargs in self.calls if called == name]

    def _record(self, name: str, **kwargs) -> None:
        self.calls.append((name, kwargs))
        if self.fail_with is not None:
            raise self.fail_with

    def checkout_session_create(self, *, params: dict, idempotency_key: str, language: str) -> dict:
        self._record(
            "checkout_session_create",
            params=params,
            idempotency_key=idempotency_key,
            language=language,
        )
        number = len(self.named("checkout_session_create"))
        session_id = f"cs_test_fake_{number}"
        return {
            "id": session_id,
            "object": "checkout.session",
            "url": f"{self.checkout_url_base}{session_id}",
        }

    def checkout_sessions_list(self, *, created_gte: int):
        self._record("checkout_sessions_list", created_gte=created_gte)
        return iter(self.sessions)

    def invoices_list(self, *, created_gte: int, status: str = "paid"):
        self._record("invoices_list", created_gte=created_gte, status=status)
        return iter(self.invoices)

    def events_list(self, *, created_gte: int, types: list[str]):
        self._record("events_list", created_gte=created_gte, types=types)
        return iter(event for event in self.events if event["type"] in types)

    def invoice_payment_intent_id(self, *, invoice_id: str) -> str | None:
        self._record("invoice_payment_intent_id", invoice_id=invoice_id)
        return self.invoice_intents.get(invoice_id, f"pi_for_{invoice_id}")

    def payment_intent_retrieve(self, *, payment_intent: str) -> dict:
        self._record("payment_intent_retrieve", payment_intent=payment_intent)
        return self.intents.get(payment_intent) or {
            "id": payment_intent,
            "customer": "cus_test_1",
            "latest_charge": {
                "id": f"ch_for_{payment_intent}",
                "created": int(time.time()),
                "payment_method_details": {
                    "type": "card",
                    "card": {"last4": "4242", "brand": "visa"},
                },
            },
        }

    def refund_create(
        self, *, payment_intent: str, amount: int | None, idempotency_key: str
    ) -> dict:
        self._record(
            "refund_create",
            payment_intent=payment_intent,
            amount=amount,
            idempotency_key=idempotency_key,
        )
        return {
            "id": "re_test_1",
            "status": "pending",
            "payment_intent": payment_intent,
            "amount": amount,
        }

    def billing_portal_session_create(
        self, *, customer: str, return_url: str, language: str
    ) -> dict:
        self._record(
            "billing_portal_session_create",
            customer=customer,
            return_url=return_url,
            language=language,
        )
        return {"id": "bps_test_1", "url": self.customer_portal_url}


DOORWAY = [
    "checkout_session_create",
    "checkout_sessions_list",
    "invoices_list",
    "events_list",
    "invoice_payment_intent_id",
    "payment_intent_retrieve",
    "refund_create",
    "billing_portal_session_create",
]


@pytest.fixture
def donation_settings(settings) -> None:
    """Test Stripe keys, the giving limits and fees, and email kept in memory."""
    settings.SITE_URL = "https://news.example"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_SECRET_KEY = "sk_test_not_used"
    settings.DONATION_MIN_CENTS = 500
    settings.DONATION_MAX_CENTS = 2_500_000
    settings.DONATION_FEE_BASIS_POINTS = 290
    settings.DONATION_FEE_FIXED_CENTS = 30
    settings.CHECKOUT_RATE_LIMIT_PER_IP = "10/10m"
    settings.CHECKOUT_RATE_LIMIT_PER_EMAIL = "5/10m"
    settings.CHECKOUT_CAPTCHA_CHECK = ""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def fake_stripe(monkeypatch) -> FakeStripe:
    """Every function of the Stripe doorway replaced by a recording fake."""
    fake = FakeStripe()
    for name in DOORWAY:
        monkeypatch.setattr(stripe_api, name, getattr(fake, name))
    return fake


def sign(payload: str, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header, computed by the SDK's own helper."""
    return stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp)
