from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import StaffFactory
from tests.helpers import login_staff


@pytest.fixture
def staff_client() -> Client:
    """A signed-in editor, beside (not instead of) the anonymous `client`."""
    staff = Client()
    login_staff(staff, StaffFactory())
    return staff
