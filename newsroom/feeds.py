"""RSS 2.0 feeds: the whole site, each category, each topic (django.contrib.syndication).

Each feed is in the language of its URL (`/ar/feed/`): that language's articles, and the
channel's <language> (Feed.language unset: the active language).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.syndication.views import Feed
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import get_language, gettext

from newsroom import selectors
from newsroom.links import absolute
from newsroom.models import Article, Category, Topic

FEED_SIZE = 30


class _ArticleFeed(Feed):
    """Shared item fields; each feed picks its articles.

    Every link is made absolute on SITE_URL here: django.contrib.syndication puts the
    request's host before a relative link only, and a feed is read far from any request.
    """

    def item_link(self, item: Article) -> str:
        return absolute(item.get_absolute_url())

    def item_title(self, item: Article) -> str:
        return item.headline

    def item_description(self, item: Article) -> str:
        return item.dek

    def item_pubdate(self, item: Article):
        return item.published_at

    def item_updateddate(self, item: Article):
        return item.updated_at

    def item_author_name(self, item: Article) -> str:
        return ", ".join(author.local_name for author in item.authors.all())

    def item_categories(self, item: Article) -> list[str]:
        return [item.category.local_name]


class SiteFeed(_ArticleFeed):
    def description(self) -> str:
        return gettext("The latest reporting.")

    def title(self) -> str:
        return settings.NEWSROOM_NAME

    def link(self) -> str:
        return absolute(reverse("home"))

    def feed_url(self) -> str:
        return absolute(reverse("feed"))

    def items(self):
        return selectors.articles_public(language=get_language())[:FEED_SIZE]


class CategoryFeed(_ArticleFeed):
    def get_object(self, request, slug: str) -> Category:
        return get_object_or_404(Category, slug=slug)

    def title(self, obj: Category) -> str:
        return f"{obj.local_name} · {settings.NEWSROOM_NAME}"

    def link(self, obj: Category) -> str:
        return absolute(obj.get_absolute_url())

    def feed_url(self, obj: Category) -> str:
        return absolute(reverse("category_feed", kwargs={"slug": obj.slug}))

    def description(self, obj: Category) -> str:
        return obj.local_description or gettext("The latest in %(name)s.") % {
            "name": obj.local_name
        }

    def items(self, obj: Category):
        return selectors.articles_in_category(category=obj, language=get_language())[:FEED_SIZE]


class TopicFeed(_ArticleFeed):
    def get_object(self, request, slug: str) -> Topic:
        return get_object_or_404(Topic, slug=slug)

    def title(self, obj: Topic) -> str:
        return f"{obj.local_name} · {settings.NEWSROOM_NAME}"

    def link(self, obj: Topic) -> str:
        return absolute(obj.get_absolute_url())

    def feed_url(self, obj: Topic) -> str:
        return absolute(reverse("topic_feed", kwargs={"slug": obj.slug}))

    def description(self, obj: Topic) -> str:
        return obj.local_description or gettext("The latest on %(name)s.") % {
            "name": obj.local_name
        }

    def items(self, obj: Topic):
        return selectors.articles_on_topic(topic=obj, language=get_language())[:FEED_SIZE]
