"""The staff pages beside the admin, mounted under ADMIN_URL by the root URLs."""

from __future__ import annotations

from django.urls import path

from staff import views

# Staff set up two-factor sign-in before the admin opens: a session without a second
# factor may reach only the views marked second_factor_optional (newsroom.security).
urlpatterns = [
    path("two-factor/", views.setup, name="staff_otp_setup"),
    path("two-factor/send/", views.link_resend, name="staff_enrol_send"),
    path("two-factor/link/<str:token>/", views.link_open, name="staff_enrol_open"),
    path("two-factor/code/", views.code_enter, name="staff_enrol_code"),
    path("two-factor/recovery-codes/", views.recovery_codes, name="staff_recovery_codes"),
    path("my-language/", views.language, name="staff_language"),
]
