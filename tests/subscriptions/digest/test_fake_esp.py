"""The HTTP stand-in of Postmark and Mailgun (bench/fake_esp.py), spoken to by anymail's real
backends: it keeps their limits and fails as told, and the digest's doorway reports each
failure with the error itself."""

from __future__ import annotations

import json

import pytest
from anymail.exceptions import AnymailRequestsAPIError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.utils import timezone

from bench.fake_esp import Faults, StandIn, postmark_counted
from subscriptions.digest.compose import edition_compose
from subscriptions.digest.esp import Recipient, prepare_messages, send_messages
from tests.subscriptions.digest.helpers import subscribe
from tests.subscriptions.digest.providers import use_esp

pytestmark = pytest.mark.django_db


@pytest.fixture
def stand_in(request):
    server = StandIn(faults=getattr(request, "param", None) or Faults()).start()
    yield server
    server.stop()


def postmark(settings, stand_in) -> None:
    use_esp(
        settings,
        "anymail.backends.postmark.EmailBackend",
        POSTMARK_SERVER_TOKEN="token",
        POSTMARK_API_URL=f"{stand_in.url}/",
    )


def test_postmark_stand_in_refuses_a_batch_of_501_as_postmark_does(settings, stand_in):
    postmark(settings, stand_in)
    to = [f"reader{n}@mail.example" for n in range(501)]
    message = EmailMultiAlternatives("Subject", "Body", "daily@newsroom.example", to)
    message.merge_metadata = {address: {"n": "1"} for address in to}

    with pytest.raises(AnymailRequestsAPIError) as refused:
        get_connection().send_messages([message])

    assert refused.value.status_code == 422
    assert "500" in refused.value.response.json()["Message"]
    assert stand_in.store.stats()["recipients"] == 0


def test_counting_postmark_stand_in_counts_each_reader_and_still_refuses_what_postmark_does(
    settings,
):
    counting = StandIn(keep=False).start()
    try:
        postmark(settings, counting)
        to = [f"reader{n}@mail.example" for n in range(3)]
        message = EmailMultiAlternatives("Subject", "Body", "daily@newsroom.example", to)
        message.merge_metadata = {address: {"n": "1"} for address in to}
        get_connection().send_messages([message])
        too_many = EmailMultiAlternatives(
            "Subject", "Body", "daily@newsroom.example", [f"r{n}@mail.example" for n in range(501)]
        )
        too_many.merge_metadata = {address: {"n": "1"} for address in too_many.to}
        with pytest.raises(AnymailRequestsAPIError):
            get_connection().send_messages([too_many])

        assert {s: message.anymail_status.recipients[s].status for s in to} == dict.fromkeys(
            to, "sent"
        )
        assert counting.store.stats()["recipients"] == 3
        assert counting.store.messages == []
    finally:
        counting.stop()


def test_mailgun_stand_in_refuses_more_than_three_tags(settings, stand_in):
    use_esp(
        settings,
        "anymail.backends.mailgun.EmailBackend",
        MAILGUN_API_KEY="key",
        MAILGUN_API_URL=f"{stand_in.url}/v3",
    )
    message = EmailMultiAlternatives(
        "Subject", "Body", "daily@newsroom.example", ["a@mail.example"]
    )
    message.tags = ["one", "two", "three", "four"]

    with pytest.raises(AnymailRequestsAPIError) as refused:
        get_connection().send_messages([message])

    assert refused.value.status_code == 400


def prepared_batch(newsletter, count: int):
    edition = edition_compose(newsletter=newsletter, date=timezone.localdate())
    readers = [Recipient(n + 1, subscribe(newsletter)) for n in range(count)]
    return edition, prepare_messages(edition=edition, followed=[], recipients=readers)


@pytest.mark.parametrize("stand_in", [Faults(fail_every=1, fail_status=503)], indirect=True)
def test_a_refused_call_is_reported_with_the_esps_error_and_nothing_sent(
    settings, stand_in, newsletter, headlines
):
    postmark(settings, stand_in)
    edition, prepared = prepared_batch(newsletter, 3)

    report = send_messages(edition=edition, prepared=prepared)

    assert isinstance(report.exception, AnymailRequestsAPIError)
    assert report.exception.status_code == 503
    assert report.results == {}
    assert stand_in.store.stats()["recipients"] == 0


@pytest.mark.parametrize("stand_in", [Faults(drop_every=1)], indirect=True)
def test_a_call_accepted_then_cut_off_is_reported_though_the_esp_took_it(
    settings, stand_in, newsletter, headlines
):
    postmark(settings, stand_in)
    edition, prepared = prepared_batch(newsletter, 3)

    report = send_messages(edition=edition, prepared=prepared)

    # The answer never came: the error says so, and the ESP did take the messages.
    assert isinstance(report.exception, AnymailRequestsAPIError)
    assert report.exception.status_code is None
    assert report.results == {}
    stats = stand_in.store.stats()
    assert (stats["recipients"], stats["dropped_calls"]) == (3, 1)


@pytest.mark.parametrize("stand_in", [Faults(fail_every=2, fail_status=503)], indirect=True)
def test_a_batch_of_two_calls_reports_each_message_of_the_first_before_the_second(
    settings, stand_in, newsletter, headlines
):
    postmark(settings, stand_in)
    edition, prepared = prepared_batch(newsletter, 501)
    accepted: list[int] = []

    report = send_messages(
        edition=edition,
        prepared=prepared,
        on_accepted=lambda rows: accepted.extend(delivery_id for delivery_id, _ in rows),
    )

    # Postmark takes 500 a call: the first call's readers are heard of before the
    # second call goes, and that one's refusal is the report's error.
    assert sorted(accepted) == list(range(1, 501))
    assert sorted(report.results) == list(range(1, 501))
    assert report.exception.status_code == 503
    assert stand_in.store.stats()["recipients"] == 500


@pytest.mark.parametrize("stand_in", [Faults(answer_after=2)], indirect=True)
def test_a_read_timeout_after_the_esp_took_the_call_is_reported_with_the_error_itself(
    settings, stand_in, newsletter, headlines
):
    postmark(settings, stand_in)
    settings.ANYMAIL["REQUESTS_TIMEOUT"] = 0.5
    edition, prepared = prepared_batch(newsletter, 3)

    report = send_messages(edition=edition, prepared=prepared)

    # The first fault: the ESP took all three, the sender heard nothing.
    assert isinstance(report.exception, AnymailRequestsAPIError)
    assert "timed out" in str(report.exception).lower()
    assert report.results == {}
    assert stand_in.store.stats()["recipients"] == 3


def test_counting_postmark_stand_in_reads_only_the_messages_to_as_postmark_would_answer(
    settings,
):
    counting = StandIn(keep=False).start()
    try:
        postmark(settings, counting)
        to = ["reader@mail.example", "Reader Two <two@mail.example>"]
        # Text quoting a JSON key is the message's text, not a recipient.
        html = '<p>"To": "someone@mail.example", {"To": "x@mail.example"}</p>'
        message = EmailMultiAlternatives('"To": "a@mail.example"', html, "d@newsroom.example", to)
        message.merge_metadata = {address: {"n": "1"} for address in to}
        get_connection().send_messages([message])
        no_from = postmark_counted(b'[{"From": "", "To": "a@mail.example"}]')

        assert counting.store.stats()["recipients"] == 2
        assert {s.status for s in message.anymail_status.recipients.values()} == {"sent"}
        assert len(message.anymail_status.message_id) == 2  # one id a message
        assert no_from is not None  # From is checked where the stand-in keeps messages
    finally:
        counting.stop()


def test_counting_postmark_stand_in_parses_a_batch_outside_postmarks_limits_whole(settings):
    fifty_one = ", ".join(f"r{n}@mail.example" for n in range(51))

    assert (
        postmark_counted(json.dumps([{"From": "d@mail.example", "To": fifty_one}]).encode()) is None
    )
    assert postmark_counted(b'{"To": "a@mail.example"}') is None
    assert postmark_counted(b"[]") is None
