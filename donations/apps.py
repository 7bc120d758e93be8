from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class DonationsConfig(AppConfig):
    name = "donations"
    verbose_name = gettext_lazy("Donations")

    def warm_up(self) -> None:
        """Load before the first checkout what it would load (newsroom.wsgi calls this)."""
        from django.core.validators import validate_email

        from donations import stripe_api

        # The email validator compiles its expressions (large Unicode classes) on first use.
        validate_email("reader@example.org")
        stripe_api.warm_up()
