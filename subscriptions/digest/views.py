"""The digest's public pages: each edition's web version and each newsletter's archive.

Both are anonymous and cacheable: no session, no CSRF token, no cookie set; the same
bytes for every reader (the personal parts of an email never reach these pages).
"""

from __future__ import annotations

from datetime import date as Date

from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import translation
from django.views.decorators.http import require_safe

from newsroom.caching import public_page
from newsroom.parsing import page_number
from subscriptions.digest.compose import edition_view
from subscriptions.models import Edition, Newsletter

ARCHIVE_PAGE_SIZE = 30


def _public_editions(newsletter: Newsletter):
    return newsletter.editions.exclude(state=Edition.State.SKIPPED).order_by("-date")


# public_page: the newsroom's page cache (keyed on the content version and the reader's
# appeal state, Vary: Cookie, ETag/Last-Modified); an edition composed later shows up
# on the archive within PAGE_CACHE_SECONDS.
@require_safe
@public_page
def edition_detail(request: HttpRequest, slug: str, date: str) -> HttpResponse:
    """The web version of an edition: top stories and every section, nobody's personal copy."""
    try:
        day = Date.fromisoformat(date)
    except ValueError as exc:
        raise Http404("Not a date") from exc
    newsletter = get_object_or_404(Newsletter, slug=slug)
    edition = get_object_or_404(_public_editions(newsletter), date=day)
    # The stories in the page's language: /ar/newsletters/... is the Arabic edition.
    view = edition_view(edition=edition, followed=None, language=translation.get_language())
    newer = _public_editions(newsletter).filter(date__gt=day).order_by("date").first()
    older = _public_editions(newsletter).filter(date__lt=day).first()
    return render(
        request,
        "subscriptions/digest/edition_detail.html",
        {
            "newsletter": newsletter,
            "edition": edition,
            "view": view,
            "newer": newer,
            "older": older,
            "rtl": translation.get_language_bidi(),
            "SITE_URL": settings.SITE_URL,
        },
    )


@require_safe
@public_page
def edition_archive(request: HttpRequest, slug: str) -> HttpResponse:
    """Every edition a newsletter has sent, newest first."""
    newsletter = get_object_or_404(Newsletter, slug=slug)
    page = Paginator(_public_editions(newsletter), ARCHIVE_PAGE_SIZE).get_page(page_number(request))
    return render(
        request,
        "subscriptions/digest/edition_archive.html",
        {
            "newsletter": newsletter,
            "page": page,
            "rtl": translation.get_language_bidi(),
        },
    )
