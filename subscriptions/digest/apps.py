from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class DigestConfig(AppConfig):
    """The digest as an app, so that the admin and Celery find its admin.py and tasks.py.

    It holds no models: Edition, DeliveryBatch and Delivery, and their migrations, stay
    in the subscriptions app.
    """

    name = "subscriptions.digest"
    label = "digest"
    verbose_name = gettext_lazy("Digest")
