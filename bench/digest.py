"""The digest end to end: one edition to 100,000 subscribers with 50 distinct followed sets.

Starts a real Celery worker (PostgreSQL, Redis broker), asks it to run the beat planner
task, and waits until every delivery is settled while a local fake ESP (bench/fake_esp.py,
an anymail backend) counts recipients. Prints recipients per second end to end (planner
included) and the worker processes' peak memory (VmHWM).

    python bench/digest.py                          # 100,000 readers, 50 sets
    python bench/digest.py --readers 20000 --concurrency 2 --esp-latency 0.1

Needs PostgreSQL and Redis (the defaults below are this machine's).
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readers", type=int, default=100_000)
    parser.add_argument("--sets", type=int, default=50, help="distinct followed sets")
    parser.add_argument("--batch-size", type=int, default=500, help="ESP_BATCH_SIZE")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes (prefork)")
    parser.add_argument("--esp-latency", type=float, default=0.05, help="seconds per ESP call")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/newsroom_h4_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/8")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/9")
    return parser.parse_args()


def environment(args: argparse.Namespace) -> dict[str, str]:
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
        "EMAIL_BACKEND": "bench.fake_esp.EmailBackend",
        "BENCH_ESP_LATENCY": str(args.esp_latency),
        "BENCH_ESP_KEY": "bench:digest:esp",
        "BENCH_ESP_REDIS_URL": args.redis_url,
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }


def ensure_database(database_url: str) -> None:
    name = database_url.rsplit("/", 1)[1]
    server = database_url.rsplit("/", 1)[0] + "/postgres"
    result = subprocess.run(["createdb", "--maintenance-db", server, name], capture_output=True, text=True)
    if result.returncode and "already exists" not in result.stderr:
        sys.exit(result.stderr)


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

    from django.utils import timezone

    from newsroom.models import Article, Author, Category, Topic
    from subscriptions.models import (
        Delivery,
        DeliveryBatch,
        Edition,
        Follow,
        Newsletter,
        Subscriber,
        Subscription,
    )

    newsletter, _ = Newsletter.objects.get_or_create(
        slug="mideast-daily", defaults={"name": "Mideast Daily", "top_stories_count": 3, "section_cap": 3}
    )
    categories = [
        Category.objects.get_or_create(slug=f"bench-section-{n}", defaults={"name": f"Bench section {n}", "order": n})[0]
        for n in range(10)
    ]
    topics = [
        Topic.objects.get_or_create(slug=f"bench-topic-{n}", defaults={"name": f"Bench topic {n}"})[0]
        for n in range(8)
    ]
    author, _ = Author.objects.get_or_create(slug="bench-desk", defaults={"name": "Bench Desk"})

    # A fresh day's reporting: 60 articles across the sections, 3 of them ranked.
    now = timezone.now()
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

    have = Subscriber.objects.filter(email__endswith="@readers.example").count()
    if have != args.readers or Follow.objects.filter(subscriber__email__endswith="@readers.example").count() == 0:
        print(f"seeding {args.readers} subscribers ...", flush=True)
        Subscriber.objects.filter(email__endswith="@readers.example").delete()
        sets = followed_sets(categories, topics, args.sets)
        confirmed = now - timedelta(days=30)
        for start in range(0, args.readers, 10_000):
            subscribers = Subscriber.objects.bulk_create(
                [
                    Subscriber(email=f"bench{n}@readers.example", confirmed_at=confirmed, time_zone="Asia/Jerusalem")
                    for n in range(start, min(start + 10_000, args.readers))
                ]
            )
            Subscription.objects.bulk_create(
                [
                    Subscription(subscriber=s, newsletter=newsletter, status=Subscription.Status.ACTIVE, confirmed_at=confirmed)
                    for s in subscribers
                ]
            )
            follows = []
            for offset, subscriber in enumerate(subscribers):
                for position, (kind, item) in enumerate(sets[(start + offset) % len(sets)]):
                    follows.append(
                        Follow(
                            subscriber=subscriber,
                            category=item if kind == "c" else None,
                            topic=item if kind == "t" else None,
                            position=position,
                        )
                    )
            Follow.objects.bulk_create(follows)
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


def main() -> None:
    args = parse_args()
    env = environment(args)
    os.environ.update(env)
    ensure_database(args.database_url)
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env={**os.environ}, check=True)

    import django

    django.setup()
    import redis
    from django.db.models import Count

    from newsroom.celery import app
    from subscriptions.digest_tasks import digest_plan_task
    from subscriptions.models import Delivery, DeliveryBatch, Edition

    seed(args)
    esp = redis.Redis.from_url(args.redis_url)
    esp.delete(env["BENCH_ESP_KEY"])
    app.control.purge()

    log = ROOT / "test-artifacts" / "bench-digest-worker.log"
    log.parent.mkdir(exist_ok=True)
    worker = subprocess.Popen(
        [
            PYTHON, "-m", "celery", "-A", "newsroom", "worker", "-Q", "celery,digests",
            "--pool", "prefork", "--concurrency", str(args.concurrency), "--loglevel", "INFO",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ],
        cwd=ROOT,
        env={**os.environ},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while "ready." not in log.read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"worker did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        baseline = {pid: peak_rss_mb(pid) for pid in process_group(worker.pid)}

        started = time.monotonic()
        digest_plan_task.delay()  # what beat sends every five minutes
        settled_states = [Delivery.State.SENT, Delivery.State.SUPPRESSED, Delivery.State.FAILED, Delivery.State.IN_DOUBT]
        planned_at = None
        while True:
            time.sleep(0.5)
            counts = dict(Delivery.objects.order_by().values_list("state").annotate(n=Count("id")))
            total = sum(counts.values())
            settled = sum(counts.get(state, 0) for state in settled_states)
            if planned_at is None and total == args.readers:
                planned_at = time.monotonic() - started
            print(f"\r  {settled:>7}/{args.readers} settled, {int(esp.get(env['BENCH_ESP_KEY']) or 0):>7} at the ESP", end="", flush=True)
            if settled == args.readers:
                break
            if time.monotonic() - started > 1800:
                sys.exit("\ngave up after 30 minutes")
        elapsed = time.monotonic() - started
        print()
        peaks = {pid: peak_rss_mb(pid) for pid in process_group(worker.pid)}
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)

    edition = Edition.objects.get(newsletter__slug="mideast-daily")
    delivered = int(esp.get(env["BENCH_ESP_KEY"]) or 0)
    batches = DeliveryBatch.objects.filter(edition=edition).count()
    groups = DeliveryBatch.objects.filter(edition=edition).values("group_key").distinct().count()
    print(f"readers              {args.readers}")
    print(f"distinct emails      {groups} followed sets")
    print(f"batches              {batches} (ESP_BATCH_SIZE {args.batch_size})")
    print(f"fake ESP latency     {args.esp_latency * 1000:.0f} ms per call")
    print(f"worker               prefork, {args.concurrency} processes")
    print(f"recipients at ESP    {delivered}")
    print(f"states               {dict(Delivery.objects.order_by().values_list('state').annotate(n=Count('id')))}")
    print(f"planned all in       {planned_at:.1f} s" if planned_at else "planned all in       -")
    print(f"end to end           {elapsed:.1f} s")
    print(f"recipients / second  {args.readers / elapsed:,.0f}")
    print(
        "peak RSS (MB)        "
        + ", ".join(f"{pid}: {mb:.0f}" for pid, mb in sorted(peaks.items()))
        + f"  (max {max(peaks.values()):.0f}; at start {max(baseline.values()):.0f})"
    )


if __name__ == "__main__":
    main()
