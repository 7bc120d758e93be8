"""`manage.py send_digest`: by hand, with a progress bar and a summary."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core import mail
from django.core.management import CommandError, call_command

from subscriptions.models import Delivery, Edition
from tests.subscriptions.digest.helpers import news, subscribe

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("send_digest", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_send_now_sends_everyone_and_prints_a_summary(newsletter):
    news(headline="Ceasefire talks resume in Cairo", top_story_rank=1)
    readers = [subscribe(newsletter) for _ in range(3)]

    output = run("--newsletter", "mideast-daily", "--now")

    assert sorted(m.to[0] for m in mail.outbox) == sorted(r.email for r in readers)
    assert "[##############################] 3/3" in output
    assert "queued 3, sent 3, suppressed 0, failed 0, in doubt 0" in output
    assert run("--newsletter", "mideast-daily", "--now").count("queued 0") == 1
    assert len(mail.outbox) == 3


def test_dry_run_shows_the_edition_and_writes_nothing(newsletter):
    news(headline="Ceasefire talks resume in Cairo", top_story_rank=1)
    subscribe(newsletter)

    output = run("--now", "--dry-run")

    assert "Ceasefire talks resume in Cairo" in output
    assert "would queue 1 reader(s) in 1 distinct email(s)" in output
    assert mail.outbox == []
    assert not Edition.objects.exists() and not Delivery.objects.exists()


def test_to_sends_one_preview_and_records_no_delivery(newsletter):
    news(headline="Ceasefire talks resume in Cairo", top_story_rank=1)
    subscribe(newsletter)

    output = run("--to", "editor@news.example")

    assert [m.to for m in mail.outbox] == [["editor@news.example"]]
    assert mail.outbox[0].subject.startswith("[Test] Mideast Daily")
    assert "{{" not in mail.outbox[0].body
    assert "went to editor@news.example" in output
    assert not Delivery.objects.exists() and not Edition.objects.exists()


def test_a_day_with_nothing_new_says_so(newsletter):
    subscribe(newsletter)

    output = run("--now")

    assert "not sent: Nothing was published" in output
    assert mail.outbox == []


def test_bad_input_is_refused_with_a_clear_message(newsletter):
    with pytest.raises(CommandError, match="No active newsletter 'weekly-brief'"):
        run("--newsletter", "weekly-brief")
    with pytest.raises(CommandError, match="not an email address"):
        run("--to", "editor-at-news")
    assert not Edition.objects.exists()
