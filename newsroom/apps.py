from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class NewsroomConfig(AppConfig):
    name = "newsroom"
    verbose_name = gettext_lazy("Newsroom")

    def ready(self) -> None:
        from newsroom import audit, lookups  # noqa: F401 (lookups registers `any_of`)

        audit.connect_signals()
