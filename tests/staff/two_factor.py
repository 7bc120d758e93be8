"""Steps of the two-factor set-up that several staff tests take."""

from __future__ import annotations

import re

from django.urls import reverse

PASSWORD = "correct horse battery staple"


def password_sign_in(client, username: str, *, password: str = PASSWORD, code: str = "", **extra):
    """Post the admin's sign-in form, as a browser does."""
    return client.post(
        reverse("admin:login"),
        {
            "username": username,
            "password": password,
            "otp_token": code,
            "next": reverse("admin:index"),
        },
        REMOTE_ADDR=extra.pop("ip", "203.0.113.7"),
        **extra,
    )


def emailed_link_path(message) -> str:
    """The path of the set-up link in an email the landing page sent."""
    url = re.search(r"https?://\S+/two-factor/link/\S+/", message.body).group(0)
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def wrong(code: str) -> str:
    """A six-digit code that is not `code`."""
    return f"{(int(code) + 1) % 1_000_000:06d}"


def admin_code_from(response) -> str:
    """The set-up code the Admin's action page shows."""
    return re.search(r"<code[^>]*>([0-9a-z]{5}-[0-9a-z]{5})</code>", response.content.decode())[1]


def recovery_codes_from(response) -> list[str]:
    return re.findall(r"<li><code>([0-9a-z]{5}-[0-9a-z]{5})</code></li>", response.content.decode())
