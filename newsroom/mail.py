"""Every email the site sends is built here: text and HTML parts, CSS inlined, the footer.

Rendering (`render`) and assembly (`message`) are apart so that a batch send can render
once and address many; `send` is the whole path for a one-recipient email, with the
suppression check (EMAIL_SUPPRESSION_CHECK) right before it leaves. Mail leaves through
Django's mail API, so an ESP is a backend swap.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.header import Header

import css_inline
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template import Context, Engine
from django.template.loader import render_to_string
from django.utils.module_loading import import_string

from newsroom import links
from newsroom.text import clean_line

logger = logging.getLogger(__name__)

_INLINER = css_inline.CSSInliner(load_remote_stylesheets=False)

# A bare address of dot-atoms (RFC 5322 §3.4.1) with an ASCII domain of 63-character labels
# at most, as nearly every reader's is: Django's sanitize_address, smtplib's quoteaddr and
# the email package's parser give it back as it is, at a tenth of what parsing it costs.
PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*"
)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def org_context() -> dict:
    """What every email's footer may print: the organisation's names, address and tax id."""
    return {
        "NEWSROOM_NAME": settings.NEWSROOM_NAME,
        "ORG_LEGAL_NAME": settings.ORG_LEGAL_NAME,
        "ORG_ADDRESS": settings.ORG_ADDRESS,
        "ORG_TAX_ID": settings.ORG_TAX_ID,
        "SITE_URL": settings.SITE_URL,
    }


def inline_css(html: str) -> str:
    # Mail clients (Gmail, Outlook) drop <style>; every rule must sit on its element.
    return _INLINER.inline(html)


def list_id(*, name: str, slug: str) -> str:
    """The RFC 2919 List-Id of a newsletter: `"Name" <slug.site-host>`.

    The id proper (slug and SITE_URL's host) stays as long as the list does, which is what
    mail clients filter on; the name is only its label.
    """
    host = links.site_host()
    name = " ".join(name.split())
    if name.isascii():
        label = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    else:
        # RFC 2047 encoded words, on one line: Django refuses a header with a newline.
        label = Header(name, "utf-8").encode(maxlinelen=0)
    return f"{label} <{slug}.{host}>"


def suppressed_among(emails: Iterable[str]) -> set[str]:
    """The addresses among `emails` that must get no email, as EMAIL_SUPPRESSION_CHECK says."""
    return set(import_string(settings.EMAIL_SUPPRESSION_CHECK)(list(emails)))


def render(*, template: str, context: dict) -> RenderedEmail:
    """Render `<template>_subject.txt`, `<template>.txt` and `<template>.html`, footer included."""
    context = {**org_context(), **context}
    # A subject is plain text: escaped for HTML it would read "O&#x27;Neil &amp; Co".
    subject = Engine.get_default().get_template(f"{template}_subject.txt")
    return RenderedEmail(
        # A header is one line: names typed by readers may carry line breaks or bidi controls.
        subject=clean_line(subject.render(Context(context, autoescape=False))),
        text=render_to_string(f"{template}.txt", context),
        html=inline_css(render_to_string(f"{template}.html", context)),
    )


def message(
    *,
    rendered: RenderedEmail,
    to: list[str],
    from_email: str | None = None,
    headers: dict[str, str] | None = None,
    tags: list[str] | None = None,
    metadata: dict[str, str] | None = None,
    merge_data: dict[str, dict[str, str]] | None = None,
    merge_headers: dict[str, dict[str, str]] | None = None,
    merge_metadata: dict[str, dict[str, str]] | None = None,
    list_id: str | None = None,
) -> EmailMultiAlternatives:
    """A multipart text + HTML email; list headers only from callers that send list mail.

    `list_id` (see list_id()) names the newsletter a message is an issue of (RFC 2919);
    mail to one person about their own business (receipts, confirmations) has none.
    `tags`, `metadata` and the `merge_*` maps are read by django-anymail's ESP backends
    (Django's own ignore them); its tracking webhooks bring the metadata back with each
    event. Merge maps, keyed by address, make it one message per `to` address (a batch
    send), each with its own merge values, headers and metadata.
    """
    headers = dict(headers or {})
    if list_id:
        headers["List-Id"] = list_id
    email = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=from_email or settings.DEFAULT_FROM_EMAIL,
        to=to,
        headers=headers,
    )
    email.attach_alternative(rendered.html, "text/html")
    if tags is not None:
        email.tags = tags
    if metadata is not None:
        email.metadata = metadata
    if merge_data is not None:
        email.merge_data = merge_data
    if merge_headers is not None:
        email.merge_headers = merge_headers
    if merge_metadata is not None:
        email.merge_metadata = merge_metadata
    return email


def send(
    *,
    template: str,
    to: str,
    context: dict,
    from_email: str | None = None,
    headers: dict[str, str] | None = None,
    tags: list[str] | None = None,
    metadata: dict[str, str] | None = None,
) -> bool:
    """Render and send one email to `to`; False, and nothing sent, when `to` is suppressed."""
    if suppressed_among([to]):
        logger.info("not emailing a suppressed address (%s)", template)
        return False
    message(
        rendered=render(template=template, context=context),
        to=[to],
        from_email=from_email,
        headers=headers,
        tags=tags,
        metadata=metadata,
    ).send()
    return True
