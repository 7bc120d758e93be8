"""Time our server spends starting a checkout: POST /donate/ (a valid form) to the 303 to Stripe.

gunicorn with the production settings; Stripe's API is a stand-in on loopback that
answers at once (`STRIPE_API_BASE`), so what is timed is everything but Stripe's own
round trip (the stand-in's answer, well under a millisecond, is included: nothing is
subtracted). The checkout rate limits are raised out of the way by settings
(`CHECKOUT_RATE_LIMIT_PER_IP` and `..._PER_EMAIL` = 1000000/1m); their Redis counters
are still incremented on every request, as in production. One connection, one request
at a time, each from a new donor address, for at least 1,000 requests; wrk reports
p50 and p99.

    python bench/checkout.py                 # 20 s, one connection
    python bench/checkout.py --seconds 10 --connections 4
    python bench/checkout.py --scale 100     # among 1,000,000 gifts (newsroom_bench_x100)
    python bench/checkout.py --stages        # and where each request's time went

`--stages` serves `bench/checkout_stages.py` (the same application, each stage of each
request timed in the server) and prints the slowest 1% of the POSTs against the middle
ones; the stand-in's own time per answer is printed beside them. Its wrk figures are
not written to `bench/results/`: the timers are not free.

`--scale N` first brings the gifts in the database up to N x 10,000 (copies of a real
one, each with its own Stripe ids) and adds a row to `bench/results/checkout-growth.json`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    RESULTS,
    ROOT,
    StripeStandIn,
    ensure_database,
    migrate,
    parse_wrk,
    production_env,
    start_gunicorn,
    stop,
    stripe_stand_in,
    write_result,
)

PORT = 8821
GIFTS_PER_SCALE = 10_000


def gifts_top_up(database_url: str, want: int) -> int:
    """Copy the newest gift until there are `want`; return how many there are."""

    def sql(query: str) -> str:
        return subprocess.run(
            ["psql", database_url, "-tAqc", query], capture_output=True, text=True, check=True
        ).stdout.strip()

    have = int(sql("SELECT count(*) FROM donations_gift"))
    if have < want:
        columns = sql(
            "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) "
            "FROM information_schema.columns "
            "WHERE table_name = 'donations_gift' AND column_name <> 'id'"
        ).split(",")
        unique = {
            "donor_email": "'growth' || n || '@checkout.bench'",
            "stripe_checkout_session_id": "'cs_growth_' || n",
            "stripe_payment_intent_id": "''",
            "stripe_invoice_id": "''",
            "stripe_charge_id": "''",
            "created_at": "now() - make_interval(mins => n)",
        }
        values = ", ".join(unique.get(column, column) for column in columns)
        # Column names come from the catalogue and the bounds are integers: nothing from outside.
        sql(
            f"INSERT INTO donations_gift ({', '.join(columns)}) SELECT {values} FROM "  # noqa: S608
            f"(SELECT * FROM donations_gift ORDER BY id DESC LIMIT 1) AS model, "
            f"generate_series({have + 1}, {want}) AS n"
        )
        sql("VACUUM ANALYZE donations_gift")
    return int(sql("SELECT count(*) FROM donations_gift"))


def preset_amount(port: int) -> str:
    """Read a preset amount from GET /donate/ (CSRF-exempt: it only sends the reader to Stripe)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/donate/?frequency=one_time", headers={"X-Forwarded-Proto": "https"})
    response = connection.getresponse()
    page = response.read().decode()
    amount = re.search(r'name="amount" value="(\d+)"', page)
    if response.status != 200 or not amount:
        sys.exit(f"GET /donate/ answered {response.status} without a preset amount")
    return amount.group(1)


def one_checkout(port: int, amount: str) -> tuple[int, str]:
    body = urllib.parse.urlencode(
        {
            "frequency": "one_time",
            "amount": amount,
            "name": "Bench Donor",
            "email": "first@checkout.bench",
        }
    )
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(
        "POST",
        "/donate/",
        body=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": f"https://127.0.0.1:{port}",
            "Referer": f"https://127.0.0.1:{port}/donate/",
            "X-Forwarded-Proto": "https",
        },
    )
    response = connection.getresponse()
    response.read()
    return response.status, response.getheader("Location") or ""


def stages_summary(directory: Path) -> str:
    """The POSTs' stages: mean ms in the middle 10% and in the slowest 1%."""
    rows = [
        row
        for path in directory.glob("*.jsonl")
        for row in map(json.loads, path.read_text().splitlines())
        if row.pop("method") == "POST"
    ]
    if len(rows) < 100:
        return f"{len(rows)} POSTs timed: too few for a slowest 1%"
    rows.sort(key=lambda row: row["total"])
    n = len(rows)
    middle, slowest = rows[int(n * 0.45) : int(n * 0.55)], rows[int(n * 0.99) :]
    lines = [
        f"{n} POSTs timed in the server: p50 {rows[n // 2]['total']:.2f} ms, "
        f"p99 {rows[int(n * 0.99)]['total']:.2f} ms",
        f"{'stage (mean ms)':18} {'middle 10%':>11} {'slowest 1%':>11}",
    ]
    for stage in sorted({key for row in rows for key in row}, key=lambda k: (k != "total", k)):
        mean_middle = sum(row.get(stage, 0.0) for row in middle) / len(middle)
        mean_slowest = sum(row.get(stage, 0.0) for row in slowest) / len(slowest)
        lines.append(f"{stage:18} {mean_middle:11.2f} {mean_slowest:11.2f}")
    return "\n".join(lines)


def stand_in_timed() -> list[float]:
    """Note how long the stand-in takes to answer each checkout (ms), from now on."""
    answered_in: list[float] = []
    answer = StripeStandIn.do_POST

    def timed(handler: StripeStandIn) -> None:
        start = time.perf_counter()
        answer(handler)
        answered_in.append((time.perf_counter() - start) * 1000)

    StripeStandIn.do_POST = timed
    return answered_in


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--scale", type=int, help="tens of thousands of gifts (1, 10, 100) for the growth table"
    )
    parser.add_argument(
        "--database-url", help="default: newsroom_bench, or newsroom_bench_x10 for --scale 10"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument(
        "--stages", action="store_true", help="time each stage of each request in the server"
    )
    args = parser.parse_args()
    if not args.database_url:
        suffix = f"_x{args.scale}" if args.scale and args.scale > 1 else ""
        args.database_url = f"postgres://postgres@127.0.0.1:5432/newsroom_bench{suffix}"

    ensure_database(args.database_url)
    env = production_env(database_url=args.database_url, redis_url=args.redis_url)
    migrate(env)
    stand_in, stand_in_server = stripe_stand_in()
    env.update(
        {
            "STRIPE_API_BASE": stand_in,
            "CHECKOUT_RATE_LIMIT_PER_IP": "1000000/1m",
            "CHECKOUT_RATE_LIMIT_PER_EMAIL": "1000000/1m",
            "CELERY_BROKER_URL": "",  # nothing is queued when a checkout starts
        }
    )
    app = "newsroom.wsgi:application"
    stages = Path(tempfile.mkdtemp(prefix="checkout-stages-")) if args.stages else None
    if stages:
        app = "bench.checkout_stages:application"
        env["CHECKOUT_STAGES_DIR"] = str(stages)
        answered_in = stand_in_timed()
    server = start_gunicorn(env, app, PORT, args.workers)
    try:
        amount = preset_amount(PORT)
        status, location = one_checkout(PORT, amount)
        if status != 303 or not location.startswith("https://checkout.stripe.com/"):
            sys.exit(f"POST /donate/ answered {status} {location!r}, not a 303 to Stripe Checkout")
        gifts = gifts_top_up(args.database_url, args.scale * GIFTS_PER_SCALE if args.scale else 0)
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{args.connections}",
                f"-d{args.seconds}s",
                "--latency",
                "-s",
                str(ROOT / "bench" / "checkout.lua"),
                f"http://127.0.0.1:{PORT}/donate/",
                "--",
                str(PORT),
                amount,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        stop([server])
        stand_in_server.shutdown()
    result = parse_wrk(out)
    redirects = int(re.search(r"redirects to checkout (\d+)", out).group(1))
    if stages:
        print(f"wrk: p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms")
        print(stages_summary(stages))
        answered = sorted(answered_in)
        print(
            f"the stand-in's answers ({len(answered)}): p50 {answered[len(answered) // 2]:.2f} "
            f"ms, p99 {answered[int(len(answered) * 0.99)]:.2f} ms, max {answered[-1]:.2f} ms"
        )
        return
    figures = {
        "gifts_in_database": gifts,
        "connections": args.connections,
        "gunicorn_workers": args.workers,
        "load_before": load,
        "requests": result["requests"],
        "redirects_to_checkout": redirects,
        "checkouts_per_second": result["rps"],
        "p50_ms": result["p50_ms"],
        "p99_ms": result["p99_ms"],
        "non_2xx_3xx": result["non_2xx"],
        "socket_errors": result["socket_errors"],
    }
    print(
        f"\ncheckout: POST /donate/ -> 303, {args.connections} connection(s) x {args.seconds} s, "
        f"{args.workers} gunicorn workers (load before {load})"
    )
    for key, value in figures.items():
        print(f"{key:24} {value:,.2f}" if isinstance(value, float) else f"{key:24} {value}")
    if result["requests"] < 1000:
        print("fewer than 1,000 requests: run longer (--seconds) for a p99 worth the name")
    write_result("checkout" if not args.scale else f"checkout-x{args.scale}", figures)
    if args.scale:
        path = RESULTS / "checkout-growth.json"
        rows = json.loads(path.read_text()) if path.exists() else []
        rows = [row for row in rows if row["scale"] != args.scale]
        rows.append(
            {
                "scale": args.scale,
                "rows": gifts,
                "seconds": result["p50_ms"] / 1000,
                "peak_mb": None,
                "label": "checkout p50",
            }
        )
        rows.append(
            {
                "scale": args.scale,
                "rows": gifts,
                "seconds": result["p99_ms"] / 1000,
                "peak_mb": None,
                "label": "checkout p99",
            }
        )
        path.write_text(
            json.dumps(sorted(rows, key=lambda r: (r["label"], r["scale"])), indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
