from __future__ import annotations

import json

from django import template
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import translation
from django.utils.safestring import SafeString, mark_safe

from newsroom import fragments, selectors
from newsroom.i18n import language_versions
from newsroom.links import absolute

register = template.Library()

# The escapes of django.utils.html.json_script: "<", ">" and "&" written as \\u escapes
# can never end the <script> element or open a comment, whatever the data holds.
_SCRIPT_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}


@register.filter
def ld_json(value) -> SafeString:
    """Render `value` as a JSON-LD <script> element, escaped like json_script."""
    data = json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False).translate(_SCRIPT_ESCAPES)
    return mark_safe(f'<script type="application/ld+json">{data}</script>')  # escaped above


def _render_part(context, name: str, values: dict) -> str:
    """`name` rendered as an inclusion tag would: its own context, the page's settings."""
    return context.template.engine.get_template(name).render(context.new(values))


@register.simple_tag(takes_context=True)
def site_nav(context) -> str:
    """The main navigation: every category, then browse and search."""
    request = context.get("request")
    categories = fragments.cached(
        request, ("nav-categories",), lambda: list(selectors.categories())
    )
    urls = fragments.cached(
        request, ("nav-urls",), lambda: {category.get_absolute_url() for category in categories}
    )
    # The one part that varies: the current section, marked for assistive technology.
    current = request.path if request is not None and request.path in urls else ""
    return fragments.cached(
        request,
        ("nav", current),
        lambda: _render_part(
            context, "newsroom/_nav.html", {"categories": categories, "request": request}
        ),
    )


@register.simple_tag(takes_context=True)
def article_card(context, article, *, level: int = 3, photo: bool = True) -> str:
    """One article in a list: photo, category, headline, dek, byline, time."""

    def render() -> str:
        # An article in another language than the page's: its own words carry their
        # language (WCAG 3.1.2) and direction; the kicker and byline stay the page's.
        lang = article.language if article.language != translation.get_language() else ""
        text_dir = ""
        if lang:
            text_dir = "rtl" if translation.get_language_info(lang)["bidi"] else "ltr"
        values = {"article": article, "level": level, "photo": photo, "lang": lang, "dir": text_dir}
        return _render_part(context, "newsroom/_article_card.html", values)

    return fragments.cached(
        context.get("request"), ("card", article.pk, int(level), bool(photo)), render
    )


class FragmentNode(template.Node):
    def __init__(self, nodelist: template.NodeList, name: str, values: list) -> None:
        self.nodelist = nodelist
        self.name = name
        self.values = values

    def render(self, context) -> SafeString:
        key = ("part", self.name, *(value.resolve(context) for value in self.values))
        return fragments.cached(
            context.get("request"), key, lambda: mark_safe(self.nodelist.render(context))
        )


@register.tag
def fragment(parser, token) -> FragmentNode:
    """`{% fragment "name" value ... %}...{% endfragment %}`: kept per content version.

    The part is rendered once per content version, page language, name and values; what
    it shows must depend on nothing else (never on the reader or the query string).
    """
    bits = token.split_contents()
    if len(bits) < 2 or bits[1][0] not in "\"'" or bits[1][0] != bits[1][-1]:
        raise template.TemplateSyntaxError("{% fragment %} takes a quoted name, then values.")
    nodelist = parser.parse(("endfragment",))
    parser.delete_first_token()
    return FragmentNode(nodelist, bits[1][1:-1], [parser.compile_filter(bit) for bit in bits[2:]])


@register.simple_tag(takes_context=True)
def page_languages(context) -> dict:
    """The page in every language: the switcher's links, the hreflang alternates, x-default."""
    request = context.get("request")
    if request is None:
        return {"links": [], "x_default": ""}
    versions = context.get("language_versions")
    match = getattr(request, "resolver_match", None)
    # What language_versions reads: the route and its arguments, or the page's versions.
    route = (
        (match.view_name, tuple(match.args), tuple(sorted(match.kwargs.items())))
        if match is not None
        else None
    )
    key = ("languages", route, tuple(sorted(versions.items())) if versions is not None else None)
    return fragments.cached(request, key, lambda: _page_languages(request, versions))


def _page_languages(request, versions: dict[str, str] | None) -> dict:
    links = language_versions(request, versions=versions)
    for link in links:
        link["absolute"] = absolute(link["url"])
    alternates = [link for link in links if link["alternate"]]
    default = next((a for a in alternates if a["code"] == settings.LANGUAGE_CODE), None)
    current = next((a for a in alternates if a["current"]), None)
    x_default = (default or current or {"absolute": ""})["absolute"]
    return {"links": links, "alternates": alternates, "x_default": x_default}
