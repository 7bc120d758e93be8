"""What the apps' demo data share: people's names, and putting back the dates set on insert."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import connection, models

# Both apps' demo donors and readers are named from these.
FIRST_NAMES = (
    "Layla",
    "Sami",
    "Dina",
    "Karim",
    "Maya",
    "Tariq",
    "Hana",
    "Yusuf",
    "Noa",
    "Elias",
    "Rima",
    "Adam",
    "Salma",
    "Jonas",
    "Leah",
    "Omar",
    "Zeina",
    "David",
    "Farah",
    "Nabil",
    "Mira",
    "Hassan",
    "Tamar",
    "Ziad",
    "Lina",
    "Amir",
    "Sara",
    "Fadi",
    "Nour",
    "Daniel",
    "Aya",
    "George",
    "Reem",
    "Michael",
    "Huda",
    "Ilan",
    "Yasmin",
    "Bassam",
    "Ruth",
    "Khalil",
)
LAST_NAMES = (
    "Haddad",
    "Nassar",
    "Khoury",
    "Levi",
    "Mansour",
    "Saleh",
    "Azar",
    "Cohen",
    "Darwish",
    "Hamdan",
    "Shapiro",
    "Aoun",
    "Barakat",
    "Mizrahi",
    "Sabbagh",
    "Friedman",
    "Jaber",
    "Karam",
    "Rosen",
    "Youssef",
    "Tannous",
    "Ben-David",
    "Issa",
    "Marouf",
    "Peretz",
    "Qasem",
    "Halabi",
    "Stein",
    "Abboud",
    "Nasser",
)


def dates_restore(
    objects: Iterable[models.Model], field_name: str, values: Iterable[datetime]
) -> None:
    """Set `field_name` of each saved object to its value in `values`, in the database.

    A history made with bulk_create gets "now" in every auto_now_add field. One UPDATE
    per row sent through executemany takes a tenth of bulk_update's time here: bulk_update
    builds a CASE expression over every row in Python, and that was most of seed_demo.
    """
    objects = list(objects)
    if not objects:
        return
    model = type(objects[0])
    field = model._meta.get_field(field_name)
    table, column, pk = (
        connection.ops.quote_name(name)
        for name in (model._meta.db_table, field.column, model._meta.pk.column)
    )
    sql = f"UPDATE {table} SET {column} = %s WHERE {pk} = %s"  # noqa: S608  (the model's own names)
    rows = []
    for obj, value in zip(objects, values, strict=True):
        setattr(obj, field.attname, value)
        rows.append((field.get_db_prep_save(value, connection), obj.pk))
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
