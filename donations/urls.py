from __future__ import annotations

app_name = "donations"

urlpatterns: list = []
