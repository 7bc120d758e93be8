"""Give every existing subscriber a distinct random public id.

Its own migration (its own transaction on PostgreSQL): updating rows and then altering
the table in one transaction fails there with "pending trigger events".
"""

from __future__ import annotations

import uuid

from django.db import migrations

BATCH = 1000


def fill(apps, schema_editor) -> None:
    Subscriber = apps.get_model("subscriptions", "Subscriber")
    # The ids first: SQLite must not read a table through a cursor while it is updated.
    pks = list(Subscriber.objects.filter(public_id__isnull=True).values_list("pk", flat=True))
    for start in range(0, len(pks), BATCH):
        Subscriber.objects.bulk_update(
            [Subscriber(pk=pk, public_id=uuid.uuid4()) for pk in pks[start : start + BATCH]],
            ["public_id"],
        )


class Migration(migrations.Migration):
    dependencies = [
        ("subscriptions", "0007_subscriber_public_id"),
    ]

    operations = [
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=True),
    ]
