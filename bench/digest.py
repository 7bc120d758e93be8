"""The digest end to end: one edition to 100,000 subscribers with 50 distinct followed sets.

Starts a real Celery worker (PostgreSQL, Redis broker), asks it to run the beat planner
task, and waits until every delivery is settled while a local fake ESP (bench/inprocess_esp.py,
an anymail backend) counts recipients. Prints recipients per second end to end (planner
included) and the worker processes' peak memory (VmHWM).

    python bench/digest.py                          # 100,000 readers, 50 sets
    python bench/digest.py --scale 100 --sets 5000  # 1,000,000 readers, 5,000 sets
    python bench/digest.py --growth                 # 10,000 / 100,000 / 1,000,000 readers
    python bench/digest.py --quick                  # the suite's: 1x and 10x growth rows
    python bench/digest.py --readers 20000 --concurrency 2 --esp-latency 0.1
    python bench/digest.py --scale 100 --profile-planner  # the planner alone, under pyinstrument
    python bench/digest.py --esp postmark           # over HTTP to bench/fake_esp.py, anymail's
    python bench/digest.py --esp mailgun            #   real Postmark or Mailgun backend
    python bench/digest.py --against 4c1c6fa        # that commit, then this tree (Mailgun)
    python bench/digest.py --esp postmark --threads 2  # the Procfile's two digest processes

With --esp postmark or mailgun, the ESP is bench/fake_esp.py started as its own process
(answering after --esp-latency seconds), and the worker sends through anymail's real
backend over HTTP; the stand-in counts the calls and recipients.

Readers are seeded in SQL (generate_series), once per scale, each scale in its own
database (newsroom_bench_digest_x<scale>), seeded again when the number of followed
sets asked for changes. The worker counts the SQL queries of every batch task
(BENCH_COUNT_QUERIES, set only here), times each stage of a send (wall, CPU and time
waiting for a core; BENCH_SQL_STATEMENTS=1 adds each SQL statement's own), and the
process that ran the planner reports its own peak memory. Stopping the script (Ctrl-C,
`timeout`, SIGTERM or SIGHUP) stops its worker too.

Needs PostgreSQL and Redis (the defaults below are this machine's).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import itertools
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
sys.path.insert(0, str(ROOT))
from bench.common import commit, ensure_database, load_average, readers_by_state  # noqa: E402

STATS_KEY = "bench:digest:stats"

if os.environ.get("BENCH_COUNT_QUERIES"):
    # Imported as the worker's app (-A bench.digest) only by this benchmark: every batch
    # task counts its SQL queries, and the planner reports its own time and peak memory.
    import redis
    from celery.signals import task_postrun, task_prerun

    from newsroom.celery import app  # noqa: F401  (the worker's app)

    _stats = redis.Redis.from_url(os.environ["BENCH_ESP_REDIS_URL"])
    _running: dict = {}
    # Where a send task's time goes: wall, CPU and run-queue seconds (this thread's time
    # runnable but waiting for a core, /proc/thread-self/schedstat) of each stage of the
    # service (wrapped below) and of its SQL, and how long this process sat without a
    # task before it.
    # Per thread: a worker of the threads pool runs several tasks at once.
    _local = threading.local()
    _last_end: list[float] = []
    _wrap_once = threading.Lock()
    _wrapped: list[bool] = []
    # The CPU a task used: its process's in a prefork child (a pack's calls run in
    # threads of its own); its thread's where threads of one process run several tasks.
    _threaded = int(os.environ.get("BENCH_THREADS", "1")) > 1
    _task_cpu = time.thread_time if _threaded else time.process_time

    def _stages() -> dict[str, list[float]]:
        if not hasattr(_local, "stages"):
            _local.stages = {}
        return _local.stages

    def _run_queue() -> float:
        with open("/proc/thread-self/schedstat") as schedstat:
            return int(schedstat.read().split()[1]) / 1e9

    def _timed(name: str, function):
        def timed(*args, **kwargs):
            wall, cpu, queued = time.monotonic(), time.thread_time(), _run_queue()
            try:
                return function(*args, **kwargs)
            finally:
                spent = _stages().setdefault(name, [0.0, 0.0, 0.0])
                spent[0] += time.monotonic() - wall
                spent[1] += time.thread_time() - cpu
                spent[2] += _run_queue() - queued

        return timed

    def _time_stages() -> None:
        from requests.adapters import HTTPAdapter

        from subscriptions.digest import send

        # _claim: lock the batch, read its readers, render (_prepare), mark it sending
        # (before 1 December 2026, _look read the readers and _claim read them again);
        # _call_esp: anymail's payload and the HTTP call (http: sending the body, the
        # ESP's work and latency, reading the answer); _settle: record the answer and the
        # edition's state. A commit measured with --against has the stages it has.
        for name in ("_look", "_prepare", "_claim", "_call_esp", "_settle"):
            if hasattr(send, name):
                setattr(send, name, _timed(name, getattr(send, name)))
        HTTPAdapter.send = _timed("http", HTTPAdapter.send)

    @task_prerun.connect
    def _count_queries(task_id=None, task=None, **kwargs) -> None:
        from django.db import connection

        with _wrap_once:
            if not _wrapped:
                _time_stages()  # in the first task: the apps are loaded by then
                _wrapped.append(True)
        now = time.monotonic()
        _stages().clear()
        counter = {
            "queries": 0,
            "started": now,
            "cpu": _task_cpu(),
            "run_queue": _run_queue(),
            "idle_before": now - _last_end[0] if _last_end else None,
        }

        def wrapper(execute, sql, params, many, context):
            counter["queries"] += 1
            if os.environ.get("BENCH_SQL_STATEMENTS"):
                execute = _timed(f"sql {sql[:90]}", execute)
            return _timed("sql", execute)(sql, params, many, context)

        wrap = connection.execute_wrapper(wrapper)
        wrap.__enter__()
        _running[task_id] = (wrap, counter)

    @task_postrun.connect
    def _report(task_id=None, task=None, **kwargs) -> None:
        wrap, counter = _running.pop(task_id, (None, None))
        if wrap is None:
            return
        wrap.__exit__(None, None, None)
        _last_end[:] = [time.monotonic()]
        # A pack task (subscriptions.digest_send_batches) sends several batches.
        batches = (
            len(kwargs["args"][0]) if task.name.endswith("_batches") and kwargs.get("args") else 1
        )
        _stats.rpush(
            STATS_KEY,
            json.dumps(
                {
                    "task": task.name,
                    "batches": batches,
                    "queries": counter["queries"],
                    "seconds": time.monotonic() - counter["started"],
                    "cpu_seconds": _task_cpu() - counter["cpu"],
                    "run_queue_seconds": _run_queue() - counter["run_queue"],
                    "idle_before": counter["idle_before"],
                    "stages": {name: list(spent) for name, spent in _stages().items()},
                    "pid": os.getpid(),
                    "peak_mb": peak_rss_mb(os.getpid()),
                }
            ),
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--readers", type=int, default=None, help="subscribers (default: 10,000 x scale)"
    )
    parser.add_argument(
        "--scale", type=int, default=10, help="1, 10 or 100 times 10,000 subscribers"
    )
    parser.add_argument(
        "--growth", action="store_true", help="run at 1x, 10x and 100x; write digest-growth.json"
    )
    parser.add_argument("--quick", action="store_true", help="growth rows at 1x and 10x only")
    parser.add_argument("--sets", type=int, default=50, help="distinct followed sets")
    parser.add_argument("--batch-size", type=int, default=500, help="ESP_BATCH_SIZE")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="tasks each worker process runs at once: 1, prefork children (one worker, "
        "--concurrency children); more, --concurrency workers of the threads pool",
    )
    parser.add_argument("--esp-latency", type=float, default=0.05, help="seconds per ESP call")
    parser.add_argument(
        "--database-url", default=None, help="default: newsroom_bench_digest_x<scale>"
    )
    parser.add_argument(
        "--profile-planner",
        action="store_true",
        help="run only the planner, in this process under pyinstrument, queueing nothing",
    )
    parser.add_argument(
        "--esp",
        choices=("inprocess", "postmark", "mailgun"),
        help="inprocess: bench/inprocess_esp.py; postmark, mailgun: HTTP to bench/fake_esp.py "
        "(default: inprocess, and mailgun with --against)",
    )
    parser.add_argument("--esp-port", type=int, default=18025, help="the HTTP stand-in's port")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/8")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/9")
    parser.add_argument(
        "--against",
        metavar="COMMIT",
        help="also measure COMMIT the same way (its own checkout and virtualenv), then "
        "print this tree's recipients per second over COMMIT's",
    )
    parser.add_argument(
        "--against-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "newsroom-bench-against",
        help="where --against keeps each commit's checkout and virtualenv (default: %(default)s)",
    )
    parser.add_argument(
        "--lock",
        type=Path,
        help="with --against: hold this flock(1) file during each measurement, "
        "released between the two (e.g. /tmp/bench.lock)",
    )
    parser.add_argument(
        "--json-out", type=Path, help="write the figures here instead of bench/results/"
    )
    return parser.parse_args()


def environment(args: argparse.Namespace) -> dict[str, str]:
    stand_in = f"http://127.0.0.1:{args.esp_port}"
    esp = {
        "inprocess": {"EMAIL_BACKEND": "bench.inprocess_esp.EmailBackend"},
        # Each ESP's own merge field syntax, set because an older commit (--against)
        # reads only this setting, whose default there is Postmark's.
        "postmark": {
            "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
            "ANYMAIL_POSTMARK_SERVER_TOKEN": "bench-token",
            "ANYMAIL_POSTMARK_API_URL": f"{stand_in}/",
            "ESP_MERGE_FIELD_FORMAT": "{{FIELD}}",
        },
        "mailgun": {
            "EMAIL_BACKEND": "anymail.backends.mailgun.EmailBackend",
            "ANYMAIL_MAILGUN_API_KEY": "bench-key",
            "ANYMAIL_MAILGUN_API_URL": f"{stand_in}/v3",
            "ESP_MERGE_FIELD_FORMAT": "%recipient.FIELD%",
        },
    }[args.esp]
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
        "CELERY_BROKER_URL": args.broker_url,
        "CACHE_KEY_PREFIX": "bench-digest",
        "ESP_BATCH_SIZE": str(args.batch_size),
        **esp,
        "BENCH_ESP_LATENCY": str(args.esp_latency),
        "BENCH_THREADS": str(args.threads),
        "BENCH_ESP_KEY": "bench:digest:esp",
        "BENCH_ESP_REDIS_URL": args.redis_url,
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }


def followed_sets(categories: list, topics: list, count: int) -> list[list]:
    """`count` distinct, ordered follow lists (the first one empty: follows nothing)."""
    items = [("c", c) for c in categories] + [("t", t) for t in topics]
    sets: list[list] = [[]]
    for size in (1, 2, 3):
        for combo in itertools.permutations(items, size):
            if len(sets) == count:
                return sets
            sets.append(list(combo))
    return sets


def seed(args: argparse.Namespace) -> None:
    """Create the newsroom and the readers once; reset the day's edition every run."""
    from datetime import timedelta

    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from newsroom.models import Article, Author, Category, Topic
    from subscriptions.models import (
        Delivery,
        DeliveryBatch,
        Edition,
        Follow,
        Newsletter,
        Subscriber,
    )

    newsletter, _ = Newsletter.objects.get_or_create(
        slug="mideast-daily",
        defaults={"name": "Mideast Daily", "top_stories_count": 3, "section_cap": 3},
    )
    # Due at any hour of the readers' local day, so the bench runs whenever it is started.
    Newsletter.objects.filter(pk=newsletter.pk).update(
        send_hour=0, cadence=Newsletter.Cadence.DAILY, active=True
    )
    categories = [
        Category.objects.get_or_create(
            slug=f"bench-section-{n}", defaults={"name": f"Bench section {n}", "order": n}
        )[0]
        for n in range(10)
    ]
    topics = [
        Topic.objects.get_or_create(slug=f"bench-topic-{n}", defaults={"name": f"Bench topic {n}"})[
            0
        ]
        for n in range(8)
    ]
    author, _ = Author.objects.get_or_create(slug="bench-desk", defaults={"name": "Bench Desk"})

    # A fresh day's reporting: 60 articles across the sections, 3 of them ranked.
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE subscriptions_delivery, subscriptions_deliverybatch CASCADE")
    Edition.objects.filter(newsletter=newsletter).delete()
    Article.objects.filter(slug__startswith="bench-digest-").delete()
    for n in range(60):
        article = Article.objects.create(
            headline=f"Bench dispatch {n}: water, power and the cities",
            slug=f"bench-digest-{n}",
            dek="A report written for measuring the digest.",
            body="<p>Measured.</p>",
            category=categories[n % len(categories)],
            status=Article.Status.PUBLISHED,
            published_at=now - timedelta(minutes=5 + n),
            top_story_rank=n + 1 if n < 3 else None,
        )
        article.authors.set([author])
        article.topics.set([topics[n % len(topics)]])

    # Reader n follows sets[n % len(sets)]: the follow count tells whether the database
    # holds these readers in this many sets, or must be seeded again.
    sets = followed_sets(categories, topics, args.sets)
    follows_wanted = sum(len(sets[n % len(sets)]) for n in range(args.readers))
    have = Subscriber.objects.filter(email__endswith="@readers.example").count()
    follows_have = Follow.objects.filter(subscriber__email__endswith="@readers.example").count()
    if have != args.readers or follows_have != follows_wanted:
        print(f"seeding {args.readers} subscribers in {args.sets} followed sets ...", flush=True)
        began = time.monotonic()
        rows = [
            (number, position, item.pk if kind == "c" else None, item.pk if kind == "t" else None)
            for number, follow_set in enumerate(sets)
            for position, (kind, item) in enumerate(follow_set)
        ]
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE subscriptions_delivery, subscriptions_deliverybatch CASCADE")
            cursor.execute("TRUNCATE subscriptions_subscriber CASCADE")
            columns = "email, name, time_zone, created_at, confirmed_at"
            values = "'bench' || n || '@readers.example', '', 'Asia/Jerusalem', now(), %s"
            params = [confirmed := now - timedelta(days=30)]
            # An older commit's readers (measured with --against) may lack these columns.
            fields = {field.column for field in Subscriber._meta.concrete_fields}
            if "public_id" in fields:
                columns += ", public_id"
                values += ", gen_random_uuid()"
            if "language" in fields:
                columns += ", language"
                values += ", %s"
                params.append(settings.LANGUAGE_CODE)
            cursor.execute(
                f"INSERT INTO subscriptions_subscriber ({columns})"  # noqa: S608 (our own text)
                f" SELECT {values} FROM generate_series(0, %s - 1) AS n",
                [*params, args.readers],
            )
            cursor.execute(
                "INSERT INTO subscriptions_subscription"
                " (subscriber_id, newsletter_id, status, created_at, confirmed_at)"
                " SELECT id, %s, 'active', now(), %s FROM subscriptions_subscriber",
                [newsletter.pk, confirmed],
            )
            cursor.execute(
                "CREATE TEMP TABLE bench_sets"
                " (number int, position int, category_id bigint, topic_id bigint)"
            )
            cursor.executemany("INSERT INTO bench_sets VALUES (%s, %s, %s, %s)", rows)
            cursor.execute(
                "INSERT INTO subscriptions_follow"
                " (subscriber_id, category_id, topic_id, position, created_at)"
                " SELECT s.id, f.category_id, f.topic_id, f.position, now()"
                " FROM subscriptions_subscriber s"
                " JOIN bench_sets f"
                " ON f.number = (s.id - (SELECT min(id) FROM subscriptions_subscriber)) %% %s",
                [len(sets)],
            )
            cursor.execute("DROP TABLE bench_sets")
            # As autovacuum would before any real send: without it the first planner
            # after a seed writes every freshly inserted page again (hint bits), and
            # the 1,000,000-reader planner took twice as long right after seeding.
            cursor.execute("VACUUM ANALYZE")
        print(f"seeded in {time.monotonic() - began:.1f} s", flush=True)
    else:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE subscriptions_delivery, subscriptions_deliverybatch CASCADE")
    assert not Delivery.objects.filter(edition__newsletter=newsletter).exists()
    assert not DeliveryBatch.objects.filter(edition__newsletter=newsletter).exists()


def process_group(pid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pid:
                    pids.append(int(entry.name))
            except ProcessLookupError:
                continue
    return pids


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
    """The CPU time a process has used so far, user and system (/proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    # utime and stime, the 14th and 15th fields, counted after the command's ")".
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_on_signals() -> None:
    """SIGTERM and SIGHUP (`timeout`, a closed terminal) unwind like Ctrl-C does, so the
    `finally` that stops the worker runs; by default they end Python on the spot. SIGINT
    too, which a shell leaves ignored in a script started in the background (`&`)."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)


def _die_with_parent() -> None:
    """In the worker, before exec: the kernel sends it SIGTERM if this script dies, even
    by SIGKILL (prctl PR_SET_PDEATHSIG), so no worker outlives its benchmark."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


def worker_command(args: argparse.Namespace) -> list[str]:
    """The worker: one prefork worker of --concurrency children (the Procfile's worker),
    or (--threads above 1) --concurrency workers of the threads pool, each running
    --threads tasks at once (its digest process), started together by one shell (one
    process group, stopped together)."""
    common = ["-Q", "celery,digests", "--loglevel", "INFO"]
    common += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    celery = [PYTHON, "-m", "celery", "-A", "bench.digest", "worker"]
    if args.threads <= 1:
        return [*celery, *common, "--pool", "prefork", "--concurrency", str(args.concurrency)]
    # The Procfile's digest process: its malloc settings (README, "Production") too.
    malloc = ["env", "MALLOC_ARENA_MAX=2", "MALLOC_MMAP_THRESHOLD_=131072"]
    each = [*malloc, *celery, *common, "--pool", "threads", "--concurrency", str(args.threads)]
    script = " ".join(
        shlex.join([*each, "--hostname", f"bench{number}@%h"]) + " &"
        for number in range(args.concurrency)
    )
    return ["sh", "-c", f"{script} wait"]


def stop_worker(worker: subprocess.Popen) -> None:
    """SIGTERM to the worker's process group; SIGKILL if it has not gone in 20 s."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
    try:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
    except ProcessLookupError:
        pass


def setup(args: argparse.Namespace) -> None:
    """Environment, database (created and migrated once) and Django, for this process."""
    env = environment(args)
    env["BENCH_COUNT_QUERIES"] = "1"
    os.environ.update(env)
    ensure_database(args.database_url)
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env={**os.environ},
        check=True,
    )

    import django

    django.setup()


def profile_planner(args: argparse.Namespace, *, name: str) -> None:
    """The planner of one edition alone, in this process, under pyinstrument; nothing is sent.

    Writes bench/results/<name>.txt (the call tree) and prints the planner's time.
    """
    from pyinstrument import Profiler

    setup(args)
    from subscriptions.digest import plan

    seed(args)
    profiler = Profiler(interval=0.005)
    began = time.monotonic()
    with profiler:
        [result] = plan.digest_plan(send_now=True, enqueue=False)
    seconds = time.monotonic() - began
    print(
        f"planned {result.queued} readers in {len(result.batch_ids)} batches in {seconds:.1f} s"
        f" (peak {peak_rss_mb(os.getpid()):.0f} MB)"
    )
    from bench.common import RESULTS

    out = RESULTS / f"{name}.txt"
    out.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    print(f"wrote {out.relative_to(ROOT)}")


def start_stand_in(args: argparse.Namespace) -> subprocess.Popen:
    """bench/fake_esp.py in its own process, counting only (no message kept)."""
    stand_in = subprocess.Popen(
        [
            PYTHON,
            str(ROOT / "bench" / "fake_esp.py"),
            "--port",
            str(args.esp_port),
            "--latency",
            str(args.esp_latency),
            "--no-keep",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            stand_in_stats(args)
            return stand_in
        except OSError:
            if stand_in.poll() is not None or time.monotonic() > deadline:
                sys.exit("the ESP stand-in did not start")
            time.sleep(0.2)


def stand_in_stats(args: argparse.Namespace) -> dict:
    from urllib.request import urlopen

    with urlopen(f"http://127.0.0.1:{args.esp_port}/_stand_in/stats", timeout=5) as response:
        return json.loads(response.read())


def run(args: argparse.Namespace) -> dict:
    """One edition to args.readers subscribers in its own process; returns its figures."""
    setup(args)
    env = environment(args)
    import redis
    from django.db import connection

    from newsroom.celery import app
    from subscriptions.models import Delivery, DeliveryBatch, Edition

    seed(args)
    # A session's row counts reach PostgreSQL's statistics when it ends (or idle up to
    # 10 s later): closed here, the seed's rows are counted before the run, not in it.
    connection.close()
    esp = redis.Redis.from_url(args.redis_url)
    esp.delete(env["BENCH_ESP_KEY"], STATS_KEY)
    app.control.purge()
    stand_in = start_stand_in(args) if args.esp != "inprocess" else None

    def at_esp() -> tuple[int, int | None]:
        """Recipients the ESP took, and its API calls (counted by the HTTP stand-in only)."""
        if stand_in is None:
            return int(esp.get(env["BENCH_ESP_KEY"]) or 0), None
        stats = stand_in_stats(args)
        return stats["recipients"], stats["calls"]

    log = ROOT / "test-artifacts" / "bench-digest-worker.log"
    log.parent.mkdir(exist_ok=True)
    worker = subprocess.Popen(
        worker_command(args),
        cwd=ROOT,
        env={**os.environ},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    try:
        deadline = time.monotonic() + 60
        workers = args.concurrency if args.threads > 1 else 1
        while log.read_text(errors="replace").count("ready.") < workers:
            if worker.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"worker did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        baseline = {pid: peak_rss_mb(pid) for pid in process_group(worker.pid)}
        rows_before = rows_written()

        load_before = load_average()
        print(f"load average before the run: {load_before}", flush=True)
        machine_before, postgres_before = machine_cpu(), postgres_cpu()
        started = time.monotonic()
        # What beat sends every five minutes; by name, as every commit's task is called.
        app.send_task("subscriptions.digest_plan")
        settled_states = [
            Delivery.State.SENT,
            Delivery.State.SUPPRESSED,
            Delivery.State.FAILED,
            Delivery.State.IN_DOUBT,
        ]
        planned_at = None
        shown = started
        progress, moved = None, started
        while True:
            time.sleep(1 if args.readers > 100_000 else 0.5)
            counts = readers_by_state()
            total = sum(counts.values())
            settled = sum(counts.get(state, 0) for state in settled_states)
            if planned_at is None and total == args.readers:
                planned_at = time.monotonic() - started
            taken = at_esp()[0]
            line = f"  {settled:>7}/{args.readers} settled, {taken:>7} at the ESP"
            # A batch the ESP refuses is retried minutes later: say so instead of waiting.
            if (total, settled, taken) != progress:
                progress, moved = (total, settled, taken), time.monotonic()
            elif time.monotonic() - moved > 300:
                tail = log.read_text(errors="replace")[-3000:]
                sys.exit(f"\nno progress for 5 minutes ({line.strip()}):\n{tail}")
            if sys.stdout.isatty():
                print("\r" + line, end="", flush=True)
            elif time.monotonic() - shown > 15:
                print(f"{line} after {time.monotonic() - started:.0f} s", flush=True)
                shown = time.monotonic()
            if settled == args.readers:
                break
            if time.monotonic() - started > 1800:
                sys.exit("\ngave up after 30 minutes")
            if worker.poll() is not None:
                sys.exit(f"\nworker stopped:\n{log.read_text()[-3000:]}")
        elapsed = time.monotonic() - started
        machine_after = machine_cpu()
        machine_busy = machine_after[0] - machine_before[0]
        machine_idle = machine_after[1] - machine_before[1]
        postgres_spent = postgres_cpu() - postgres_before
        print()
        peaks = {pid: peak_rss_mb(pid) for pid in process_group(worker.pid)}
        # Where the two cores went: the worker's processes and the stand-in's, from
        # their start (a worker process's idle start-up included).
        worker_cpu = sum(cpu_seconds(pid) for pid in process_group(worker.pid))
        stand_in_cpu = cpu_seconds(stand_in.pid) if stand_in is not None else None
        delivered, calls = at_esp()
    finally:
        stop_worker(worker)
        if stand_in is not None:
            stand_in.terminate()
            stand_in.wait(10)
    # The worker's connections are closed: their statistics have reached the server.
    time.sleep(1.5)
    written = {
        table: n - rows_before.get(table, 0)
        for table, n in rows_written().items()
        if n - rows_before.get(table, 0)
    }

    edition = Edition.objects.get(newsletter__slug="mideast-daily")
    batches = DeliveryBatch.objects.filter(edition=edition).count()
    groups = DeliveryBatch.objects.filter(edition=edition).values("group_key").distinct().count()
    stats = [json.loads(item) for item in esp.lrange(STATS_KEY, 0, -1)]
    planner = [item for item in stats if item["task"] == "subscriptions.digest_plan"]
    batch_queries = sorted(
        item["queries"] / item["batches"]
        for item in stats
        if item["task"] in ("subscriptions.digest_send_batch", "subscriptions.digest_send_batches")
    )
    worker_peaks = {pid: mb for pid, mb in peaks.items() if pid != worker.pid}
    result = {
        "commit": commit(ROOT),
        "load_average_before": load_before,
        "readers": args.readers,
        "followed_sets": args.sets,
        "distinct_emails": groups,
        "batches": batches,
        "batch_size": args.batch_size,
        "esp_latency_ms": args.esp_latency * 1000,
        "concurrency": args.concurrency,
        "threads": args.threads,
        "esp": args.esp,
        "recipients_at_esp": delivered,
        "esp_calls": calls,
        "states": readers_by_state(),
        "rows_written": sum(written.values()),
        "rows_written_per_million": round(sum(written.values()) * 1_000_000 / args.readers),
        "rows_written_by_table": written,
        "delivery_rows": Delivery.objects.count(),
        "planned_all_seconds": planned_at,
        "planner_task_seconds": sum(item["seconds"] for item in planner) if planner else None,
        "seconds": elapsed,
        "recipients_per_second": args.readers / elapsed,
        "worker_cpu_seconds": worker_cpu,
        "worker_cpu_us_per_recipient": worker_cpu / args.readers * 1e6,
        "stand_in_cpu_seconds": stand_in_cpu,
        "peak_worker_mb": max(worker_peaks.values()) if worker_peaks else None,
        "peak_main_process_mb": peaks.get(worker.pid),
        "peak_planner_mb": max(item["peak_mb"] for item in planner) if planner else None,
        "worker_mb_at_start": max(baseline.values()),
        "tasks": len(batch_queries),
        "queries_per_batch": batch_queries[len(batch_queries) // 2] if batch_queries else None,
        "queries_per_batch_max": batch_queries[-1] if batch_queries else None,
        # The machine's cores over the run (every process, the other engineers' too), and
        # every PostgreSQL backend's (this run's connections and any other database's).
        "machine_busy_cpu_seconds": machine_busy,
        "machine_idle_cpu_seconds": machine_idle,
        "postgres_cpu_seconds": postgres_spent,
        **send_stages(stats),
    }
    for key, value in result.items():
        print(f"{key:<24} {round(value, 1) if isinstance(value, float) else value}")
    return result


def machine_cpu() -> tuple[float, float]:
    """All cores' busy and idle seconds so far (/proc/stat's first line; idle with iowait)."""
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK"), idle / os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> float:
    """The CPU seconds of every process named postgres so far (the server's, any database),
    with those of its ended backends (the postmaster's reaped children, cutime and cstime)."""
    spent = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            command, fields = stat.read_text().split(" (", 1)[1].split(") ", 1)
        except (FileNotFoundError, IndexError, ValueError):
            continue
        if command == "postgres":
            ticks = [int(n) for n in fields.split()[11:15]]
            spent += (ticks[0] + ticks[1] + ticks[2] + ticks[3]) / os.sysconf("SC_CLK_TCK")
    return spent


def send_stages(stats: list[dict]) -> dict:
    """Where the send tasks' time went, per batch: each stage's wall and CPU ms, the tasks'
    own, and the seconds the worker processes sat with no task (between two of theirs)."""
    sends = [
        item
        for item in stats
        if item["task"] in ("subscriptions.digest_send_batch", "subscriptions.digest_send_batches")
    ]
    if not sends or "stages" not in sends[0]:
        return {}
    n = sum(item["batches"] for item in sends)  # per batch, a pack's shared among its own
    stages: dict[str, list[float]] = {}
    for item in sends:
        for name, spent in item["stages"].items():
            total = stages.setdefault(name, [0.0] * len(spent))
            for i, seconds in enumerate(spent):
                total[i] += seconds
    return {
        "send_tasks": len(sends),
        "send_batches": n,
        "send_task_ms": round(sum(item["seconds"] for item in sends) / n * 1000, 1),
        "send_task_cpu_ms": round(sum(item["cpu_seconds"] for item in sends) / n * 1000, 1),
        "send_task_run_queue_ms": round(
            sum(item.get("run_queue_seconds", 0.0) for item in sends) / n * 1000, 1
        ),
        "send_stage_ms_wall_cpu_run_queue": {
            name: [round(seconds / n * 1000, 1) for seconds in spent]
            for name, spent in stages.items()
        },
        "send_tasks_seconds_by_pid": _by_pid(sends, "seconds"),
        "idle_between_tasks_seconds_by_pid": _by_pid(stats, "idle_before"),
    }


def _by_pid(stats: list[dict], key: str) -> dict[int, float]:
    total: dict[int, float] = {}
    for item in stats:
        total[item["pid"]] = total.get(item["pid"], 0.0) + (item.get(key) or 0.0)
    return {pid: round(seconds, 1) for pid, seconds in total.items()}


def rows_written() -> dict[str, int]:
    """Rows inserted plus rows updated so far, per table (PostgreSQL's own counters)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, n_tup_ins + n_tup_upd FROM pg_stat_user_tables")
        return dict(cursor.fetchall())


# This tree's measuring scripts, copied into the other commit's checkout by --against.
MEASURING = ("digest.py", "common.py", "fake_esp.py", "inprocess_esp.py")


def against_tree(ref: str, where: Path) -> tuple[Path, Path]:
    """A checkout of `ref` under `where` with its own virtualenv; returns it and its Python.

    The virtualenv holds `ref`'s project (editable) and the locked requirements: `ref`'s
    own requirements.txt, or this tree's when `ref` predates the lock, so both are
    measured on the same libraries. It is made once and kept for the next run.
    """
    found = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if found.returncode:
        sys.exit(f"--against: no commit {ref!r} in this repository")
    sha = found.stdout.strip()
    tree = where / sha[:12]
    if not (tree / ".git").exists():
        where.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], check=True)
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), sha], check=True
        )
    for name in MEASURING:
        shutil.copy2(ROOT / "bench" / name, tree / "bench" / name)

    lock = tree / "requirements.txt"
    if not lock.exists():
        lock = ROOT / "requirements.txt"
    venv = tree / ".venv"
    python = venv / "bin" / "python"
    stamp = venv / "bench-installed"
    wanted = f"{lock}\n{hashlib.sha256(lock.read_bytes()).hexdigest()}\n"
    if not stamp.exists() or stamp.read_text() != wanted:
        print(f"--against: a virtualenv for {sha[:7]} in {venv} ...", flush=True)
        if not python.exists():
            interpreter = os.environ.get("PYTHON", "python3")
            subprocess.run([interpreter, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "--require-hashes", "-r", str(lock)], check=True)
        subprocess.run([*pip, "--no-deps", "--no-build-isolation", "-e", str(tree)], check=True)
        subprocess.run([str(python), "-m", "pip", "check"], check=True)
        stamp.write_text(wanted)
    return tree, python


@contextmanager
def holding(lock: Path | None):
    """flock(1)'s lock on `lock` (the same kind of lock) for the block, if a file is given."""
    if lock is None:
        yield
        return
    with lock.open("a") as handle:
        print(f"waiting for {lock} ...", flush=True)
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_options(args: argparse.Namespace) -> list[str]:
    """This run's options that every measurement it starts in another process takes."""
    return [
        "--sets",
        str(args.sets),
        "--batch-size",
        str(args.batch_size),
        "--concurrency",
        str(args.concurrency),
        "--threads",
        str(args.threads),
        "--esp-latency",
        str(args.esp_latency),
        "--esp",
        args.esp,
        "--esp-port",
        str(args.esp_port),
        "--redis-url",
        args.redis_url,
        "--broker-url",
        args.broker_url,
    ]


def _run_child(command: list[str], *, tree: Path, failed: str) -> None:
    """Run one measurement of this script in its own process, from `tree`; exit if it fails.

    Ctrl-C (or a signal stop_on_signals turns into it) is passed on as SIGTERM, and the
    child is given the time to stop its own worker before this process goes on unwinding.
    """
    child = subprocess.Popen(
        command,
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        preexec_fn=_die_with_parent,
    )
    try:
        if child.wait():
            sys.exit(f"{failed} failed ({child.returncode})")
    except KeyboardInterrupt:
        child.send_signal(signal.SIGTERM)
        child.wait(60)
        raise


def measure(args: argparse.Namespace, tree: Path, python: Path, database_url: str) -> dict:
    """One run of this script's measurement in `tree` with `python`, in its own process."""
    out = Path(tempfile.mkstemp(prefix="bench-digest-", suffix=".json")[1])
    command = [
        str(python),
        str(tree / "bench" / "digest.py"),
        "--readers",
        str(args.readers),
        "--scale",
        str(args.scale),
        *run_options(args),
        "--database-url",
        database_url,
        "--json-out",
        str(out),
    ]
    try:
        with holding(args.lock):
            _run_child(command, tree=tree, failed=f"the measurement in {tree}")
        return json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)


def compare_against(args: argparse.Namespace) -> None:
    """The same measurement on `args.against` (first) and on this tree, one after the other."""
    from bench.common import write_result

    tree, python = against_tree(args.against, args.against_dir)
    theirs_db = f"{args.database_url}_{tree.name[:7]}"
    print(f"--- {args.against} in {tree}, database {theirs_db.rsplit('/', 1)[1]}", flush=True)
    theirs = measure(args, tree, python, theirs_db)
    print(f"--- this tree ({ROOT}), database {args.database_url.rsplit('/', 1)[1]}", flush=True)
    ours = measure(args, ROOT, Path(PYTHON), args.database_url)
    ratio = ours["recipients_per_second"] / theirs["recipients_per_second"]
    print()
    print(
        f"{'':<22} {'seconds':>8} {'recipients/s':>13} {'worker peak MB':>15}"
        f" {'worker CPU s':>13} {'stand-in CPU s':>15}  load before"
    )
    for side in (theirs, ours):
        print(
            f"{side['commit']:<22} {side['seconds']:>8.1f} {side['recipients_per_second']:>13,.0f}"
            f" {side['peak_worker_mb'] or 0:>15.0f} {side['worker_cpu_seconds']:>13.1f}"
            f" {side['stand_in_cpu_seconds'] or 0:>15.1f}  {side['load_average_before']}"
        )
    print(f"ratio (this tree / {theirs['commit']}): {ratio:.2f}x")
    write_result(
        f"digest-x{args.scale}{suffix(args)}-against-{tree.name[:7]}",
        {"ratio": ratio, "theirs": theirs, "ours": ours},
    )


def growth(args: argparse.Namespace) -> None:
    """The edition at 10,000, 100,000 (and 1,000,000) readers; each scale in a fresh
    interpreter (Django is set up once per database), with this run's options."""
    from bench.common import RESULTS, write_result

    rows = []
    for scale in (1, 10) if args.quick else (1, 10, 100):
        command = [
            PYTHON,
            str(Path(__file__)),
            "--scale",
            str(scale),
            *run_options(args),
        ]
        if args.database_url:
            command += ["--database-url", f"{args.database_url}_x{scale}"]
        print(f"--- digest at {scale}x ({10_000 * scale:,} subscribers)", flush=True)
        _run_child(command, tree=ROOT, failed=f"digest at {scale}x")
        result = json.loads((RESULTS / f"digest-x{scale}{suffix(args)}.json").read_text())
        rows.append(
            {
                "scale": scale,
                "rows": result["readers"],
                # Per recipient, so that a flat line on the plot means a flat cost.
                "seconds": result["seconds"] / result["readers"],
                "peak_mb": result["peak_worker_mb"],
                "label": f"digest, per recipient ({args.esp}, {args.sets} sets)",
                "subscribers": result["readers"],
                "edition_seconds": result["seconds"],
                "recipients_per_second": result["recipients_per_second"],
                "peak_worker_mb": result["peak_worker_mb"],
                "peak_planner_mb": result["peak_planner_mb"],
                "queries_per_batch": result["queries_per_batch"],
                "load_average_before": result.get("load_average_before"),
            }
        )
    if not args.quick:
        (RESULTS / "digest-growth.json").write_text(json.dumps(rows, indent=2) + "\n")
        print(f"wrote {(RESULTS / 'digest-growth.json').relative_to(ROOT)}")
    else:
        write_result("digest-quick", {"rows": rows})


def suffix(args: argparse.Namespace) -> str:
    """What tells a run's results file apart from the default run's (50 sets, in-process)."""
    sets = "" if args.sets == 50 else f"-sets{args.sets}"
    threads = "" if args.threads <= 1 else f"-threads{args.threads}"
    return sets + ("" if args.esp == "inprocess" else f"-{args.esp}") + threads


def main() -> None:
    args = parse_args()
    # Another commit is compared through anymail's real Mailgun backend over HTTP, the
    # issue's measure, which every commit sends through: 4c1c6fa's two tags and merge
    # data without a template are refused by anymail's Postmark backend.
    args.esp = args.esp or ("mailgun" if args.against else "inprocess")
    stop_on_signals()
    if args.growth or args.quick:
        growth(args)
        return
    args.readers = args.readers or 10_000 * args.scale
    args.database_url = (
        args.database_url
        or f"postgres://postgres@127.0.0.1:5432/newsroom_bench_digest_x{args.scale}"
    )
    if args.against:
        compare_against(args)
        return
    if args.profile_planner:
        profile_planner(args, name=f"digest-planner-profile-x{args.scale}{suffix(args)}")
        return
    result = run(args)
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2, default=str) + "\n")
        return
    from bench.common import write_result

    write_result(f"digest-x{args.scale}{suffix(args)}", result)


if __name__ == "__main__":
    main()
