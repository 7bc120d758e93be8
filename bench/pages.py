"""Pages under load: the article, home and category pages against the framework's floor.

Runs gunicorn with the production settings on PostgreSQL and Redis, then wrk on
loopback against each URL, cached and uncached, and against a bare Django view on the
same gunicorn configuration in the same run. Prints requests per second, p99 latency,
errors and the ratio to the floor.

    python bench/pages.py                    # 1x data, 10 s per URL
    python bench/pages.py --scale 10 --seconds 5

Needs PostgreSQL and Redis (the defaults below are this machine's) and `wrk`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
RESULTS = ROOT / "bench" / "results"


def production_env(*, database_url: str, redis_url: str, page_cache_seconds: int) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "newsroom.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SITE_URL": "https://127.0.0.1",
        "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
        "STRIPE_SECRET_KEY": "sk_test_bench",
        "STRIPE_WEBHOOK_SECRET": "whsec_bench",
        "ANYMAIL_WEBHOOK_SECRET": "bench:bench",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "PAGE_CACHE_SECONDS": str(page_cache_seconds),
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }


def ensure_database(database_url: str) -> None:
    name = database_url.rsplit("/", 1)[1]
    server = database_url.rsplit("/", 1)[0] + "/postgres"
    result = subprocess.run(["createdb", "--maintenance-db", server, name], capture_output=True, text=True)
    if result.returncode and "already exists" not in result.stderr:
        sys.exit(result.stderr)


def prepare_data(env: dict[str, str], scale: int) -> dict[str, str]:
    """Migrate, load the demo newsroom, add `scale` x 100 articles; return URLs to hit."""
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([PYTHON, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([PYTHON, "manage.py", "seed_demo"], cwd=ROOT, env=env, check=True, capture_output=True)
    script = f"""
import django; django.setup()
from datetime import timedelta
from django.utils import timezone
from newsroom.models import Article, Author, Category
want = {scale} * 100
have = Article.objects.filter(slug__startswith="bench-").count()
categories = list(Category.objects.all())
author = Author.objects.first()
body = "".join(f"<p>Paragraph {{i}} of a long report on water, power and the cities.</p>" for i in range(12))
now = timezone.now()
new = [
    Article(headline=f"Bench report {{n}}", slug=f"bench-{{n}}", dek="A report for measuring.",
            body=body, category=categories[n % len(categories)], status="published",
            published_at=now - timedelta(minutes=n + 5))
    for n in range(have, want)
]
Article.objects.bulk_create(new, batch_size=1000)
for article in Article.objects.filter(slug__startswith="bench-", authors=None).iterator():
    article.authors.add(author)
article = Article.objects.published().order_by("-published_at").first()
print(article.get_absolute_url(), article.category.get_absolute_url())
"""
    out = subprocess.run(
        [PYTHON, "-c", script], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout.split()
    return {"article": out[-2], "home": "/", "category": out[-1]}


def start_gunicorn(env: dict[str, str], app: str, port: int, workers: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            PYTHON, "-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers), "--log-level", "warning",
        ],
        cwd=ROOT, env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process
        except urllib.error.HTTPError:
            return process  # it answers (the floor has no /healthz)
        except OSError:
            time.sleep(0.3)
    process.terminate()
    sys.exit(f"gunicorn {app} did not start on port {port}")


def wrk(url: str, *, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency",
            "-H", "X-Forwarded-Proto: https", url,
        ],
        capture_output=True, text=True, check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    factor = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": rps,
        "p99_ms": float(p99.group(1)) * factor,
        "errors": (int(non2xx.group(1)) if non2xx else 0)
        + (sum(int(g) for g in errors.groups()) if errors else 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1, help="hundreds of articles (1, 10, 100)")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/newsroom_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")

    ensure_database(args.database_url)
    cached_env = production_env(
        database_url=args.database_url, redis_url=args.redis_url, page_cache_seconds=300
    )
    uncached_env = {**cached_env, "PAGE_CACHE_SECONDS": "0"}
    urls = prepare_data(cached_env, args.scale)
    subprocess.run(["redis-cli", "-u", args.redis_url, "FLUSHDB"], check=True, capture_output=True)

    rows: list[tuple[str, dict[str, float]]] = []
    servers = []
    try:
        servers.append(start_gunicorn(cached_env, "bench.floor_wsgi:application", 8801, args.workers))
        servers.append(start_gunicorn(cached_env, "newsroom.wsgi:application", 8802, args.workers))
        servers.append(start_gunicorn(uncached_env, "newsroom.wsgi:application", 8803, args.workers))
        measure = {"seconds": args.seconds, "connections": args.connections}
        rows.append(("floor (bare view)", wrk("http://127.0.0.1:8801/floor", **measure)))
        for name, path in urls.items():
            rows.append((f"{name}, cached", wrk(f"http://127.0.0.1:8802{path}", **measure)))
        for name, path in urls.items():
            rows.append((f"{name}, uncached", wrk(f"http://127.0.0.1:8803{path}", **measure)))
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)

    floor = rows[0][1]["rps"]
    print(f"\npages at scale {args.scale} ({args.scale * 100} extra articles), "
          f"{args.workers} gunicorn workers, wrk {args.connections} connections x {args.seconds}s")
    print(f"{'page':24} {'req/s':>9} {'of floor':>9} {'p99 ms':>8} {'errors':>7}")
    for name, row in rows:
        print(f"{name:24} {row['rps']:9.0f} {row['rps'] / floor:9.0%} {row['p99_ms']:8.1f} {row['errors']:7.0f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"pages-x{args.scale}.json").write_text(
        json.dumps({"scale": args.scale, "rows": dict(rows)}, indent=2)
    )


if __name__ == "__main__":
    main()
