from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class DonationsConfig(AppConfig):
    name = "donations"
    verbose_name = gettext_lazy("Donations")
