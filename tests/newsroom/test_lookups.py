"""The `any_of` lookup: `in`, its values one array parameter on PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import connection

from newsroom.models import Category
from tests.newsroom.factories import CategoryFactory

pytestmark = pytest.mark.django_db


def test_any_of_finds_what_in_finds():
    first, _, third = CategoryFactory.create_batch(3)
    wanted = [third.pk, first.pk, third.pk, None]

    found = Category.objects.filter(pk__any_of=wanted).order_by("pk")

    assert list(found) == list(Category.objects.filter(pk__in=wanted).order_by("pk"))
    assert list(found) == [first, third]


def test_any_of_works_on_text_columns():
    kept, _ = CategoryFactory.create_batch(2)

    assert list(Category.objects.filter(slug__any_of=[kept.slug, "no-such-slug"])) == [kept]


def test_any_of_nothing_matches_nothing_without_a_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert list(Category.objects.filter(pk__any_of=[])) == []
        assert list(Category.objects.filter(pk__any_of=[None])) == []


def test_any_of_sends_the_values_as_one_array_on_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("an IN list elsewhere")
    ids = list(range(1, 501))

    sql, params = Category.objects.filter(pk__any_of=ids).query.sql_with_params()

    assert "= ANY(%s::bigint[])" in sql
    assert " IN (" not in sql
    assert params == (ids,)
