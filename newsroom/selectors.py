"""Reads of the newsroom that pages, feeds and other apps share."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from newsroom.models import Article, Author, Category, Topic

LATEST_PER_CATEGORY = 4
TOP_STORIES = 5


def _for_listing(qs: QuerySet[Article]) -> QuerySet[Article]:
    # Lists show headline, dek, photo, category and bylines: two queries however long the list.
    return (
        qs.select_related("category")
        .prefetch_related(
            Prefetch("authors", queryset=Author.objects.only("id", "name", "slug", "translations"))
        )
        .defer("body")
    )


def articles_public(*, language: str | None = None) -> QuerySet[Article]:
    """Every article a reader may see now (in `language`, when given), newest first."""
    public = Article.objects.published()
    if language is not None:
        public = public.filter(language=language)
    return _for_listing(public)


def article_for_page(*, slug: str) -> Article | None:
    """The article at `slug` whatever its status (the view decides who may see it).

    Its authors and topics are not read here: the page reads them only for the parts it
    renders anew (`prefetch_related_objects`).
    """
    return Article.objects.select_related("category").filter(slug=slug).first()


def story_versions(*, article: Article) -> list[Article]:
    """The public versions of `article`'s story in other languages, in LANGUAGES order."""
    order = [code for code, _name in settings.LANGUAGES]
    versions = (
        Article.objects.published()
        .filter(story=article.story)
        .exclude(pk=article.pk)
        .only("slug", "language", "story")
    )
    return sorted(versions, key=lambda v: order.index(v.language) if v.language in order else 99)


def top_stories(*, language: str, limit: int = TOP_STORIES) -> list[Article]:
    return list(
        articles_public(language=language)
        .filter(top_story_rank__isnull=False)
        .order_by("top_story_rank", "-published_at")[:limit]
    )


def _latest_ids(*, language: str, exclude_ids: list[int], per_category: int) -> list[int]:
    """Ids of each category's newest public articles, read from the index, never the whole table."""
    newest = (
        Article.objects.published()
        .filter(language=language)
        .exclude(id__in=exclude_ids)
        .order_by("-published_at", "-id")
        .values("id")
    )
    if settings.USING_POSTGRES:
        from django.contrib.postgres.expressions import ArraySubquery

        # One query: ARRAY(SELECT ... LIMIT n) per category, each a short walk backwards
        # down the (language, category, status, published_at) index.
        per_row = Category.objects.annotate(
            ids=ArraySubquery(newest.filter(category=OuterRef("pk"))[:per_category])
        ).values_list("ids", flat=True)
        return [pk for ids in per_row for pk in ids]
    # SQLite has no arrays nor LIMIT inside a UNION: one small query per category.
    return [
        pk
        for category_id in Category.objects.values_list("pk", flat=True)
        for pk in newest.filter(category_id=category_id).values_list("id", flat=True)[:per_category]
    ]


def latest_per_category(
    *, language: str, exclude_ids: list[int], per_category: int = LATEST_PER_CATEGORY
) -> list[tuple[Category, list[Article]]]:
    """Each category (in its order) with its newest articles; categories with none are left out.

    A ROW_NUMBER() window would read every public article; this reads `per_category`
    rows per category from the index.
    """
    ids = _latest_ids(language=language, exclude_ids=exclude_ids, per_category=per_category)
    articles = _for_listing(Article.objects.filter(id__in=ids)).order_by(
        "category__order", "category__name", "category_id", "-published_at", "-id"
    )
    sections: dict[int, tuple[Category, list[Article]]] = {}
    for article in articles:
        sections.setdefault(article.category_id, (article.category, []))[1].append(article)
    return list(sections.values())


def articles_in_category(*, category: Category, language: str) -> QuerySet[Article]:
    return articles_public(language=language).filter(category=category)


def articles_on_topic(*, topic: Topic, language: str) -> QuerySet[Article]:
    return articles_public(language=language).filter(topics=topic)


def articles_by_author(*, author: Author) -> QuerySet[Article]:
    return articles_public().filter(authors=author)


def categories() -> QuerySet[Category]:
    return Category.objects.all()


def topics() -> QuerySet[Topic]:
    return Topic.objects.all()


# Each language's text search configuration and folding function (migration 0010 made
# the functions and a GIN index per language on exactly these expressions).
SEARCH_CONFIGS = {
    "en": ("english", ""),
    "ar": ("arabic", "newsroom_arabic_fold"),
    "he": ("simple", "newsroom_hebrew_fold"),
}


def _search_document(*, config: str, fold: str) -> str:
    """The weighted tsvector SQL of an article: headline A, dek B, body C (PostgreSQL §12.3.3)."""

    def part(column: str, weight: str) -> str:
        text = f'COALESCE("newsroom_article"."{column}", \'\')'
        if fold:
            text = f"{fold}({text})"
        return f"setweight(to_tsvector('{config}'::regconfig, {text}), '{weight}')"

    return " || ".join((part("headline", "A"), part("dek", "B"), part("body", "C")))


def search_articles(*, query: str, language: str) -> QuerySet[Article]:
    """Articles in `language` matching `query`, best first.

    PostgreSQL: full-text search in the language's configuration, text and query folded
    alike (Arabic diacritics and letter forms, Hebrew points). SQLite: a plain match.
    """
    query = query.strip()
    if not query:
        return Article.objects.none()
    public = articles_public(language=language)
    if settings.USING_POSTGRES:
        from django.db.models import BooleanField, FloatField
        from django.db.models.expressions import RawSQL

        config, fold = SEARCH_CONFIGS.get(language, ("simple", ""))
        document = _search_document(config=config, fold=fold)
        words = f"{fold}(%s)" if fold else "%s"
        tsquery = f"websearch_to_tsquery('{config}'::regconfig, {words})"
        # The SQL is built from SEARCH_CONFIGS alone; the reader's words are a parameter.
        matches = RawSQL(f"({document}) @@ {tsquery}", [query], BooleanField())  # noqa: S611
        rank = RawSQL(f"ts_rank({document}, {tsquery})", [query], FloatField())  # noqa: S611
        return public.filter(matches).annotate(rank=rank).order_by("-rank", "-published_at")
    matches = Q()
    for word in query.split()[:8]:
        matches &= Q(headline__icontains=word) | Q(dek__icontains=word) | Q(body__icontains=word)
    return public.filter(matches)


def articles_since(*, hours: int = 48) -> QuerySet[Article]:
    """Public articles of the last `hours` (the Google News sitemap's window)."""
    return articles_public().filter(published_at__gte=timezone.now() - timedelta(hours=hours))


def _public_count(relation: str, *, language: str) -> Count:
    return Count(
        relation,
        filter=Q(
            **{
                f"{relation}__status__in": [Article.Status.PUBLISHED, Article.Status.SCHEDULED],
                f"{relation}__published_at__lte": timezone.now(),
                f"{relation}__language": language,
            }
        ),
        distinct=True,
    )


def categories_with_counts(*, language: str) -> QuerySet[Category]:
    """Categories in their order, each with `article_count` of public articles in `language`."""
    # An aggregate query ignores Meta.ordering (Django 3.1 release notes): order explicitly.
    return Category.objects.annotate(
        article_count=_public_count("articles", language=language)
    ).order_by("order", "name")


def topics_with_counts(*, language: str) -> QuerySet[Topic]:
    """Topics by name, each with `article_count` of public articles in `language`."""
    return Topic.objects.annotate(
        article_count=_public_count("articles", language=language)
    ).order_by("name")
