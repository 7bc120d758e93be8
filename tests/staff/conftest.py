"""Staff of each role, signed in past the two-factor gate, with the giving settings."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from staff import roles
from tests.helpers import login_staff
from tests.newsroom.factories import StaffFactory, UserFactory


def member(role: str, **fields):
    """A staff account (not a superuser) holding one role."""
    user = UserFactory(is_staff=True, **fields)
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture(autouse=True)
def _donation_settings(donation_settings) -> None:
    """Staff refund gifts and read the dashboard's money with the giving settings."""


@pytest.fixture
def sign_in(db):
    """sign_in(role) -> a client signed in as a new member of `role` ("superuser" too)."""

    def make(role: str) -> Client:
        client = Client()
        user = StaffFactory() if role == "superuser" else member(role)
        login_staff(client, user)
        client.user = user
        return client

    return make


@pytest.fixture
def editor(sign_in) -> Client:
    return sign_in(roles.EDITORS)


@pytest.fixture
def fundraiser(sign_in) -> Client:
    return sign_in(roles.DEVELOPMENT)


@pytest.fixture
def audience_editor(sign_in) -> Client:
    return sign_in(roles.AUDIENCE)


@pytest.fixture
def administrator(sign_in) -> Client:
    return sign_in(roles.ADMINS)
