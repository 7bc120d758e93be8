"""A local Stripe API on a thread: the real SDK talks HTTP to it (settings.STRIPE_API_BASE).

It answers the GETs reconcile makes, from lists the test fills, in pages of `PAGE_SIZE`
with `has_more`, so the SDK's own pagination (`starting_after`) is what is exercised.
It opens Checkout and customer portal sessions (POSTs, kept in `posted`), refusing a
`locale` Stripe's hosted pages do not speak, with Stripe's own kind of error.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from bench.common import answer_json

PAGE_SIZE = 2
# What Stripe's hosted pages accept as `locale` (docs.stripe.com/js/appendix/supported_locales).
CHECKOUT_LOCALES = (
    {"auto", "bg", "cs", "da", "de", "el", "en", "en-GB", "es", "es-419", "et"}
    | {"fi", "fil", "fr", "fr-CA", "hr", "hu", "id", "it", "ja", "ko", "lt", "lv", "ms", "mt", "nb"}
    | {"nl", "pl", "pt", "pt-BR", "ro", "ru", "sk", "sl", "sv", "th", "tr", "vi", "zh", "zh-HK"}
    | {"zh-TW"}
)


class StripeHTTP:
    def __init__(self) -> None:
        self.events: list[dict] = []
        self.sessions: list[dict] = []
        self.invoices: list[dict] = []
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self.posted: list[tuple[str, dict[str, list[str]]]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> StripeHTTP:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def requested(self, path: str) -> list[dict[str, list[str]]]:
        return [query for seen, query in self.requests if seen == path]

    def posted_to(self, path: str) -> list[dict[str, list[str]]]:
        return [form for seen, form in self.posted if seen == path]

    def _create(self, path: str, form: dict[str, list[str]]) -> tuple[int, dict]:
        locale = form.get("locale", ["auto"])[0]
        if locale not in CHECKOUT_LOCALES:
            return 400, {
                "error": {
                    "type": "invalid_request_error",
                    "param": "locale",
                    "message": f"Invalid locale: {locale}",
                }
            }
        number = len(self.posted_to(path))
        if path == "/v1/checkout/sessions":
            session_id = f"cs_http_{number}"
            return 200, {
                "id": session_id,
                "object": "checkout.session",
                "url": f"https://checkout.stripe.test/c/pay/{session_id}",
                "locale": locale,
            }
        if path == "/v1/billing_portal/sessions":
            return 200, {
                "id": f"bps_http_{number}",
                "object": "billing_portal.session",
                "url": f"https://billing.stripe.test/p/session/{number}",
                "locale": locale,
            }
        return 404, {"error": {"type": "invalid_request_error", "message": f"No {path}"}}

    def _page(self, path: str, objects: list[dict], query: dict[str, list[str]]) -> dict:
        gte = int(query.get("created[gte]", ["0"])[0])
        types = [value for key, value in query.items() if key.startswith("types[")]
        wanted = {name for values in types for name in values}
        found = [
            obj
            for obj in sorted(objects, key=lambda obj: obj.get("created") or 0, reverse=True)
            if (obj.get("created") or time.time()) >= gte
            and (not wanted or obj.get("type") in wanted)
        ]
        after = query.get("starting_after", [None])[0]
        if after:
            found = found[[obj["id"] for obj in found].index(after) + 1 :]
        return {
            "object": "list",
            "url": path,
            "data": found[:PAGE_SIZE],
            "has_more": len(found) > PAGE_SIZE,
        }

    def _answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict]:
        lists = {
            "/v1/events": self.events,
            "/v1/checkout/sessions": self.sessions,
            "/v1/invoices": self.invoices,
        }
        if path in lists:
            return 200, self._page(path, lists[path], query)
        if path.startswith("/v1/payment_intents/"):
            intent_id = path.rsplit("/", 1)[1]
            return 200, {
                "id": intent_id,
                "object": "payment_intent",
                "customer": "cus_http_1",
                "latest_charge": {
                    "id": f"ch_for_{intent_id}",
                    "object": "charge",
                    "created": int(time.time()),
                    "payment_method_details": {"type": "card", "card": {"last4": "4242"}},
                },
            }
        return 404, {"error": {"type": "invalid_request_error", "message": f"No {path}"}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stripe_http = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                stripe_http.requests.append((parts.path, query))
                status, body = stripe_http._answer(parts.path, query)
                answer_json(self, status, body)

            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                stripe_http.posted.append((parts.path, form))
                status, body = stripe_http._create(parts.path, form)
                answer_json(self, status, body)

            def log_message(self, *args) -> None:
                pass

        return Handler
