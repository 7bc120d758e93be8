"""Side by side: django-newsletter and our digest, one edition to 10,000 readers, one SMTP sink.

    python bench/newsletter_compare.py                    # 10,000 subscribers each
    python bench/newsletter_compare.py --subscribers 2000 # a quicker look
    python bench/newsletter_compare.py --sink python      # through bench/smtp_sink.py

Both send through Django's SMTP backend to the same kind of local sink, on the same
machine, in the same run, one after the other, one message per reader (SMTP has no merge
data: each reader's copy is its own message). The sink is Postfix's smtp-sink (a C
program that answers at once and throws each message away; `-c` counts sessions and
messages), started afresh for each side on 127.0.0.1:8830, so that the sink is not what
sets the pace; `--sink python` uses bench/smtp_sink.py (aiosmtpd, counts in Redis DB 13).

Who got what: smtp-sink counts messages, not who they were for, so the run starts with a
check at --check-subscribers readers (500) on each side through smtp-sink dumping every
message (`-D`): each reader exactly one message with one envelope recipient, each with
their own List-Unsubscribe for ours. The timed run then goes at --subscribers without the
dump (writing 45 KB a message to disk would time the disk), its messages counted by
smtp-sink and, for ours, every delivery recorded sent.

The peer: django-newsletter (the latest release on the package index, with the Django it
supports) in its own virtualenv, bench/.venv-newsletter, created on the first run, and a
minimal project (bench/newsletter_peer/) on the PostgreSQL database newsroom_bench_peer.
It gets 10,000 subscribers to one newsletter and one message holding our edition's
articles (headlines, summaries, links) in a template shaped like ours; its own command,
`manage.py submit_newsletter`, sends it, timed from the command's start to its exit.

Ours: 10,000 confirmed Mideast Daily subscribers in newsroom_bench_compare, a real Celery
worker (prefork, 2 processes, as bench/digest.py) with
EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend pointed at the sink, timed from
sending the planner task to every delivery settled.

Prints seconds, messages and recipients per second at the sink, peak memory (the kernel's
high-water mark) and CPU time of the sending processes, and the ratio; writes
bench/results/newsletter-compare.json. Needs PostgreSQL and Redis on loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
sys.path.insert(0, str(ROOT))

from bench.common import ensure_database, readers_by_state, write_result  # noqa: E402

PEER_DIR = ROOT / "bench" / "newsletter_peer"
PEER_VENV = ROOT / "bench" / ".venv-newsletter"
PEER_PYTHON = PEER_VENV / "bin" / "python"
# django-newsletter 1.2 declares Django 4.2 and 5.2; pip takes the newest of those. Its
# models need one of two thumbnailers installed (its README, "Requirements").
PEER_REQUIREMENTS = [
    "django-newsletter",
    "Django>=4.2,<6",
    "sorl-thumbnail",
    "psycopg[binary]>=3.2",
]
PEER_IMPORTS = "import newsletter, sorl.thumbnail, psycopg, django"
SINK_KEY = "bench:newsletter_compare"
ARTIFACTS = ROOT / "test-artifacts"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SMTP_SINK = "/usr/sbin/smtp-sink"  # Debian's postfix package


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=10_000, help="readers on each side")
    parser.add_argument("--concurrency", type=int, default=2, help="our worker's processes")
    parser.add_argument(
        "--smtp-connections", type=int, default=4, help="SMTP_CONNECTIONS of our worker"
    )
    parser.add_argument("--sink", choices=["postfix", "python"], default="postfix")
    parser.add_argument(
        "--check-subscribers",
        type=int,
        default=500,
        help="readers of the first run, each message dumped and counted per reader "
        "(postfix sink; 0: no check)",
    )
    parser.add_argument("--port", type=int, default=8830, help="the sink's port (8830 to 8839)")
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/newsroom_bench_compare"
    )
    parser.add_argument("--peer-database", default="newsroom_bench_peer")
    parser.add_argument("--sink-redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument(
        "--redis-url", default="redis://127.0.0.1:6379/14", help="our cache and broker"
    )
    args = parser.parse_args()
    if args.subscribers < 1:
        parser.error("--subscribers must be at least 1")
    if not 8830 <= args.port <= 8839:
        parser.error("--port: the sink's ports are 8830 to 8839")
    if args.sink == "postfix" and not Path(SMTP_SINK).exists():
        parser.error(f"--sink postfix: {SMTP_SINK} is missing (Debian's postfix package)")
    return args


def ours_environment(args: argparse.Namespace) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "newsroom.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SITE_URL": "https://news.example",
        "STRIPE_SECRET_KEY": "sk_test_bench",
        "STRIPE_WEBHOOK_SECRET": "whsec_bench",
        "ANYMAIL_WEBHOOK_SECRET": "bench:bench",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "CELERY_BROKER_URL": args.redis_url,
        "CACHE_KEY_PREFIX": "bench-compare",
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(args.port),
        "SMTP_CONNECTIONS": str(args.smtp_connections),
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }


def peer_environment(args: argparse.Namespace) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DJANGO_SETTINGS_MODULE": "peer.settings",
        "PEER_DATABASE_NAME": args.peer_database,
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(args.port),
        "PYTHONPATH": str(PEER_DIR),
    }


def ensure_peer_venv() -> dict[str, str]:
    """Create bench/.venv-newsletter with django-newsletter once; return its versions."""
    if not PEER_PYTHON.exists():
        print("creating bench/.venv-newsletter ...", flush=True)
        subprocess.run([PYTHON, "-m", "venv", str(PEER_VENV)], check=True)
    if subprocess.run([str(PEER_PYTHON), "-c", PEER_IMPORTS], capture_output=True).returncode:
        print("installing django-newsletter in bench/.venv-newsletter ...", flush=True)
        subprocess.run(
            [str(PEER_PYTHON), "-m", "pip", "install", "--quiet", *PEER_REQUIREMENTS], check=True
        )
    versions = subprocess.run(
        [
            str(PEER_PYTHON),
            "-c",
            "import importlib.metadata as m; import json; "
            "print(json.dumps({n: m.version(n) for n in ('django-newsletter', 'Django')}))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(versions)


def peer_manage(args: argparse.Namespace, *command: str) -> None:
    subprocess.run(
        [str(PEER_PYTHON), "manage.py", *command],
        cwd=PEER_DIR,
        env=peer_environment(args),
        check=True,
    )


def peak_rss_mb(pid: int) -> float:
    """The kernel's high-water mark of a process's resident memory (VmHWM)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a live process (/proc/<pid>/stat, fields 14 and 15)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_group(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    pids.append(int(entry.name))
            except ProcessLookupError:
                continue
    return pids


# --- the sink ---------------------------------------------------------------------


def wait_for_port(process: subprocess.Popen, port: int, what: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{what} did not start on 127.0.0.1:{port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    process.terminate()
    sys.exit(f"{what} did not answer on 127.0.0.1:{port}")


class PostfixSink:
    """Postfix's smtp-sink on 127.0.0.1:port: answers 250 at once, throws messages away.

    `-c` prints "sess=N quit=N mesg=N" (sessions ended, QUITs, messages) after each
    message and session; a thread reads them as they come to time the first and last
    message. With `dump`, every message is also written to one file (`-D`), which is
    read for who got what. The probe connection that checks the port is one session.
    """

    COUNTERS = re.compile(rb"sess=(\d+) quit=(\d+) mesg=(\d+)")

    def __init__(self, port: int, *, dump: bool = False):
        self.workdir = Path(tempfile.mkdtemp(prefix="bench-smtp-sink-"))
        self.workdir.chmod(0o777)  # -u nobody writes the dump here
        self.dump = self.workdir / "messages" if dump else None
        self.counters = (self.workdir / "counters").open("wb+")
        command = [SMTP_SINK, "-c"]
        if os.geteuid() == 0:
            command += ["-u", "nobody"]  # smtp-sink refuses to run as root otherwise
        if self.dump is not None:
            command += ["-D", str(self.dump)]
        # The backlog: both sides open at most a few connections at a time.
        command += [f"127.0.0.1:{port}", "256"]
        self.process = subprocess.Popen(command, stdout=self.counters, stderr=subprocess.STDOUT)
        self.pid = self.process.pid
        wait_for_port(self.process, port, "smtp-sink")
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.latest = (0, 0, 0)
        self.stopping = threading.Event()
        self.watcher = threading.Thread(target=self._watch, daemon=True)
        self.watcher.start()

    def _read(self) -> tuple[int, int, int]:
        self.counters.flush()
        with open(self.counters.name, "rb") as counters:
            counters.seek(max(0, os.path.getsize(self.counters.name) - 200))
            found = self.COUNTERS.findall(counters.read())
        return tuple(int(n) for n in found[-1]) if found else (0, 0, 0)

    def _watch(self) -> None:
        while not self.stopping.is_set():
            latest = self._read()
            now = time.time()
            if latest[2] > self.latest[2]:
                self.first_at = self.first_at or now
                self.last_at = now
            self.latest = latest
            time.sleep(0.02)

    def stop(self) -> None:
        self.stopping.set()
        self.watcher.join()
        self.process.terminate()
        self.process.wait(15)
        self.latest = self._read()

    def counts(self) -> dict:
        sessions, _quits, messages = self.latest
        counts = {
            "sink": "postfix smtp-sink",
            "connections": max(0, sessions - 1),  # less the port probe
            "messages": messages,
            "first_at": self.first_at,
            "last_at": self.last_at,
        }
        if self.dump is None:
            # Counted per reader in the dumped check run; one recipient a message there.
            return counts | {"recipients": messages}
        return counts | dumped(self.dump)


def dumped(path: Path) -> dict:
    """Who got what, from smtp-sink's dump: an X-Client-Addr record opens each message,
    then smtp-sink's own records and Received header, then the message as received."""
    data = path.read_bytes() if path.exists() else b""
    starts = [m.start() for m in re.finditer(rb"^X-Client-Addr: ", data, re.M)]
    per_reader: Counter[str] = Counter()
    unsubscribe: set[bytes] = set()
    size = 0
    one_recipient = True
    for start, end in zip(starts, [*starts[1:], len(data)], strict=True):
        dumped_message = data[start:end]
        rcpts = re.findall(rb"^X-Rcpt-Args: *(?:TO:)?<?([^>\s]*)", dumped_message, re.M | re.I)
        one_recipient &= len(rcpts) == 1
        per_reader.update(address.decode().lower() for address in rcpts)
        received = re.search(rb"^Received: .*?\n(?![ \t])", dumped_message, re.M | re.S)
        message = dumped_message[received.end() :] if received else dumped_message
        size += len(message) + message.count(b"\n")  # the dump ends lines in LF, SMTP in CRLF
        headers = re.split(rb"\r?\n\r?\n", message, maxsplit=1)[0]
        unfolded = re.sub(rb"\r?\n[ \t]+", b" ", headers)
        found = re.search(rb"^List-Unsubscribe: *(.*?)\r?$", unfolded, re.M | re.I)
        if found:
            unsubscribe.add(found.group(1))
    return {
        "recipients": sum(per_reader.values()),
        "bytes": size,
        "distinct_list_unsubscribe": len(unsubscribe),
        "readers": len(per_reader),
        "readers_with_exactly_one": sum(1 for n in per_reader.values() if n == 1),
        "one_recipient_per_message": one_recipient,
    }


class PythonSink:
    """bench/smtp_sink.py (aiosmtpd), its counts in Redis."""

    def __init__(self, args: argparse.Namespace):
        import redis

        self.store = redis.Redis.from_url(args.sink_redis_url)
        self.process = subprocess.Popen(
            [
                PYTHON,
                str(ROOT / "bench" / "smtp_sink.py"),
                "--port",
                str(args.port),
                "--redis-url",
                args.sink_redis_url,
                "--key",
                SINK_KEY,
                "--reset",
            ],
            cwd=ROOT,
        )
        self.pid = self.process.pid
        wait_for_port(self.process, args.port, "the Python SMTP sink")

    def stop(self) -> None:
        time.sleep(0.5)  # the sink's last answers reach Redis
        self.process.terminate()
        self.process.wait(15)

    def counts(self) -> dict:
        from bench.smtp_sink import read_counts

        return {"sink": "bench/smtp_sink.py"} | read_counts(self.store, SINK_KEY)


def open_sink(args: argparse.Namespace, *, dump: bool = False):
    return PostfixSink(args.port, dump=dump) if args.sink == "postfix" else PythonSink(args)


def sink_figures(counts: dict, subscribers: int) -> dict:
    span = (
        counts["last_at"] - counts["first_at"]
        if counts["first_at"] and counts["last_at"] and counts["messages"] > 1
        else None
    )
    size = counts.get("bytes")
    return {
        **counts,
        "first_to_last_message_seconds": span,
        "messages_per_second_at_sink": counts["messages"] / span if span else None,
        "recipients_per_second_at_sink": counts["recipients"] / span if span else None,
        "bytes_per_message": size / counts["messages"] if size and counts["messages"] else None,
        "all_delivered": counts["recipients"] == subscribers == counts["messages"],
    }


# --- our side: seeding and the edition's content -------------------------------------


def seed_ours(subscribers: int) -> None:
    """The newsroom, 60 fresh articles and `subscribers` confirmed readers following nothing.

    Readers who follow nothing all get the same edition (top stories, then the latest per
    section), as every django-newsletter subscriber gets the same message.
    """
    from django.db import connection
    from django.utils import timezone

    from newsroom.models import Article, Author, Category, Topic
    from subscriptions.models import Edition, Newsletter, Subscriber

    newsletter, _ = Newsletter.objects.get_or_create(
        slug="mideast-daily",
        defaults={"name": "Mideast Daily", "top_stories_count": 3, "section_cap": 3},
    )
    # Due at any hour of the readers' day, so the comparison runs whenever it is started.
    Newsletter.objects.filter(pk=newsletter.pk).update(
        send_hour=0, cadence=Newsletter.Cadence.DAILY, active=True
    )
    categories = [
        Category.objects.get_or_create(
            slug=f"compare-section-{n}", defaults={"name": f"Section {n}", "order": n}
        )[0]
        for n in range(10)
    ]
    topic, _ = Topic.objects.get_or_create(slug="compare-topic", defaults={"name": "Water"})
    author, _ = Author.objects.get_or_create(slug="compare-desk", defaults={"name": "The Desk"})

    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE subscriptions_delivery, subscriptions_deliverybatch CASCADE")
    Edition.objects.filter(newsletter=newsletter).delete()
    Article.objects.filter(slug__startswith="compare-").delete()
    for n in range(60):
        article = Article.objects.create(
            headline=f"Dispatch {n}: water, power and the cities of the region after the rains",
            slug=f"compare-{n}",
            dek=(
                "What our reporters found in the ministries, the markets and the neighbourhoods, "
                "and what it means for the week ahead."
            ),
            body="<p>Reported.</p>",
            category=categories[n % len(categories)],
            status=Article.Status.PUBLISHED,
            published_at=now - timedelta(minutes=5 + n),
            top_story_rank=n + 1 if n < 3 else None,
        )
        article.authors.set([author])
        article.topics.set([topic])

    have = Subscriber.objects.filter(email__endswith="@readers.example").count()
    with connection.cursor() as cursor:
        if have != subscribers:
            print(f"seeding {subscribers} subscribers ...", flush=True)
            cursor.execute("TRUNCATE subscriptions_subscriber CASCADE")
            cursor.execute(
                "INSERT INTO subscriptions_subscriber"
                " (email, name, time_zone, created_at, confirmed_at, public_id, language)"
                " SELECT 'reader' || n || '@readers.example', '', 'Asia/Jerusalem', now(), %s,"
                " gen_random_uuid(), %s"
                " FROM generate_series(0, %s - 1) AS n",
                [now - timedelta(days=30), newsletter.language, subscribers],
            )
            cursor.execute(
                "INSERT INTO subscriptions_subscription"
                " (subscriber_id, newsletter_id, status, created_at, confirmed_at)"
                " SELECT id, %s, 'active', now(), %s FROM subscriptions_subscriber",
                [newsletter.pk, now - timedelta(days=30)],
            )
        cursor.execute("ANALYZE")


def edition_content(path: Path) -> dict:
    """What our readers will get today, as the peer's message: subject, articles, HTML size."""
    from zoneinfo import ZoneInfo

    from django.conf import settings
    from django.utils import timezone

    from subscriptions.digest import compose, render
    from subscriptions.models import Newsletter, Subscriber

    newsletter = Newsletter.objects.get(slug="mideast-daily")
    now = timezone.now()
    today = timezone.localtime(now, ZoneInfo("Asia/Jerusalem")).date()
    draft = compose.edition_draft(newsletter=newsletter, date=today, now=now)
    view = compose.edition_view(edition=draft, followed=[])
    articles = [*view.top, *(a for section in view.sections for a in section.articles)]
    rendered = render.render_edition_email(edition=draft, followed=[])
    reader = Subscriber.objects.filter(email__endswith="@readers.example").first()
    own = render.personal_copy(
        rendered=rendered,
        values=render.recipient_values(
            subscriber=reader,
            newsletter=newsletter,
            headers=render.reader_headers(subscriber=reader, newsletter=newsletter),
        ),
    )
    content = {
        "newsletter": newsletter.name,
        "subject": rendered.subject,
        "domain": settings.SITE_URL.split("://", 1)[1],
        "articles": [
            {"headline": a.headline, "dek": a.dek, "url": a.absolute_url} for a in articles
        ],
        "our_html_bytes": len(own.html.encode()),
        "our_text_bytes": len(own.text.encode()),
        "sections": len(view.sections),
    }
    path.write_text(json.dumps(content, indent=2))
    return content


# --- the two runs ---------------------------------------------------------------------


def run_peer(args: argparse.Namespace, subscribers: int, content_path: Path, dump: bool) -> dict:
    print("--- django-newsletter: seeding", flush=True)
    peer_manage(args, "migrate", "--noinput", "-v0")
    peer_manage(
        args,
        "bench_peer_seed",
        "--content",
        str(content_path),
        "--subscribers",
        str(subscribers),
    )
    # Django's start-up in that virtualenv (manage.py check), measured apart so that
    # the send's own share of submit_newsletter's time can be told.
    began = time.monotonic()
    subprocess.run(
        [str(PEER_PYTHON), "manage.py", "check", "-v0"],
        cwd=PEER_DIR,
        env=peer_environment(args),
        check=True,
        capture_output=True,
    )
    startup = time.monotonic() - began

    sink = open_sink(args, dump=dump)
    sink_cpu = cpu_seconds(sink.pid)
    print("--- django-newsletter: manage.py submit_newsletter", flush=True)
    log = ARTIFACTS / "bench-newsletter-peer.log"
    began = time.monotonic()
    process = subprocess.Popen(
        [str(PEER_PYTHON), "manage.py", "submit_newsletter"],
        cwd=PEER_DIR,
        env=peer_environment(args),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.monotonic() - began
    process.returncode = os.waitstatus_to_exitcode(status)
    sink_cpu = cpu_seconds(sink.pid) - sink_cpu
    sink.stop()
    if process.returncode:
        sys.exit(f"submit_newsletter failed:\n{log.read_text()[-3000:]}")
    figures = sink_figures(sink.counts(), subscribers)
    errors = log.read_text(errors="replace").count("failed with error")
    return {
        "what": "manage.py submit_newsletter: one process renders each subscriber's copy "
        "(its templates, and queries for the message's articles and attachments each time) "
        "and sends it with EmailMessage.send(), "
        "a new SMTP connection per message",
        "seconds": elapsed,
        "startup_seconds": startup,
        "recipients_per_second": figures["recipients"] / elapsed,
        "processes": 1,
        "peak_mb_per_process": usage.ru_maxrss / 1024,
        "peak_mb_total": usage.ru_maxrss / 1024,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "send_errors_logged": errors,
        "sink": figures,
        "sink_cpu_seconds": sink_cpu,
    }


def run_ours(args: argparse.Namespace, subscribers: int, dump: bool) -> dict:
    from newsroom.celery import app
    from subscriptions.digest.tasks import digest_plan_task
    from subscriptions.models import Delivery, DeliveryBatch, Edition

    app.control.purge()
    sink = open_sink(args, dump=dump)
    log = ARTIFACTS / "bench-newsletter-ours-worker.log"
    worker = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "newsroom.celery",
            "worker",
            "-Q",
            "celery,digests",
            "--pool",
            "prefork",
            "--concurrency",
            str(args.concurrency),
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env={**os.environ},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    settled_states = [
        Delivery.State.SENT,
        Delivery.State.SUPPRESSED,
        Delivery.State.FAILED,
        Delivery.State.IN_DOUBT,
    ]
    try:
        deadline = time.monotonic() + 60
        while "ready." not in log.read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"worker did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        pids = process_group(worker.pid)
        cpu_before = {pid: cpu_seconds(pid) for pid in pids}
        sink_cpu = cpu_seconds(sink.pid)
        print("--- ours: the planner task, then every batch, on the worker", flush=True)
        began = time.monotonic()
        digest_plan_task.delay()  # what beat sends every five minutes
        while True:
            time.sleep(0.2)
            counts = readers_by_state()
            if sum(counts.get(state, 0) for state in settled_states) >= subscribers:
                break
            if time.monotonic() - began > 900:
                sys.exit("ours: not every delivery settled after 15 minutes")
            if worker.poll() is not None:
                sys.exit(f"worker stopped:\n{log.read_text()[-3000:]}")
        elapsed = time.monotonic() - began
        sink_cpu = cpu_seconds(sink.pid) - sink_cpu
        pids = process_group(worker.pid)
        peaks = {pid: peak_rss_mb(pid) for pid in pids}
        cpu = sum(cpu_seconds(pid) - cpu_before.get(pid, 0.0) for pid in pids)
    finally:
        # SIGTERM: the worker's processes QUIT their kept SMTP connections as they stop.
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
        sink.stop()
    figures = sink_figures(sink.counts(), subscribers)
    states = readers_by_state()
    edition = Edition.objects.get(newsletter__slug="mideast-daily")
    return {
        "what": f"the planner task, then batches of up to ESP_BATCH_SIZE readers on a Celery "
        f"worker (prefork, {args.concurrency} processes); with an SMTP backend each batch "
        "renders the edition once, fills each reader's links into a copy, and sends one "
        "message per reader by substitution into its one MIME rendering, over up to "
        f"{args.smtp_connections} SMTP connections per process, kept open between batches",
        "seconds": elapsed,
        "recipients_per_second": figures["recipients"] / elapsed,
        "processes": len(peaks),
        "peak_mb_per_process": max(peaks.values()),
        "peak_mb_total": sum(peaks.values()),
        "peak_mb_by_pid": peaks,
        "cpu_seconds": cpu,
        "batches": DeliveryBatch.objects.filter(edition=edition).count(),
        "states": states,
        "sink": figures,
        "sink_cpu_seconds": sink_cpu,
    }


def show(label: str, side: dict) -> None:
    sink = side["sink"]
    rate = sink["messages_per_second_at_sink"]
    size = sink.get("bytes_per_message")
    distinct = sink.get("distinct_list_unsubscribe")
    print(
        f"{label:<18} {side['seconds']:7.1f} s  {side['recipients_per_second']:7.0f} recipients/s "
        f"end to end  {rate or 0:7.0f} messages/s at the sink  "
        f"{sink['messages']:>6} messages {sink['recipients']:>6} recipients "
        f"{sink['connections']:>6} connections  "
        + (f"{size:7.0f} B/message  " if size else "")
        + (f"{distinct:>6} distinct List-Unsubscribe  " if distinct is not None else "")
        + f"peak {side['peak_mb_per_process']:.0f} MB/process ({side['processes']} processes, "
        f"{side['peak_mb_total']:.0f} MB)  CPU {side['cpu_seconds']:.1f} s "
        f"(the sink's {side['sink_cpu_seconds']:.1f} s)"
    )


def check(peer: dict, ours: dict, subscribers: int) -> dict:
    """Each reader exactly one message, one envelope recipient each, on both sides."""
    verdicts = {}
    for label, side in (("django-newsletter", peer), ("ours", ours)):
        sink = side["sink"]
        verdicts[label] = (
            sink["messages"] == sink["recipients"] == subscribers
            and sink["readers"] == sink["readers_with_exactly_one"] == subscribers
            and sink["one_recipient_per_message"]
        )
        print(
            f"check, {label}: {sink['messages']} messages to {sink['readers']} readers, "
            f"{sink['readers_with_exactly_one']} with exactly one, "
            f"{sink['distinct_list_unsubscribe']} distinct List-Unsubscribe, "
            f"{sink['bytes_per_message'] or 0:.0f} B/message: "
            + ("every reader exactly once" if verdicts[label] else "FAILED"),
            flush=True,
        )
    return verdicts


def both_sides(
    args: argparse.Namespace, subscribers: int, *, dump: bool
) -> tuple[dict, dict, dict]:
    print(f"--- ours: seeding {subscribers} readers in newsroom_bench_compare", flush=True)
    seed_ours(subscribers)
    content_path = ARTIFACTS / "newsletter-compare-edition.json"
    content = edition_content(content_path)
    print(
        f"edition: {len(content['articles'])} articles, our HTML {content['our_html_bytes']} bytes",
        flush=True,
    )
    # Each side gets its own sink process; the sink's CPU time while it sends tells
    # whether the sink, not the sender, set the pace.
    peer = run_peer(args, subscribers, content_path, dump)
    ours = run_ours(args, subscribers, dump)
    return content, peer, ours


def main() -> None:
    args = parse_args()
    ARTIFACTS.mkdir(exist_ok=True)
    versions = ensure_peer_venv()
    ensure_database(args.database_url)
    ensure_database(args.database_url.rsplit("/", 1)[0] + "/" + args.peer_database)

    os.environ.update(ours_environment(args))
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env={**os.environ},
        check=True,
    )
    import django

    django.setup()

    checked = None
    if args.sink == "postfix" and args.check_subscribers:
        print(f"=== check: {args.check_subscribers} readers each, every message dumped", flush=True)
        _, peer, ours = both_sides(args, args.check_subscribers, dump=True)
        checked = {
            "subscribers": args.check_subscribers,
            "django_newsletter": peer["sink"],
            "ours": ours["sink"],
            "every_reader_exactly_once": check(peer, ours, args.check_subscribers),
        }
        if not all(checked["every_reader_exactly_once"].values()):
            sys.exit("the check failed: not every reader got exactly one message")

    print(f"=== timed: {args.subscribers} readers each, through {args.sink}", flush=True)
    content, peer, ours = both_sides(args, args.subscribers, dump=False)

    ratio = ours["recipients_per_second"] / peer["recipients_per_second"]
    sink_ratio = (
        ours["sink"]["messages_per_second_at_sink"] / peer["sink"]["messages_per_second_at_sink"]
        if ours["sink"]["messages_per_second_at_sink"]
        and peer["sink"]["messages_per_second_at_sink"]
        else None
    )
    print()
    show(f"django-newsletter {versions['django-newsletter']}", peer)
    show("ours", ours)
    print(f"ratio, recipients per second end to end (ours / django-newsletter): {ratio:.2f}")
    if sink_ratio:
        print(f"ratio, messages per second at the sink, first to last:          {sink_ratio:.2f}")
    sent = ours["states"].get("sent", 0)
    print(f"ours: {sent} of {args.subscribers} deliveries recorded sent")
    for label, side in (("django-newsletter", peer), ("ours", ours)):
        if not side["sink"]["all_delivered"]:
            print(
                f"WARNING: {label}: {side['sink']['messages']} of {args.subscribers} "
                "reached the sink"
            )
    write_result(
        "newsletter-compare",
        {
            "subscribers": args.subscribers,
            "sink": args.sink,
            "check": checked,
            "peer_versions": versions,
            "edition": {k: v for k, v in content.items() if k != "articles"}
            | {"articles": len(content["articles"])},
            "django_newsletter": peer,
            "ours": ours,
            "ratio_recipients_per_second": ratio,
            "ratio_messages_per_second_at_sink": sink_ratio,
        },
    )
    if not (peer["sink"]["all_delivered"] and ours["sink"]["all_delivered"]):
        sys.exit(1)
    if sent != args.subscribers:
        sys.exit(1)


if __name__ == "__main__":
    main()
