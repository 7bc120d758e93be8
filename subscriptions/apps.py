from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class SubscriptionsConfig(AppConfig):
    name = "subscriptions"
    verbose_name = gettext_lazy("Subscriptions")

    def ready(self) -> None:
        from anymail.signals import inbound, tracking

        from subscriptions.webhooks import inbound_received, tracking_received

        tracking.connect(tracking_received, dispatch_uid="subscriptions.tracking_received")
        inbound.connect(inbound_received, dispatch_uid="subscriptions.inbound_received")
