"""`field__any_of=values`: the `in` lookup, its values sent as one array on PostgreSQL."""

from __future__ import annotations

from django.core.exceptions import EmptyResultSet
from django.db.models import Field, ForeignObject
from django.db.models.lookups import In


class AnyOf(In):
    """`field IN (%s, %s, ...)`, one parameter a value, except on PostgreSQL, where it is
    `field = ANY(%s::type[])`: one parameter, the values as an array.

    For the lists of hundreds of ids the digest reads with (a batch's readers): each
    parameter of an `IN` list is prepared by Django, adapted by psycopg and parsed and
    planned by PostgreSQL on its own, and the statement's text changes with the list's
    length. An array is one value at each step; PostgreSQL plans `= ANY(array)` as the
    index scan it plans for the `IN` list (which it rewrites to that form anyway).
    """

    lookup_name = "any_of"

    def as_postgresql(self, compiler, connection):
        if not self.rhs_is_direct_value():
            return super().as_sql(compiler, connection)
        field = self.lhs.output_field
        # In.process_rhs's rules: duplicates and None dropped, nothing left matches nothing.
        values = [
            field.get_db_prep_value(value, connection, prepared=True)
            for value in dict.fromkeys(self.rhs)
            if value is not None
        ]
        if not values:
            raise EmptyResultSet
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s::{field.cast_db_type(connection)}[])", (*lhs_params, values)


Field.register_lookup(AnyOf)
# A foreign key's lookups are its own (ForeignObject.get_class_lookups), not Field's.
ForeignObject.register_lookup(AnyOf)
