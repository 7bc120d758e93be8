"""The appeal shown in the digest, what giving needs to know of a reader, and a reader's gifts.

The one module of either app that imports the other, in one direction only
(subscriptions -> donations): the digest asks for its appeals here, and donations
learns whether a reader gets the newsletter from `is_subscriber`, which the
DONATIONS_SUBSCRIBER_CHECK setting names so that donations imports nothing back.
A reader's "download my data" and "delete my data" reach the gifts and plans held
under their address through `reader_gifts_export` and `reader_gifts_anonymise`.
Reader state (which appeal a browser sees) is set here too: on confirming, and through
the reader token the digest's links carry.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from donations import money, reader_state, selectors
from donations import services as donations_services
from donations.models import Appeal, Placement
from newsroom import audit
from subscriptions.models import Subscriber


def is_subscriber(email: str) -> bool:
    """Whether `email` belongs to a reader who confirmed a subscription."""
    return Subscriber.objects.filter(email__iexact=email, confirmed_at__isnull=False).exists()


def newsletter_appeals() -> list[Appeal]:
    """The appeals running now in the newsletter, highest priority first (cached a minute)."""
    return selectors.active_appeals(Placement.NEWSLETTER)


def appeal_for_newsletter(*, email: str) -> Appeal | None:
    """The appeal the digest shows the reader at `email`, in their language, or None.

    Whether they are a subscriber is looked up only if a running appeal's audience asks:
    not every copy goes to a confirmed subscriber (staff test sends and previews).
    """
    language = (
        Subscriber.objects.filter(email__iexact=email).values_list("language", flat=True).first()
    )
    return selectors.appeal_for_newsletter(
        email=email, subscriber=lambda: is_subscriber(email), language=language
    )


def appeal_html(*, appeal: Appeal) -> str:
    """The appeal's block inside the digest email, links absolute."""
    return render_to_string("donations/emails/newsletter_appeal.html", {"appeal": appeal})


def reader_gifts_export(*, email: str) -> dict[str, list[dict]]:
    """The gifts and plans under `email`, for the reader's data download."""
    return selectors.gifts_export(email=email)


def reader_live_plans(*, email: str) -> list[dict]:
    """Plans under `email` still charged at Stripe: deleting one's data leaves them running."""
    return [
        {
            "amount": money.format_cents(plan.amount_cents, plan.currency, exact=True),
            "frequency": plan.get_frequency_display().lower(),
        }
        for plan in selectors.live_plans_for_email(email)
    ]


def reader_gifts_anonymise(
    *, email: str, actor: audit.Actor | None, by: str
) -> donations_services.Anonymised:
    """Anonymise the gifts and ended plans under `email`; call inside the deletion's transaction."""
    return donations_services.donor_anonymise(email=email, actor=actor, by=by)


def mark_subscriber(request: HttpRequest, response: HttpResponse) -> None:
    """Show this browser the subscribers' appeals from now on (any browser: it only picks one)."""
    reader_state.mark_subscriber(request, response)


def subscriber_link(url: str) -> str:
    """`url` with a reader token saying "subscriber", for links in the digest."""
    return reader_state.with_token(url, reader_state.token_make(subscriber=True))
