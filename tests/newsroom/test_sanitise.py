from __future__ import annotations

import pytest

from newsroom import services
from newsroom.richtext import body_blocks, sanitise_html
from tests.newsroom.factories import ArticleFactory, AuthorFactory, CategoryFactory

HOSTILE = (
    '<p onclick="steal()">Reporting <a href="javascript:alert(1)">link</a> and '
    '<a href="https://example.org/report" onmouseover="x()">source</a>.</p>'
    "<script>document.cookie</script>"
    '<img src="x" onerror="alert(1)"><iframe src="https://evil.example"></iframe>'
    '<style>body{display:none}</style><h2 style="color:red">Heading</h2>'
    '<a href="JaVaScRiPt:alert(2)">caps</a><a href="data:text/html,hi">data</a>'
    '<blockquote><p>Quoted</p></blockquote><figure><img src="/media/a.jpg" alt="A well" '
    'width="600" height="400"><figcaption>A well</figcaption></figure>'
    "<ul><li><strong>one</strong></li><li><em>two</em></li></ul>"
)


def test_hostile_html_loses_scripts_handlers_and_javascript_urls():
    clean = sanitise_html(HOSTILE)

    lowered = clean.lower()
    for forbidden in (
        "<script",
        "onclick",
        "onerror",
        "onmouseover",
        "javascript:",
        "<iframe",
        "<style",
        "style=",
        "data:text",
        "document.cookie",
    ):
        assert forbidden not in lowered, forbidden


def test_the_tags_an_editor_needs_survive():
    clean = sanitise_html(HOSTILE)

    assert '<a href="https://example.org/report" rel="noopener noreferrer">source</a>' in clean
    assert "<h2>Heading</h2>" in clean
    assert "<blockquote><p>Quoted</p></blockquote>" in clean
    assert '<img src="/media/a.jpg" alt="A well" width="600" height="400">' in clean
    assert "<figcaption>A well</figcaption>" in clean
    assert "<ul><li><strong>one</strong></li><li><em>two</em></li></ul>" in clean


@pytest.mark.django_db
def test_saving_an_article_sanitises_its_body_and_the_page_shows_the_clean_html(client):
    article = ArticleFactory.build(slug="hostile", body=HOSTILE, category=CategoryFactory())
    services.article_save(article=article, authors=[AuthorFactory()], topics=[])

    article.refresh_from_db()
    assert "<script" not in article.body
    page = client.get(article.get_absolute_url()).content.decode()
    assert "document.cookie" not in page
    assert "javascript:" not in page.lower()
    assert "onerror" not in page


def test_body_is_cut_into_top_level_blocks():
    blocks = body_blocks(
        '<p>One <em>a</em></p>Loose text<h2>Two</h2><figure><img src="/a.jpg" alt=""></figure>'
    )

    assert blocks == [
        "<p>One <em>a</em></p>",
        "<p>Loose text</p>",
        "<h2>Two</h2>",
        '<figure><img src="/a.jpg" alt=""></figure>',
    ]


def test_loose_text_with_entities_stays_one_paragraph():
    assert body_blocks("Fish &amp; chips &#8212; cheap<p>Next</p>") == [
        "<p>Fish &amp; chips &#8212; cheap</p>",
        "<p>Next</p>",
    ]


def test_blocks_keep_nested_markup_and_entities_whole():
    html = sanitise_html(
        '<blockquote><p>A &lt;b&gt; &amp; "c"</p><p>d</p></blockquote><p>x<br>y</p>'
    )

    assert body_blocks(html) == [
        '<blockquote><p>A &lt;b&gt; &amp; "c"</p><p>d</p></blockquote>',
        "<p>x<br>y</p>",
    ]
