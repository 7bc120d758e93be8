from __future__ import annotations

from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "subscriptions"
    verbose_name = "Subscriptions"

    def ready(self) -> None:
        from anymail.signals import tracking

        from subscriptions.webhooks import tracking_received

        tracking.connect(tracking_received, dispatch_uid="subscriptions.tracking_received")
