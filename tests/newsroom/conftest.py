from __future__ import annotations

import pytest
from django.test import Client

from tests.helpers import login_staff
from tests.newsroom.factories import StaffFactory


@pytest.fixture
def staff_client() -> Client:
    """A signed-in editor, beside (not instead of) the anonymous `client`."""
    staff = Client()
    login_staff(staff, StaffFactory())
    return staff
