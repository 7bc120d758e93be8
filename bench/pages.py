"""Pages under load: the article, home and category pages against the framework's floor.

Runs gunicorn with the production settings on PostgreSQL and Redis, then wrk on
loopback against each URL, cached and uncached, and against a bare Django view on the
same gunicorn configuration in the same run; and a conditional GET of the cached article
(its ETag in If-None-Match, answered 304). Prints requests per second, p50 and p99
latency, errors, the share of the floor and issue 16's target for that share.

    python bench/pages.py                    # 1,000 articles, 10 s per URL
    python bench/pages.py --scale 10 --seconds 5
    git archive 088f2d1 | tar -x -C /tmp/before   # another commit's tree, then:
    python bench/pages.py --before /tmp/before --rounds 3

With --before, the cached article and its 304 are also served by that tree's code
(its own gunicorn, same database, its own cache key prefix) and measured alternately
with this tree's, round after round, so the ratio of the two comes from one run.

Needs PostgreSQL and Redis (the defaults below are this machine's) and `wrk`.
"""

from __future__ import annotations

import argparse
import http.client
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    PYTHON,
    ROOT,
    ensure_database,
    production_env,
    start_gunicorn,
    stop,
    write_result,
    wrk,
)

ARTICLES_PER_SCALE = 1000
# Issue 16's targets, as shares of the floor's requests per second.
TARGETS = {
    "article, cached": 0.85,
    "article, 304": 0.90,
    "article, uncached": 0.30,
    "home, uncached": 0.20,
    "category, uncached": 0.20,
}
FORWARDED = {"X-Forwarded-Proto": "https"}


def etag_answered_304(port: int, path: str) -> str:
    """The page's ETag, once a conditional GET with it has been answered 304."""
    server = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    server.request("GET", path, headers=FORWARDED)
    first = server.getresponse()
    first.read()
    etag = first.headers["ETag"]
    server.request("GET", path, headers={**FORWARDED, "If-None-Match": etag})
    again = server.getresponse()
    again.read()
    server.close()
    if again.status != 304:
        sys.exit(f"{path} on port {port} answered {again.status} to its own ETag, not 304")
    return etag


def conditional_get_script(etag: str, path: Path) -> str:
    """A wrk script at `path` sending If-None-Match: `etag` with every request."""
    path.write_text(f"wrk.headers[\"If-None-Match\"] = '{etag}'\n")
    return str(path)


def prepare_data(env: dict[str, str], scale: int) -> dict[str, str]:
    """Migrate, load the demo newsroom, add `scale` x 1,000 articles; return URLs to hit."""
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    subprocess.run(
        [PYTHON, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    subprocess.run(
        [PYTHON, "manage.py", "seed_demo"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    script = f"""
import django; django.setup()
from datetime import timedelta
from django.utils import timezone
from newsroom.models import Article, Author, Category
want = {scale} * {ARTICLES_PER_SCALE}
have = Article.objects.filter(slug__startswith="bench-").count()
categories = list(Category.objects.all())
author = Author.objects.first()
body = "".join(
    f"<p>Paragraph {{i}} of a long report on water, power and the cities.</p>" for i in range(12)
)
now = timezone.now()
new = [
    Article(headline=f"Bench report {{n}}", slug=f"bench-{{n}}", dek="A report for measuring.",
            body=body, category=categories[n % len(categories)], status="published",
            published_at=now - timedelta(minutes=n + 5))
    for n in range(have, want)
]
Article.objects.bulk_create(new, batch_size=1000)
Through = Article.authors.through
missing = Article.objects.filter(slug__startswith="bench-", authors=None).values_list(
    "pk", flat=True
)
Through.objects.bulk_create(
    [Through(article_id=pk, author_id=author.pk) for pk in missing.iterator()], batch_size=5000
)
article = Article.objects.published().order_by("-published_at").first()
print(article.get_absolute_url(), article.category.get_absolute_url())
"""
    out = subprocess.run(
        [PYTHON, "-c", script], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout.split()
    # Fresh statistics for the planner, as autovacuum would give a live site after a
    # bulk load (without them the category page's query sorted every article of its category).
    subprocess.run(
        ["psql", env["DATABASE_URL"], "-qc", "VACUUM ANALYZE"], check=True, capture_output=True
    )
    return {"article": out[-2], "home": "/", "category": out[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1, help="thousands of articles (1, 10, 100)")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--database-url", help="default: newsroom_bench, or newsroom_bench_x10 for --scale 10"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument(
        "--before",
        type=Path,
        help="another commit's source tree: its cached article and 304 measured alternately",
    )
    parser.add_argument("--rounds", type=int, default=2, help="alternations with --before")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")

    if not args.database_url:
        suffix = "" if args.scale == 1 else f"_x{args.scale}"
        args.database_url = f"postgres://postgres@127.0.0.1:5432/newsroom_bench{suffix}"
    ensure_database(args.database_url)
    cached_env = production_env(
        database_url=args.database_url, redis_url=args.redis_url, page_cache_seconds=300
    )
    # Its own key prefix: it must not read the pages the cached server stored.
    uncached_env = {**cached_env, "PAGE_CACHE_SECONDS": "0", "CACHE_KEY_PREFIX": "bench-uncached"}
    urls = prepare_data(cached_env, args.scale)
    subprocess.run(["redis-cli", "-u", args.redis_url, "FLUSHDB"], check=True, capture_output=True)

    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    rows: list[tuple[str, dict]] = []
    compared: list[tuple[str, dict]] = []
    servers = []
    try:
        servers.append(
            start_gunicorn(cached_env, "bench.floor_wsgi:application", 8801, args.workers)
        )
        servers.append(start_gunicorn(cached_env, "newsroom.wsgi:application", 8802, args.workers))
        servers.append(
            start_gunicorn(uncached_env, "newsroom.wsgi:application", 8803, args.workers)
        )
        if args.before:
            before_env = {**cached_env, "CACHE_KEY_PREFIX": "bench-before"}
            servers.append(
                start_gunicorn(
                    before_env, "newsroom.wsgi:application", 8804, args.workers, tree=args.before
                )
            )
        measure = {"seconds": args.seconds, "connections": args.connections}
        with tempfile.TemporaryDirectory() as scripts:
            article = f"http://127.0.0.1:8802{urls['article']}"
            conditional = conditional_get_script(
                etag_answered_304(8802, urls["article"]), Path(scripts) / "after.lua"
            )
            rows.append(("floor (bare view)", wrk("http://127.0.0.1:8801/floor", **measure)))
            for name, path in urls.items():
                rows.append((f"{name}, cached", wrk(f"http://127.0.0.1:8802{path}", **measure)))
            rows.append(("article, 304", wrk(article, script=conditional, **measure)))
            for name, path in urls.items():
                rows.append((f"{name}, uncached", wrk(f"http://127.0.0.1:8803{path}", **measure)))
            if args.before:
                before = f"http://127.0.0.1:8804{urls['article']}"
                before_conditional = conditional_get_script(
                    etag_answered_304(8804, urls["article"]), Path(scripts) / "before.lua"
                )
                for n in range(1, args.rounds + 1):
                    for tree, url, script in (
                        ("before", before, before_conditional),
                        ("after", article, conditional),
                    ):
                        for kind, row_script in (("cached", None), ("304", script)):
                            compared.append(
                                (
                                    f"{n} {tree}: article, {kind}",
                                    wrk(url, script=row_script, **measure),
                                )
                            )
            # The floor again at the end: the machine is shared, and a floor that moved
            # during the run says the ratios are not to be trusted.
            rows.append(("floor, again at the end", wrk("http://127.0.0.1:8801/floor", **measure)))
    finally:
        stop(servers)

    floors = (rows[0][1]["rps"], rows[-1][1]["rps"])
    floor = sum(floors) / 2
    drift = abs(floors[1] - floors[0]) / floor
    print(
        f"\npages at scale {args.scale} ({args.scale * ARTICLES_PER_SCALE:,} extra articles), "
        f"{args.workers} gunicorn workers, wrk {args.connections} connections x {args.seconds}s "
        f"(load before {load})"
    )
    print(
        f"the floor: {floors[0]:.0f} req/s first, {floors[1]:.0f} at the end; "
        f"ratios are to their mean ({floor:.0f})"
        f"{'' if drift <= 0.15 else f'. It moved {drift:.0%}: the load changed, rerun'}"
    )
    print(
        f"{'page':24} {'req/s':>9} {'of floor':>9} {'target':>7} {'':7} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'non-2xx':>8} {'socket':>7}"
    )
    for name, row in [*rows, *compared]:
        row["of_floor"] = row["rps"] / floor
        target = TARGETS.get(name)
        if target is None:
            verdict = ""
        else:
            # The target asks for no errors as well as the share.
            errors = row["non_2xx"] or row["socket_errors"]
            verdict = "met" if row["of_floor"] >= target and not errors else "NOT met"
        print(
            f"{name:24} {row['rps']:9.0f} {row['of_floor']:9.0%} "
            f"{f'>={target:.0%}' if target else '':>7} {verdict:7} {row['p50_ms']:8.1f} "
            f"{row['p99_ms']:8.1f} {row['non_2xx']:8d} {row['socket_errors']:7d}"
        )
        del row["output"]
    if compared:
        by_name = dict(compared)
        for kind in ("cached", "304"):
            ratios = [
                by_name[f"{n} after: article, {kind}"]["rps"]
                / by_name[f"{n} before: article, {kind}"]["rps"]
                for n in range(1, args.rounds + 1)
            ]
            print(
                f"article, {kind}: this tree / --before, round by round: "
                + ", ".join(f"{ratio:.2f}x" for ratio in ratios)
            )
    articles = subprocess.run(
        ["psql", args.database_url, "-tAc", "SELECT count(*) FROM newsroom_article"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    write_result(
        f"pages-x{args.scale}",
        {
            "scale": args.scale,
            "articles": int(articles),
            "workers": args.workers,
            "connections": args.connections,
            "seconds": args.seconds,
            "load_before": load,
            "urls": urls,
            "floor_rps": floor,
            "floor_drift": round(drift, 3),
            "rows": dict(rows),
            "targets": TARGETS,
            "compared_with": str(args.before) if args.before else None,
            "compared": dict(compared),
        },
    )


if __name__ == "__main__":
    main()
