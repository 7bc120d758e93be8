from __future__ import annotations

from django.urls import path

from donations import views

app_name = "donations"

urlpatterns: list = [
    path("donate/", views.donate, name="donate"),
    path("donate/thanks/", views.thanks, name="thanks"),
    path("donate/cancelled/", views.cancelled, name="cancelled"),
    path("donate/a/<int:pk>/go/", views.appeal_click, name="appeal_click"),
    path("donate/a/<int:pk>/seen.gif", views.appeal_seen, name="appeal_seen"),
    path("donate/a/<int:pk>/dismiss/", views.appeal_dismiss, name="appeal_dismiss"),
    path("donate/manage/", views.manage, name="manage"),
    path("donate/manage/open/<str:token>/", views.manage_open, name="manage_open"),
    path("donate/manage/giving/", views.manage_giving, name="manage_giving"),
    path("donate/manage/portal/", views.manage_portal, name="manage_portal"),
    path("donate/manage/receipt/<int:pk>/", views.manage_receipt, name="manage_receipt"),
    path("donate/honoree/opt-out/<str:token>/", views.honoree_opt_out, name="honoree_opt_out"),
]
