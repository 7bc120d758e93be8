from __future__ import annotations

import json

from django import template
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import translation
from django.utils.safestring import SafeString, mark_safe

from newsroom import selectors
from newsroom.caching import content_version
from newsroom.i18n import language_versions
from newsroom.links import absolute

register = template.Library()

# The navigation's categories, kept in this process for the content version they were
# read at (one entry). Categories change only through newsroom.services, which moves
# the version, so a page rendered at a version gets exactly that version's categories.
_nav_memo: dict[str, list] = {}

# The escapes of django.utils.html.json_script: "<", ">" and "&" written as \\u escapes
# can never end the <script> element or open a comment, whatever the data holds.
_SCRIPT_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}


@register.filter
def ld_json(value) -> SafeString:
    """Render `value` as a JSON-LD <script> element, escaped like json_script."""
    data = json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False).translate(_SCRIPT_ESCAPES)
    return mark_safe(f'<script type="application/ld+json">{data}</script>')  # escaped above


@register.inclusion_tag("newsroom/_nav.html", takes_context=True)
def site_nav(context) -> dict:
    """The main navigation: every category, then browse and search."""
    request = context.get("request")
    version = content_version(request) if request is not None else None
    if version is None:  # outside the page cache (signed-in staff, other apps' pages)
        return {"categories": list(selectors.categories()), "request": request}
    if version not in _nav_memo:
        _nav_memo.clear()
        _nav_memo[version] = list(selectors.categories())
    return {"categories": _nav_memo[version], "request": request}


@register.inclusion_tag("newsroom/_article_card.html")
def article_card(article, *, level: int = 3, photo: bool = True) -> dict:
    """One article in a list: photo, category, headline, dek, byline, time."""
    # An article in another language than the page's: its own words carry their language
    # (WCAG 3.1.2) and direction; the kicker and byline around them stay the page's.
    lang = article.language if article.language != translation.get_language() else ""
    text_dir = ""
    if lang:
        text_dir = "rtl" if translation.get_language_info(lang)["bidi"] else "ltr"
    return {"article": article, "level": level, "photo": photo, "lang": lang, "dir": text_dir}


@register.simple_tag(takes_context=True)
def page_languages(context) -> dict:
    """The page in every language: the switcher's links, the hreflang alternates, x-default."""
    request = context.get("request")
    if request is None:
        return {"links": [], "x_default": ""}
    links = language_versions(request, versions=context.get("language_versions"))
    for link in links:
        link["absolute"] = absolute(link["url"])
    alternates = [link for link in links if link["alternate"]]
    default = next((a for a in alternates if a["code"] == settings.LANGUAGE_CODE), None)
    current = next((a for a in alternates if a["current"]), None)
    x_default = (default or current or {"absolute": ""})["absolute"]
    return {"links": links, "alternates": alternates, "x_default": x_default}
