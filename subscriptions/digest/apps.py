from __future__ import annotations

from django.apps import AppConfig


class DigestConfig(AppConfig):
    """The digest as an app, so that the admin and Celery find its admin.py and tasks.py.

    It holds no models: Edition, DeliveryBatch and Delivery, and their migrations, stay
    in the subscriptions app.
    """

    name = "subscriptions.digest"
    label = "digest"
    verbose_name = "Digest"
