"""Writes of the newsroom: every article and section change goes through here."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from newsroom.caching import content_changed
from newsroom.models import Article, Author, Category, Topic
from newsroom.richtext import sanitise_html


def _pages_changed() -> None:
    # Now, so this request's redirect shows the change; and again after commit, so a
    # page another request cached from the old rows in between is dropped too.
    content_changed()
    transaction.on_commit(content_changed)


@transaction.atomic
def article_save(
    *,
    article: Article,
    authors: Iterable[Author] | None = None,
    topics: Iterable[Topic] | None = None,
    translation_of: Article | None = None,
) -> Article:
    """Sanitise and save an article (new or changed), its authors and topics; refresh pages.

    `translation_of`: another version of the same story; this one joins its story (the
    model refuses a second version in one language).
    """
    if translation_of is not None:
        article.story = translation_of.story
    article.body = sanitise_html(article.body)
    article.pull_quotes = [str(q).strip() for q in (article.pull_quotes or []) if str(q).strip()]
    if article.status == Article.Status.PUBLISHED and article.published_at is None:
        article.published_at = timezone.now()
    article.full_clean(exclude={"authors", "topics"}, validate_unique=True)
    article.save()
    if authors is not None:
        article.authors.set(authors)
    if topics is not None:
        article.topics.set(topics)
    _pages_changed()
    return article


@transaction.atomic
def article_publish(*, article: Article, at=None) -> Article:
    """Publish now, or schedule for `at` when that is in the future."""
    now = timezone.now()
    if at is not None and at > now:
        article.status = Article.Status.SCHEDULED
        article.published_at = at
    elif at is None and article.is_public:
        article.status = Article.Status.PUBLISHED  # already out: keep its publication time
    else:
        article.status = Article.Status.PUBLISHED
        article.published_at = at or now
    return article_save(article=article)


@transaction.atomic
def article_unpublish(*, article: Article) -> Article:
    """Take an article back to draft: it leaves every public page at once."""
    article.status = Article.Status.DRAFT
    return article_save(article=article)


@transaction.atomic
def section_save(*, obj: Category | Topic | Author) -> Category | Topic | Author:
    """Save a category, topic or author; its name shows on many pages, so refresh them."""
    obj.full_clean()
    obj.save()
    _pages_changed()
    return obj


@transaction.atomic
def section_delete(*, obj: Category | Topic | Author) -> None:
    """Delete a category, topic or author and refresh pages."""
    obj.delete()
    _pages_changed()


@transaction.atomic
def article_delete(*, article: Article) -> None:
    """Delete an article; it leaves every page at once."""
    article.delete()
    _pages_changed()
