"""django-newsletter's own URLs: its emails link to its archive and unsubscribe pages."""

from django.urls import include, path

urlpatterns = [path("newsletter/", include("newsletter.urls"))]
