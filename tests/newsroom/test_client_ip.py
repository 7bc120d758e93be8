"""The one client address: which proxies are trusted, and every limit keyed on what they report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import RequestFactory
from django.urls import reverse

from newsroom.security import client_ip
from tests.helpers import current_code, staff_device
from tests.newsroom.factories import StaffFactory
from tests.subscriptions.factories import NewsletterFactory
from tests.subscriptions.helpers import signup

ROOT = Path(__file__).resolve().parents[2]
PROXY = "10.0.0.2"


def address(settings, *, hops: int, header: str = "HTTP_X_FORWARDED_FOR", **meta: str) -> str:
    settings.CLIENT_IP_PROXY_HOPS = hops
    settings.CLIENT_IP_HEADER = header
    return client_ip(RequestFactory().get("/", REMOTE_ADDR=PROXY, **meta))


# --- which address is the client's ---------------------------------------------------


def test_with_no_trusted_proxy_the_connection_is_the_client(settings):
    found = address(settings, hops=0, HTTP_X_FORWARDED_FOR="198.51.100.1")

    assert found == PROXY


def test_behind_one_proxy_the_last_forwarded_entry_is_the_client(settings):
    found = address(settings, hops=1, HTTP_X_FORWARDED_FOR="198.51.100.1, 198.51.100.9")

    assert found == "198.51.100.9"


def test_behind_two_proxies_the_second_entry_from_the_right_is_the_client(settings):
    found = address(settings, hops=2, HTTP_X_FORWARDED_FOR="198.51.100.1, 10.0.0.1")

    assert found == "198.51.100.1"


def test_entries_a_client_writes_before_our_proxies_are_ignored(settings):
    forged = "6.6.6.6, 7.7.7.7, 198.51.100.1, 10.0.0.1"

    assert address(settings, hops=2, HTTP_X_FORWARDED_FOR=forged) == "198.51.100.1"
    assert address(settings, hops=1, HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.1") == (
        "198.51.100.1"
    )


def test_fewer_entries_than_proxies_gives_the_connection(settings):
    found = address(settings, hops=3, HTTP_X_FORWARDED_FOR="198.51.100.1, 10.0.0.1")

    assert found == PROXY


def test_cf_connecting_ip_is_ignored_unless_it_is_the_configured_header(settings):
    sent = {"HTTP_CF_CONNECTING_IP": "198.51.100.1"}

    assert address(settings, hops=1, **sent) == PROXY
    assert address(settings, hops=0, header="HTTP_CF_CONNECTING_IP", **sent) == PROXY


def test_a_cdn_header_is_the_client_whatever_x_forwarded_for_says(settings):
    sent = {"HTTP_CF_CONNECTING_IP": "198.51.100.1", "HTTP_X_FORWARDED_FOR": "6.6.6.6"}

    assert address(settings, hops=1, header="HTTP_CF_CONNECTING_IP", **sent) == "198.51.100.1"


def test_a_cdn_header_is_trusted_behind_the_cdn_and_a_load_balancer(settings):
    found = address(
        settings, hops=2, header="HTTP_TRUE_CLIENT_IP", HTTP_TRUE_CLIENT_IP="198.51.100.1"
    )

    assert found == "198.51.100.1"


@pytest.mark.parametrize(
    "value",
    [
        "unknown",
        "",
        " , ",
        "999.1.1.1",
        "198.51.100.1:443",
        "<script>alert(1)</script>",
        "198.51.100.1, not-an-address",
        "\x00",
        "1" * 5000,
    ],
)
def test_a_value_that_is_not_an_address_gives_the_connection(settings, value):
    assert address(settings, hops=1, HTTP_X_FORWARDED_FOR=value) == PROXY
    assert address(
        settings, hops=1, header="HTTP_CF_CONNECTING_IP", HTTP_CF_CONNECTING_IP=value
    ) == (PROXY)


def test_an_ipv6_address_is_written_one_way(settings):
    found = address(settings, hops=1, HTTP_X_FORWARDED_FOR="2001:DB8:0:0::0001")

    assert found == "2001:db8::1"


def hops_read_from(**environ: str) -> str:
    env = {k: v for k, v in os.environ.items() if "PROXY_HOPS" not in k}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); "
            "from django.conf import settings; print(settings.CLIENT_IP_PROXY_HOPS)",
        ],
        cwd=ROOT,
        env={**env, **environ, "DJANGO_DEBUG": "1", "DJANGO_SETTINGS_MODULE": "newsroom.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_the_deprecated_hops_setting_is_read_only_when_the_new_one_is_unset():
    assert hops_read_from() == "0"
    assert hops_read_from(SUBSCRIPTIONS_PROXY_HOPS="2") == "2"
    assert hops_read_from(SUBSCRIPTIONS_PROXY_HOPS="2", CLIENT_IP_PROXY_HOPS="1") == "1"


# --- every limit keys on that address -----------------------------------------------
# Behind a CDN that writes CF-Connecting-IP: one reader floods, each time with another
# forged X-Forwarded-For, and is held back; another reader behind the same CDN is not.

READER, OTHER = "198.51.100.1", "198.51.100.2"


@pytest.fixture
def behind_cloudflare(settings, rate_window):
    settings.CLIENT_IP_HEADER = "HTTP_CF_CONNECTING_IP"
    settings.CLIENT_IP_PROXY_HOPS = 1


def via_cdn(reader: str, n: int) -> dict[str, str]:
    return {
        "REMOTE_ADDR": PROXY,
        "HTTP_CF_CONNECTING_IP": reader,
        "HTTP_X_FORWARDED_FOR": f"192.0.2.{n}",
    }


@pytest.mark.django_db
def test_checkout_limit_keys_on_the_client_address(
    client, fake_stripe, settings, behind_cloudflare
):
    settings.CHECKOUT_RATE_LIMIT_PER_IP = "3/10m"

    def give(reader: str, n: int) -> int:
        data = {"frequency": "one_time", "amount": "5000", "email": f"d{n}@mail.example"}
        return client.post("/donate/", data, **via_cdn(reader, n)).status_code

    assert [give(READER, n) for n in range(5)] == [303] * 3 + [429] * 2
    assert give(OTHER, 99) == 303


@pytest.mark.django_db
def test_manage_link_limit_keys_on_the_client_address(client, settings, behind_cloudflare):
    settings.CHECKOUT_RATE_LIMIT_PER_IP = "3/10m"

    def ask(reader: str, n: int) -> int:
        data = {"email": f"d{n}@mail.example"}
        return client.post("/donate/manage/", data, **via_cdn(reader, n)).status_code

    assert [ask(READER, n) for n in range(5)] == [200] * 3 + [429] * 2
    assert ask(OTHER, 99) == 200


@pytest.mark.django_db
def test_subscribe_limit_keys_on_the_client_address(client, monkeypatch, behind_cloudflare):
    monkeypatch.setattr("subscriptions.views.SUBSCRIBE_RATE", "3/10m")
    daily = NewsletterFactory()

    def subscribe(reader: str, n: int) -> int:
        headers = via_cdn(reader, n)
        del headers["REMOTE_ADDR"]  # the helper connects from its own address
        return signup(client, f"r{n}@mail.example", daily, **headers).status_code

    assert [subscribe(READER, n) for n in range(5)] == [200] * 3 + [429] * 2
    assert subscribe(OTHER, 99) == 200


@pytest.mark.django_db
def test_staff_lockout_keys_on_the_client_address(client, settings, behind_cloudflare):
    settings.AXES_FAILURE_LIMIT = 3
    editor = StaffFactory(username="desk")
    editor.set_password("right password")
    editor.save()
    device = staff_device(editor)

    def sign_in(reader: str, n: int, password: str) -> int:
        data = {
            "username": "desk",
            "password": password,
            "otp_token": current_code(device),
            "next": reverse("admin:index"),
        }
        return client.post(reverse("admin:login"), data, **via_cdn(reader, n)).status_code

    for n in range(3):
        sign_in(READER, n, "wrong")

    assert sign_in(READER, 3, "right password") == 429
    assert sign_in(OTHER, 4, "right password") == 302
