"""Full-text search per language on PostgreSQL: folding functions and one GIN index per language.

The index expressions are the ones newsroom.search builds for its queries, character for
character in meaning, so the planner uses them; tests/newsroom/test_search_languages.py
checks that it does. SQLite has none of this and searches with a plain match.
"""

from django.db import migrations

# Arabic folded as Lucene's ArabicNormalizer does: no tashkeel nor tatweel, one alef,
# alef maqsura as yeh, teh marbuta as heh.
ARABIC_FOLD = r"""
CREATE OR REPLACE FUNCTION newsroom_arabic_fold(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
  SELECT translate(
    regexp_replace(value, '[\u0610-\u061A\u064B-\u065F\u0670\u06D6-\u06ED\u0640]', '', 'g'),
    'أإآٱىة', 'اااايه'
  )
$$;
"""

# Hebrew without niqqud and cantillation (unaccent's rules have none of them), then
# unaccent for the Latin names Hebrew text quotes. unaccent() is only STABLE; pinned to
# its dictionary it is safe to call from an index (PostgreSQL docs, F.48 unaccent).
HEBREW_FOLD = r"""
CREATE OR REPLACE FUNCTION newsroom_hebrew_fold(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
  SELECT public.unaccent(
    'public.unaccent'::regdictionary,
    regexp_replace(value, '[\u0591-\u05BD\u05BF\u05C1\u05C2\u05C4\u05C5\u05C7]', '', 'g')
  )
$$;
"""

# (language, text search configuration, folding function or "")
LANGUAGES = (
    ("en", "english", ""),
    ("ar", "arabic", "newsroom_arabic_fold"),
    ("he", "simple", "newsroom_hebrew_fold"),
)


def _document(config: str, fold: str) -> str:
    def part(column: str, weight: str) -> str:
        text = f"COALESCE({column}, '')"
        if fold:
            text = f"{fold}({text})"
        return f"setweight(to_tsvector('{config}'::regconfig, {text}), '{weight}')"

    return " || ".join((part("headline", "A"), part("dek", "B"), part("body", "C")))


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # Here rather than UnaccentExtension, whose reversal queries pg_extension on SQLite too.
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    schema_editor.execute(ARABIC_FOLD)
    schema_editor.execute(HEBREW_FOLD)
    for language, config, fold in LANGUAGES:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS article_search_{language} ON newsroom_article "
            f"USING gin (({_document(config, fold)})) WHERE language = '{language}'"
        )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for language, _config, _fold in LANGUAGES:
        schema_editor.execute(f"DROP INDEX IF EXISTS article_search_{language}")
    schema_editor.execute("DROP FUNCTION IF EXISTS newsroom_arabic_fold(text)")
    schema_editor.execute("DROP FUNCTION IF EXISTS newsroom_hebrew_fold(text)")


class Migration(migrations.Migration):
    dependencies = [("newsroom", "0009_languages")]

    operations = [migrations.RunPython(forwards, backwards)]
