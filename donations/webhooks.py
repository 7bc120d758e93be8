"""Stripe's webhook: verify, store once, answer at once, process in a task.

docs.stripe.com/webhooks: the signature is checked on the raw body; each event is
stored under its unique id, one row that is also its own outbox (a redelivery stores
nothing more and still answers 200); a 2xx goes back before any work is done, because
Stripe retries slow endpoints, and whatever the broker does; event types we do not handle
are answered 200 so Stripe does not retry them. No task is pushed per event: each process
pushes one drain per half second, which queues every event stored and not yet queued
(donations/services/events.py), and beat's requeue takes what a lost drain left.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from donations import services, stripe_api


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """POST /webhooks/stripe/: 400 for a bad signature, 200 for everything verified."""
    try:
        # META, not request.headers: the one header read, without building them all.
        event = stripe_api.webhook_event_construct(
            payload=request.body, signature=request.META.get("HTTP_STRIPE_SIGNATURE", "")
        )
    except (stripe_api.SignatureVerificationError, ValueError):
        # ValueError also covers a body that is not UTF-8 JSON.
        return HttpResponse("Invalid signature.", status=400, content_type="text/plain")
    if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
        return HttpResponse("Not an event.", status=400, content_type="text/plain")
    # The body as Stripe signed it is what is stored: already JSON, not encoded again.
    services.stripe_event_accept(event=event, payload=request.body.decode())
    return HttpResponse("ok", content_type="text/plain")
