"""Amazon SES: a stored template with SendBulkEmail, or concurrent single sends? Measured.

    python bench/ses_choice.py                       # 1,000 readers, 50 ms a call
    python bench/ses_choice.py --readers 2000 --latency 0.08 --threads 4 16

SES merges per reader only into a stored template, so there are two ways to give each
reader their own links: (a) what the digest does, one CreateEmailTemplate per rendering
and SendBulkEmail calls of 50; (b) one SendEmail per reader, the reader's copy filled in
by us, several calls at once. Both run here through anymail's real SES backend on a real
boto3 client; each call is answered by a botocore `before-call` handler after `--latency`
seconds, as botocore's Stubber answers (no network). Prints the calls and the time of
each way, and writes bench/results/ses-choice.json.

Reads its readers from the database bench/digest.py seeds (`--database-url`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readers", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per SES call")
    parser.add_argument("--threads", type=int, nargs="+", default=[4, 16])
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/newsroom_bench_digest_x1"
    )
    return parser.parse_args()


class FakeSES:
    """Answers every SES v2 call after `latency` seconds, counting calls by operation."""

    def __init__(self, latency: float):
        self.latency = latency
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, model, params, **kwargs):
        from botocore.awsrequest import AWSResponse

        time.sleep(self.latency)
        with self.lock:
            self.calls[model.name] = self.calls.get(model.name, 0) + 1
        if model.name == "SendBulkEmail":
            parsed = {
                "BulkEmailEntryResults": [
                    {"Status": "SUCCESS", "MessageId": uuid.uuid4().hex}
                    # params is the request; SES v2 is REST-JSON, its body the API's params.
                    for _ in json.loads(params["body"])["BulkEmailEntries"]
                ]
            }
        elif model.name == "SendEmail":
            parsed = {"MessageId": uuid.uuid4().hex}
        else:
            parsed = {}
        return AWSResponse(None, 200, {}, None), parsed


def main() -> None:
    args = parse_args()
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "newsroom.settings",
            "DJANGO_DEBUG": "1",
            "DATABASE_URL": args.database_url,
            "SITE_URL": "https://news.example",
            "EMAIL_BACKEND": "anymail.backends.amazon_ses.EmailBackend",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "LOG_LEVEL": "WARNING",
        }
    )
    import boto3
    import django

    django.setup()
    from django.core.mail import get_connection
    from django.utils import timezone

    from bench.common import write_result
    from subscriptions.digest import esp
    from subscriptions.digest.compose import edition_compose
    from subscriptions.models import Newsletter, Subscriber

    newsletter = Newsletter.objects.filter(slug="mideast-daily").first()
    readers = list(Subscriber.objects.filter(email__endswith="@readers.example")[: args.readers])
    if newsletter is None or len(readers) < args.readers:
        sys.exit(f"seed {args.database_url} first: python bench/digest.py --scale 1")
    edition = edition_compose(newsletter=newsletter, date=timezone.localdate())
    recipients = [esp.Recipient(n + 1, reader) for n, reader in enumerate(readers)]
    [(rendered, group)] = esp.prepare_messages(
        edition=edition, followed=[], recipients=recipients, appeals_running=False
    )

    fake = FakeSES(args.latency)
    make_client = boto3.session.Session.client

    def client(self, *a, **k):
        made = make_client(self, *a, **k)
        made.meta.events.register("before-call.sesv2", fake)
        return made

    boto3.session.Session.client = client

    esp._SES_TEMPLATES.clear()
    began = time.monotonic()
    report = esp.send_messages(edition=edition, prepared=[(rendered, group)])
    template_seconds = time.monotonic() - began
    assert not report.error and len(report.results) == len(group), report.error
    rows = [
        {
            "way": "stored template, SendBulkEmail of 50 (the digest's)",
            "threads": 1,
            "calls": dict(fake.calls),
            "seconds": template_seconds,
            "readers_per_second": len(group) / template_seconds,
        }
    ]

    for threads in args.threads:
        fake.calls = {}
        chunks = [group[n::threads] for n in range(threads)]

        def send(chunk):
            connection = get_connection()
            connection.open()
            results: dict = {}
            try:
                failure = esp._send_one_by_one(
                    connection, edition, [(rendered, chunk)], results, None
                )
            finally:
                connection.close()
            assert failure is None and len(results) == len(chunk), failure
            return len(results)

        began = time.monotonic()
        with ThreadPoolExecutor(threads) as pool:
            sent = sum(pool.map(send, chunks))
        seconds = time.monotonic() - began
        assert sent == len(group)
        rows.append(
            {
                "way": "SendEmail per reader",
                "threads": threads,
                "calls": dict(fake.calls),
                "seconds": seconds,
                "readers_per_second": len(group) / seconds,
            }
        )

    for row in rows:
        calls = sum(row["calls"].values())
        print(
            f"{row['way']:<52} threads {row['threads']:>2}  calls {calls:>5}  "
            f"{row['seconds']:6.2f} s  {row['readers_per_second']:7.0f} readers/s"
        )
    write_result(
        "ses-choice", {"readers": len(group), "latency_seconds": args.latency, "rows": rows}
    )


if __name__ == "__main__":
    main()
