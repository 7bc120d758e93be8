"""Add Subscriber.public_id, empty at first: each existing row gets its own value in 0008."""

from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("subscriptions", "0006_tracking_edition_readers_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="subscriber",
            name="public_id",
            # No default here: AddField would give every existing row the same value.
            field=models.UUIDField(editable=False, null=True),
        ),
    ]
