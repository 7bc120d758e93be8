"""Absolute links: every one on SITE_URL."""

from __future__ import annotations

from newsroom.links import absolute


def test_a_path_is_put_on_the_public_address(site_url):
    assert absolute("/donate/") == "https://news.example/donate/"


def test_a_url_that_is_already_absolute_stays_as_it_is(site_url):
    url = "https://media.example/photos/lead.jpg"
    assert absolute(url) == url
