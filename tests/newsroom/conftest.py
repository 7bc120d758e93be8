from __future__ import annotations

import pytest

from tests.factories import StaffFactory


@pytest.fixture
def staff_client(client):
    client.force_login(StaffFactory())
    return client
