from __future__ import annotations

from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "subscriptions"
    verbose_name = "Subscriptions"

    def ready(self) -> None:
        from anymail.signals import inbound, tracking

        from subscriptions.webhooks import inbound_received, tracking_received

        tracking.connect(tracking_received, dispatch_uid="subscriptions.tracking_received")
        inbound.connect(inbound_received, dispatch_uid="subscriptions.inbound_received")
