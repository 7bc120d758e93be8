"""The staff pages beside the admin, mounted under ADMIN_URL by the root URLs."""

from __future__ import annotations

from django.urls import path

from staff import views

urlpatterns = [
    # Staff set up two-factor sign-in before the admin opens (newsroom.security).
    path("two-factor/", views.setup, name="staff_otp_setup"),
]
