"""Article body HTML: sanitised on the way in, cut into blocks on the way out."""

from __future__ import annotations

from html import escape
from html.parser import HTMLParser

# What an editor may write. Everything else is dropped (its text kept), and the
# content of <script>/<style> is dropped with the tag. Only http(s) and mailto
# links survive, so `javascript:` and `data:` URLs never reach a page; event
# handler attributes are never in an allow-list, so they go too.
ALLOWED_TAGS = {
    "p",
    "h2",
    "h3",
    "h4",
    "blockquote",
    "a",
    "em",
    "strong",
    "b",
    "i",
    "u",
    "s",
    "sub",
    "sup",
    "small",
    "mark",
    "abbr",
    "cite",
    "q",
    "code",
    "pre",
    "br",
    "hr",
    "ul",
    "ol",
    "li",
    "dl",
    "dt",
    "dd",
    "figure",
    "figcaption",
    "img",
    "table",
    "caption",
    "thead",
    "tbody",
    "tfoot",
    "tr",
    "th",
    "td",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "hreflang"},
    "img": {"src", "alt", "width", "height"},
    "abbr": {"title"},
    "q": {"cite"},
    "blockquote": {"cite"},
    "th": {"scope", "colspan", "rowspan"},
    "td": {"colspan", "rowspan"},
    "ol": {"start", "reversed"},
    # Quotes or passages in another language keep their direction (HTML §3.2.6.4).
    "*": {"lang", "dir"},
}
URL_SCHEMES = {"http", "https", "mailto"}


def sanitise_html(html: str) -> str:
    """Return `html` with only the tags, attributes and URL schemes above."""
    # Imported here, not with the module: only an editor's save sanitises, and every web
    # and worker process loads this module (through the admin and the article page).
    import nh3

    return nh3.clean(
        html or "",
        tags=ALLOWED_TAGS,
        clean_content_tags={"script", "style", "noscript", "template"},
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    ).strip()


# Elements without an end tag (HTML §13.1.2): they never open a nesting level.
VOID_ELEMENTS = {
    "area",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "wbr",
}


class _BlockSplitter(HTMLParser):
    """Collect the top-level elements of a sanitised fragment, each as its own HTML string.

    Loose text between top-level elements becomes a block of its own. Entities are
    passed through as written (convert_charrefs=False), so the output is the input, cut.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.blocks: list[str] = []
        self.current: list[str] = []
        self.depth = 0

    def flush(self) -> None:
        block = "".join(self.current).strip()
        if block:
            self.blocks.append(block)
        self.current = []

    def handle_starttag(self, tag, attrs):
        text = self.get_starttag_text() or f"<{tag}>"
        if self.depth == 0:
            self.flush()  # loose text before this element is a block of its own
        self.current.append(text)
        if tag in VOID_ELEMENTS:
            if self.depth == 0:
                self.flush()
            return
        self.depth += 1

    def handle_startendtag(self, tag, attrs):
        if self.depth == 0:
            self.flush()
        self.current.append(self.get_starttag_text() or f"<{tag}>")
        if self.depth == 0:
            self.flush()

    def handle_endtag(self, tag):
        if tag in VOID_ELEMENTS:
            return
        self.current.append(f"</{tag}>")
        self.depth = max(self.depth - 1, 0)
        if self.depth == 0:
            self.flush()

    def handle_data(self, data):
        self.current.append(escape(data, quote=False))

    def handle_entityref(self, name):
        self.current.append(f"&{name};")

    def handle_charref(self, name):
        self.current.append(f"&#{name};")


def body_blocks(html: str) -> list[str]:
    """Cut sanitised body HTML into its top-level blocks (paragraphs, headings, figures ...)."""
    splitter = _BlockSplitter()
    splitter.feed(html or "")
    splitter.close()
    splitter.flush()
    # Text typed straight into the body, outside any element, reads as a paragraph.
    return [block if block.startswith("<") else f"<p>{block}</p>" for block in splitter.blocks]
