from __future__ import annotations

from django.urls import include, path

from subscriptions import views

app_name = "subscriptions"

urlpatterns: list = [
    path("newsletters/", views.newsletters, name="newsletters"),
    path("newsletters/subscribe/", views.subscribe, name="subscribe"),
    path("newsletters/confirm/<str:token>/", views.confirm, name="confirm"),
    path("newsletters/confirm/<str:token>/browser/", views.confirm_browser, name="confirm_browser"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("preferences/<str:token>/", views.preferences, name="preferences"),
    path("preferences/<str:token>/my-data.json", views.preferences_data, name="preferences_data"),
    path("follow/", views.follow, name="follow"),
    path("follow/state.json", views.follow_state, name="follow_state"),
    path("for-you/", views.for_you, name="for_you"),
    path("terms/", views.terms, name="terms"),
    path("privacy/", views.privacy, name="privacy"),
    path("", include("subscriptions.digest.urls")),
]
