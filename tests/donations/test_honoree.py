"""The honoree's note: fixed wording, once per gift, a few per address, and a one-click stop."""

from __future__ import annotations

import contextlib
import threading
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.db import connection
from django.test import Client
from django.utils import timezone

from donations import services
from donations.models import HonoreeOptOut
from donations.services import emails
from donations.tasks import honoree_notify_task
from newsroom.security import email_hash
from tests.conftest import skip_or_fail
from tests.donations.factories import PaidGiftFactory

pytestmark = pytest.mark.django_db

ADDRESS = "yara@mail.example"


def honouring(address: str = ADDRESS, **fields):
    return PaidGiftFactory(
        dedication="honor", honoree_name="Yara Saleh", honoree_email=address, **fields
    )


def notes_to(mailoutbox, address: str = ADDRESS) -> list:
    return [m for m in mailoutbox if m.to == [address]]


def opt_out_path(message) -> str:
    return urlsplit(message.extra_headers["List-Unsubscribe"].strip("<>")).path


def test_the_note_is_fixed_wording_with_the_names_only(mailoutbox, settings):
    gift = honouring(donor_name="Omar Saleh")
    assert services.honoree_notify(gift_id=gift.pk) is True

    [message] = mailoutbox
    link = message.extra_headers["List-Unsubscribe"].strip("<>")
    assert message.body == (
        "Dear Yara Saleh,\n\n"
        f"Omar Saleh has made a gift to {settings.NEWSROOM_NAME} in your honour, and asked us "
        "to let you know.\n\n"
        "Gifts like this one pay for independent reporting that anyone can read, free of "
        "advertising and of any owner's interests. We are grateful, and we wanted you to know "
        "that you were the reason for it.\n\n"
        f"{settings.THANK_YOU_SIGNER_NAME}\n"
        f"{settings.THANK_YOU_SIGNER_TITLE}, {settings.NEWSROOM_NAME}\n"
        "https://news.example\n\n"
        "You are getting this note because a reader gave your address with their gift. "
        f"To get no more notes like it: {link}\n\n"
    )


def test_the_note_is_sent_once_per_gift_even_when_the_task_runs_twice(mailoutbox):
    gift = honouring()
    honoree_notify_task.apply(args=[gift.pk])
    honoree_notify_task.apply(args=[gift.pk])
    assert len(notes_to(mailoutbox)) == 1


def test_a_fourth_note_to_one_address_within_30_days_is_not_sent(mailoutbox):
    for days in (1, 10, 29):
        honouring("Yara@Mail.Example", honoree_notified_at=timezone.now() - timedelta(days=days))
    gift = honouring()

    assert services.honoree_notify(gift_id=gift.pk) is False
    assert notes_to(mailoutbox) == []
    gift.refresh_from_db()
    assert gift.honoree_notified_at is not None  # decided: a later run does not send it either
    assert services.honoree_notify(gift_id=gift.pk) is False


def test_notes_older_than_30_days_do_not_count_towards_the_limit(mailoutbox):
    for days in (1, 10, 31):
        honouring(honoree_notified_at=timezone.now() - timedelta(days=days))
    assert services.honoree_notify(gift_id=honouring().pk) is True
    assert len(notes_to(mailoutbox)) == 1


def test_the_note_offers_a_one_click_stop_to_mail_clients(mailoutbox, client):
    assert services.honoree_notify(gift_id=honouring().pk) is True
    [message] = mailoutbox
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = message.extra_headers["List-Unsubscribe"].strip("<>")
    assert link.startswith("https://news.example/donate/honoree/opt-out/")
    assert ADDRESS not in link
    assert link in message.body and link in message.alternatives[0][0]

    # RFC 8058 section 3.1: a POST without cookies, body "List-Unsubscribe=One-Click".
    response = Client(enforce_csrf_checks=True).post(
        opt_out_path(message), {"List-Unsubscribe": "One-Click"}
    )
    assert response.status_code == 200
    assert HonoreeOptOut.objects.filter(email_hash=email_hash(ADDRESS)).exists()

    assert services.honoree_notify(gift_id=honouring("YARA@mail.example").pk) is False
    assert len(mailoutbox) == 1


def test_the_opt_out_link_shows_a_button_and_only_the_post_stops_notes(mailoutbox):
    services.honoree_notify(gift_id=honouring().pk)
    path = opt_out_path(mailoutbox[0])
    browser = Client(enforce_csrf_checks=True)

    page = browser.get(path)
    assert page.status_code == 200
    assert '<form method="post" action="">' in page.content.decode()
    assert not HonoreeOptOut.objects.exists()  # link scanners GET; that changes nothing

    done = browser.post(path)
    assert done.status_code == 200
    assert "No more notes" in done.content.decode()
    assert list(HonoreeOptOut.objects.values_list("email_hash", flat=True)) == [email_hash(ADDRESS)]
    assert services.honoree_notify(gift_id=honouring().pk) is False
    assert len(mailoutbox) == 1


@pytest.mark.parametrize(
    "token",
    [
        f"{email_hash(ADDRESS)}:forged-signature",
        email_hash(ADDRESS),
        "not-a-token",
    ],
)
def test_a_forged_opt_out_link_is_refused(client, token, mailoutbox):
    response = client.post(f"/donate/honoree/opt-out/{token}/")
    assert response.status_code == 400
    assert "This link cannot be used" in response.content.decode()
    assert not HonoreeOptOut.objects.exists()
    assert services.honoree_notify(gift_id=honouring().pk) is True


def test_an_opt_out_link_signed_for_another_purpose_is_refused(client, mailoutbox):
    token = signing.Signer(salt="subscriptions.unsubscribe").sign(email_hash(ADDRESS))
    assert client.post(f"/donate/honoree/opt-out/{token}/").status_code == 400
    assert not HonoreeOptOut.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_notes_to_one_address_at_once_count_each_other(mailoutbox, monkeypatch):
    if connection.vendor != "postgresql":
        skip_or_fail("notes sent side by side need a database server")
    for days in (1, 2):
        honouring(honoree_notified_at=timezone.now() - timedelta(days=days))
    gifts = [honouring(), honouring()]
    # Each task, once it has counted, waits a moment for the other to count too.
    both_counted = threading.Barrier(2, timeout=1)
    count = emails._honoree_note_refused

    def count_then_wait(*, gift):
        refused = count(gift=gift)
        # With the address locked the other task is still waiting for it: nobody comes.
        with contextlib.suppress(threading.BrokenBarrierError):
            both_counted.wait()
        return refused

    monkeypatch.setattr(emails, "_honoree_note_refused", count_then_wait)
    results: list[bool] = []

    def notify(gift_id: int) -> None:
        try:
            results.append(services.honoree_notify(gift_id=gift_id))
        finally:
            connection.close()

    threads = [threading.Thread(target=notify, args=[gift.pk]) for gift in gifts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False, True]
    assert len(notes_to(mailoutbox)) == 1
