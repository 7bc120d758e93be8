"""The newsroom's public pages."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.paginator import Paginator
from django.db.models import QuerySet, prefetch_related_objects
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.utils.safestring import mark_safe
from django.utils.translation import get_language, gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_safe

from newsroom import fragments, health, selectors
from newsroom.caching import is_signed_in, public_page
from newsroom.links import absolute
from newsroom.models import Article, Author, Category, Topic
from newsroom.parsing import page_number
from newsroom.richtext import body_blocks
from newsroom.security import second_factor_refusal


@never_cache
@require_GET
def healthz_live(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Touches no service, so a failing one restarts nothing."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Readiness: the database, cache and broker; 503 naming the part that is down."""
    state = health.ready()
    healthy = all(value in ("ok", "in-process") for value in state.values())
    response = JsonResponse(
        {"status": "ok" if healthy else "down", **state}, status=200 if healthy else 503
    )
    # Not logged by Django as an error each second the load balancer asks: the part that
    # is down is logged by newsroom.health, once a minute.
    response._has_been_logged = True
    return response


# --- the public pages ---------------------------------------------------------

PAGE_SIZE = 20
SEARCH_MAX_LENGTH = 200


def _meta(
    *, title: str, description: str, path: str, image: str = "", kind: str = "website"
) -> dict:
    return {
        "title": title,
        "description": description,
        "url": absolute(path),
        "image": absolute(image) if image.startswith("/") else image,
        "type": kind,
    }


def _page(request: HttpRequest, queryset):
    return Paginator(queryset, PAGE_SIZE).get_page(page_number(request))


def _section(request: HttpRequest, model: type[Category | Topic | Author], slug: str):
    """The category, topic or author at `slug`, kept for the content version; else 404."""
    item = fragments.cached(
        request, (model.__name__, slug), lambda: model.objects.filter(slug=slug).first()
    )
    if item is None:
        raise Http404(f"No {model._meta.verbose_name} found.")
    return item


def _lazy_page(request: HttpRequest, listing: Callable[[], QuerySet]) -> SimpleLazyObject:
    """The page of `listing()`, built, counted and read only if its part is rendered anew."""
    return SimpleLazyObject(lambda: _page(request, listing()))


@require_safe
@public_page
def home(request: HttpRequest) -> HttpResponse:
    language = get_language()
    # Read only when the page's sections are not kept for this content version.
    top = SimpleLazyObject(lambda: selectors.top_stories(language=language))
    sections = SimpleLazyObject(
        lambda: selectors.latest_per_category(language=language, exclude_ids=[a.id for a in top])
    )
    return render(
        request,
        "newsroom/home.html",
        {
            "top_stories": top,
            "sections": sections,
            "meta": _meta(
                title=settings.NEWSROOM_NAME,
                description=gettext("Independent, reader-funded reporting from the Middle East."),
                path=reverse("home"),
            ),
        },
    )


def _place_pull_quotes(blocks: list[str], quotes: list[str]) -> list[dict]:
    """Spread the pull quotes evenly between the body's blocks, never before the first."""
    placed: list[dict] = [
        {"html": mark_safe(block), "quotes": []} for block in blocks
    ]  # sanitised on save
    if not placed:
        return placed
    for index, quote in enumerate(quotes):
        after = round((index + 1) * len(placed) / (len(quotes) + 1))
        placed[min(max(after, 1), len(placed)) - 1]["quotes"].append(quote)
    return placed


def _news_article_jsonld(article: Article) -> dict:
    """schema.org NewsArticle, as search engines read it (schema.org/NewsArticle)."""
    data = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": article.headline[:110],
        "description": article.dek,
        "inLanguage": article.language,
        "mainEntityOfPage": absolute(article.get_absolute_url()),
        "url": absolute(article.get_absolute_url()),
        "datePublished": article.published_at.isoformat() if article.published_at else None,
        "dateModified": article.updated_at.isoformat(),
        "articleSection": article.category.translated("name", language=article.language),
        "keywords": [
            topic.translated("name", language=article.language) for topic in article.topics.all()
        ],
        "isAccessibleForFree": True,
        "author": [
            {
                "@type": "Person",
                "name": author.translated("name", language=article.language),
                "url": absolute(author.get_absolute_url()),
            }
            for author in article.authors.all()
        ],
        "publisher": {
            "@type": "NewsMediaOrganization",
            "name": settings.NEWSROOM_NAME,
            "url": absolute("/"),
        },
    }
    if article.lead_photo:
        data["image"] = [absolute(article.lead_photo.url)]
    return data


@require_safe
@public_page
def article(request: HttpRequest, slug: str) -> HttpResponse:
    # Kept only for readers' renderings (signed-in staff always read the database).
    item = fragments.cached(
        request, ("article", slug), lambda: selectors.article_for_page(slug=slug)
    )
    if item is None:
        raise Http404("No such article.")
    preview = not item.is_public
    if preview and not (is_signed_in(request) and request.user.is_staff):
        # Drafts and articles whose time has not come do not exist for readers.
        raise Http404("No such article.")
    if preview and (refusal := second_factor_refusal(request)):
        return refusal  # staff-only content: a password alone does not open it
    if item.language != get_language():
        # An article lives under its own language's prefix only: one URL per version.
        return redirect(item.get_absolute_url(), permanent=not preview)
    versions = fragments.cached(
        request,
        ("story-versions", item.pk),
        lambda: {v.language: v.get_absolute_url() for v in selectors.story_versions(article=item)},
    )
    if not fragments.is_cached(request, ("part", "article-header", item.pk)):
        # The header, footer and JSON-LD name the authors and topics: read them in two
        # queries, and only when those parts are rendered anew.
        prefetch_related_objects([item], "authors", "topics")
    return render(
        request,
        "newsroom/article.html",
        {
            "article": item,
            "preview": preview,
            "language_versions": {item.language: item.get_absolute_url(), **versions},
            "blocks": fragments.cached(
                request,
                ("blocks", item.pk),
                lambda: _place_pull_quotes(body_blocks(item.body), item.pull_quotes or []),
            ),
            # Called by the template only when the head's part is rendered anew.
            "jsonld": lambda: _news_article_jsonld(item),
            "meta": _meta(
                title=item.headline,
                description=item.dek,
                path=item.get_absolute_url(),
                image=item.lead_photo.url if item.lead_photo else "",
                kind="article",
            ),
        },
    )


@require_safe
@public_page
def category(request: HttpRequest, slug: str) -> HttpResponse:
    item = _section(request, Category, slug)
    return render(
        request,
        "newsroom/category.html",
        {
            "category": item,
            "page": _lazy_page(
                request,
                lambda: selectors.articles_in_category(category=item, language=get_language()),
            ),
            "page_number": page_number(request),
            "feed_url": reverse("category_feed", kwargs={"slug": item.slug}),
            "meta": _meta(
                title=item.local_name,
                description=item.local_description,
                path=item.get_absolute_url(),
            ),
        },
    )


@require_safe
@public_page
def topic(request: HttpRequest, slug: str) -> HttpResponse:
    item = _section(request, Topic, slug)
    return render(
        request,
        "newsroom/topic.html",
        {
            "topic": item,
            "page": _lazy_page(
                request, lambda: selectors.articles_on_topic(topic=item, language=get_language())
            ),
            "page_number": page_number(request),
            "feed_url": reverse("topic_feed", kwargs={"slug": item.slug}),
            "meta": _meta(
                title=item.local_name,
                description=item.local_description,
                path=item.get_absolute_url(),
            ),
        },
    )


@require_safe
@public_page
def author(request: HttpRequest, slug: str) -> HttpResponse:
    item = _section(request, Author, slug)
    return render(
        request,
        "newsroom/author.html",
        {
            "author": item,
            "page": _lazy_page(request, lambda: selectors.articles_by_author(author=item)),
            "page_number": page_number(request),
            "meta": _meta(
                title=item.local_name,
                description=item.local_bio,
                path=item.get_absolute_url(),
                image=item.photo.url if item.photo else "",
                kind="profile",
            ),
        },
    )


@require_safe
@public_page
def search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:SEARCH_MAX_LENGTH]
    page = (
        _page(request, selectors.search_articles(query=query, language=get_language()))
        if query
        else None
    )
    return render(
        request,
        "newsroom/search.html",
        {
            "query": query,
            "page": page,
            "meta": _meta(
                title=gettext("Search: %(query)s") % {"query": query}
                if query
                else gettext("Search"),
                description=gettext("Search the reporting of %(name)s.")
                % {"name": settings.NEWSROOM_NAME},
                path=reverse("search"),
            ),
        },
    )


@require_safe
@public_page
def browse(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "newsroom/browse.html",
        {
            "categories": selectors.categories_with_counts(language=get_language()),
            "topics": selectors.topics_with_counts(language=get_language()),
            "meta": _meta(
                title=gettext("Browse categories and topics"),
                description=gettext(
                    "Every section and subject we cover. Follow the ones that matter to you."
                ),
                path=reverse("browse"),
            ),
        },
    )


@require_safe
def robots_txt(request: HttpRequest) -> HttpResponse:
    lines = [
        "User-agent: *",
        # A custom ADMIN_URL is kept out of robots.txt: listing it would publish it.
        *(["Disallow: /admin/"] if settings.ADMIN_URL == "admin/" else []),
        "Disallow: /search/",
        "",
        f"Sitemap: {absolute(reverse('sitemap'))}",
        f"Sitemap: {absolute(reverse('news_sitemap'))}",
        "",
    ]
    response = HttpResponse("\n".join(lines), content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "public, max-age=3600"
    return response
