"""Emails to donors: receipts, honoree notes, card notices, statements, manage-giving links."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation

from donations import reader_state, selectors
from donations.models import Gift, GivingStatement, HonoreeOptOut, PaymentFailureNotice
from donations.services.manage import manage_token_make
from newsroom import mail
from newsroom.links import absolute
from newsroom.outbox import outbox_enqueue
from newsroom.security import email_hash
from newsroom.text import clean_line

logger = logging.getLogger(__name__)

# A donor chooses the honoree's address: the note must not become a way to mail strangers.
HONOREE_NOTES_PER_ADDRESS = 3
HONOREE_NOTES_WINDOW = timedelta(days=30)
HONOREE_OPT_OUT_SALT = "donations.honoree-opt-out"


class HonoreeOptOutInvalid(Exception):
    """The opt-out link was not signed by us."""


def org_context() -> dict:
    """The organisation's footer, the thank-you's signer and the "manage my giving" link."""
    return {
        **mail.org_context(),
        "SIGNER_NAME": settings.THANK_YOU_SIGNER_NAME,
        "SIGNER_TITLE": settings.THANK_YOU_SIGNER_TITLE,
        "manage_url": absolute(reverse("donations:manage")),
    }


def _one_line_names(*records) -> None:
    """Clean the names of gifts and plans about to be printed (in memory, never saved).

    The forms clean what they take; this also covers older rows and names Stripe reports.
    """
    for record in records:
        for field in ("donor_name", "honoree_name"):
            if hasattr(record, field):
                setattr(record, field, clean_line(getattr(record, field)))


def _send(*, template: str, to: str, context: dict, headers: dict[str, str] | None = None) -> bool:
    """Send donations/emails/<template> from the giving address, in the active language (the
    caller's translation.override: the donor's); False if suppressed."""
    return mail.send(
        template=f"donations/emails/{template}",
        to=to,
        context={**org_context(), **context},
        from_email=settings.DONATION_FROM_EMAIL,
        headers=headers,
    )


def receipt_send(*, gift_id: int) -> bool:
    """Email the receipt of a paid gift, once."""
    with transaction.atomic():
        gift = (
            Gift.objects.select_for_update(of=("self",))
            .select_related("plan")
            .filter(pk=gift_id)
            .first()
        )
        if gift is None or gift.receipt_sent_at or gift.paid_at is None:
            return False
        _one_line_names(gift)
        # In the language the donor gave in: words, dates, amounts and links.
        with translation.override(gift.language):
            sent = _send(template="receipt", to=gift.donor_email, context=_receipt_links(gift))
        # A suppressed address is marked too: the receipt is not owed twice.
        gift.receipt_sent_at = timezone.now()
        gift.save(update_fields=["receipt_sent_at"])
    return sent


def _receipt_links(gift: Gift) -> dict:
    """The receipt's context: its links to the site tell the reader's browser of the gift."""
    token = reader_state.token_make(
        last_gift=timezone.localdate(gift.paid_at),
        subscriber=selectors.is_subscriber(gift.donor_email),
    )
    return {
        "gift": gift,
        "manage_url": reader_state.with_token(absolute(reverse("donations:manage")), token),
        "home_url": reader_state.with_token(absolute("/"), token),
    }


def honoree_opt_out_url(*, email: str) -> str:
    """The signed link that stops honoree notes to `email`; it carries a hash, not the address."""
    token = signing.Signer(salt=HONOREE_OPT_OUT_SALT).sign(email_hash(email))
    return absolute(reverse("donations:honoree_opt_out", kwargs={"token": token}))


def honoree_opt_out_read(*, token: str) -> str:
    """The address hash an opt-out link stands for; HonoreeOptOutInvalid if forged."""
    try:
        return signing.Signer(salt=HONOREE_OPT_OUT_SALT).unsign(token)
    except signing.BadSignature:
        raise HonoreeOptOutInvalid("This link is not one of ours.") from None


def honoree_opt_out(*, token: str) -> None:
    """Send no more honoree notes to the address of an opt-out link."""
    HonoreeOptOut.objects.get_or_create(email_hash=honoree_opt_out_read(token=token))


def _honoree_note_refused(*, gift: Gift) -> str:
    """Why the note of `gift` must not go out, or "" when it may."""
    if HonoreeOptOut.objects.filter(email_hash=email_hash(gift.honoree_email)).exists():
        return "opted out"
    recent = (
        Gift.objects.filter(
            honoree_email__iexact=gift.honoree_email.strip(),
            honoree_notified_at__gte=timezone.now() - HONOREE_NOTES_WINDOW,
        )
        .exclude(pk=gift.pk)
        .count()
    )
    if recent >= HONOREE_NOTES_PER_ADDRESS:
        return "too many notes to this address lately"
    return ""


def honoree_notify(*, gift_id: int) -> bool:
    """Tell the person a gift honours or remembers about it (never the amount), once.

    The note's wording is fixed; the names are all the donor chooses of it.
    """
    address = Gift.objects.filter(pk=gift_id).values_list("honoree_email", flat=True).first()
    if not address:
        return False
    with transaction.atomic():
        # Every gift to this address, locked in id order: two notes to one address at once
        # count each other, and the one order keeps two such tasks from deadlocking.
        to_address = Gift.objects.select_for_update().filter(honoree_email__iexact=address)
        gift = next((g for g in to_address.order_by("pk") if g.pk == gift_id), None)
        if (
            gift is None
            or not gift.dedication
            or not gift.honoree_email
            or gift.honoree_notified_at
            or gift.paid_at is None
        ):
            return False
        refused = _honoree_note_refused(gift=gift)
        # Marked whatever the outcome: a refused note is decided, not owed later.
        gift.honoree_notified_at = timezone.now()
        gift.save(update_fields=["honoree_notified_at"])
        if refused:
            logger.info("honoree note of gift %s not sent: %s", gift.pk, refused)
            return False
        _one_line_names(gift)
        # The donor's language: they wrote the honoree's name in it.
        with translation.override(gift.language):
            opt_out_url = honoree_opt_out_url(email=gift.honoree_email)
            return _send(
                template="honoree",
                to=gift.honoree_email,
                context={"gift": gift, "opt_out_url": opt_out_url},
                # RFC 8058: mail clients offer a one-click stop that POSTs to this URL.
                headers={
                    "List-Unsubscribe": f"<{opt_out_url}>",
                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                },
            )


def card_update_notice_send(*, notice_id: int, hosted_invoice_url: str = "") -> bool:
    """The friendly "update your card" email for a failed installment, once per invoice."""
    with transaction.atomic():
        notice = (
            PaymentFailureNotice.objects.select_for_update()
            .select_related("plan")
            .filter(pk=notice_id)
            .first()
        )
        if notice is None or notice.sent_at:
            return False
        _one_line_names(notice.plan)
        with translation.override(notice.plan.language):
            sent = _send(
                template="card_update",
                to=notice.plan.donor_email,
                context={"plan": notice.plan, "hosted_invoice_url": hosted_invoice_url},
            )
        notice.sent_at = timezone.now()
        notice.save(update_fields=["sent_at"])
    return sent


def giving_statement_send(*, email: str, year: int) -> bool:
    """Email one donor's statement of `year`, once: a unique row per donor and year."""
    email = email.lower()
    with transaction.atomic():
        statement, _ = GivingStatement.objects.get_or_create(donor_email=email, year=year)
        statement = GivingStatement.objects.select_for_update().get(pk=statement.pk)
        if statement.sent_at:
            return False
        gifts = list(selectors.gifts_in_year(email, year))
        total = sum(gift.net_cents for gift in gifts)
        if not gifts or total <= 0:
            return False
        statement.total_cents = total
        statement.gift_count = len(gifts)
        # The language of the year's last gift: the one the donor gave in most recently.
        language = max(gifts, key=lambda gift: (gift.paid_at, gift.pk)).language
        with translation.override(language):
            _send(
                template="statement",
                to=email,
                context={
                    "gifts": gifts,
                    "year": year,
                    "total_cents": total,
                    "statement": statement,
                },
            )
        statement.sent_at = timezone.now()
        statement.save()
    return True


def giving_statements_send(*, year: int) -> int:
    """Send every donor of `year` their statement; return how many were sent now."""
    return sum(
        giving_statement_send(email=email, year=year) for email in selectors.donors_for_year(year)
    )


MANAGE_LINK_TASK = "donations.manage_link_send"


def manage_link_request(*, email: str, language: str | None = None) -> None:
    """Queue a sign-in link for `email` through the outbox, whether or not we know it.

    The task decides after the response, so the answer takes as long for an address we
    know as for one we do not; a broker that is down delays the link, never loses it.
    The outbox may hand the task over twice (rarely): that is two links, each working once.
    """
    with transaction.atomic():
        outbox_enqueue(task=MANAGE_LINK_TASK, kwargs={"email": email, "language": language})


def manage_link_send(*, email: str, language: str | None = None) -> bool:
    """Email a sign-in link to a donor we know; say nothing to an address we do not.

    In `language`, the page's where the donor asked (None: the site's default).
    """
    if not selectors.gifts_for_email(email).exists():
        return False
    with translation.override(language or settings.LANGUAGE_CODE):
        link = absolute(
            reverse("donations:manage_open", kwargs={"token": manage_token_make(email=email)})
        )
        return _send(
            template="manage_link",
            to=email,
            context={"link": link, "minutes": settings.DONATION_MANAGE_LINK_MINUTES},
        )
