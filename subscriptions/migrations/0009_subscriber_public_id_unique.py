"""Make Subscriber.public_id required and unique, with a fresh random value for new rows."""

from __future__ import annotations

import uuid

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("subscriptions", "0008_subscriber_public_id_fill"),
    ]

    operations = [
        migrations.AlterField(
            model_name="subscriber",
            name="public_id",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
    ]
