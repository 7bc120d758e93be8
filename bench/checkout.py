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
"""

from __future__ import annotations

import argparse
import http.client
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
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


def preset_amount(port: int) -> str:
    """A preset amount from GET /donate/ (the form is CSRF-exempt: it only sends the reader to Stripe)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/donate/?frequency=one_time", headers={"X-Forwarded-Proto": "https"})
    response = connection.getresponse()
    page = response.read().decode()
    amount = re.search(r'name="amount" value="(\d+)"', page)
    if response.status != 200 or not amount:
        sys.exit(f"GET /donate/ answered {response.status} without a preset amount")
    return amount.group(1)


def one_checkout(port: int, amount: str) -> tuple[int, str]:
    body = urllib.parse.urlencode({
        "frequency": "one_time", "amount": amount,
        "name": "Bench Donor", "email": "first@checkout.bench",
    })
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("POST", "/donate/", body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "Origin": f"https://127.0.0.1:{port}",
        "Referer": f"https://127.0.0.1:{port}/donate/",
        "X-Forwarded-Proto": "https",
    })
    response = connection.getresponse()
    response.read()
    return response.status, response.getheader("Location") or ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/newsroom_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()

    ensure_database(args.database_url)
    env = production_env(database_url=args.database_url, redis_url=args.redis_url)
    migrate(env)
    stand_in, stand_in_server = stripe_stand_in()
    env.update({
        "STRIPE_API_BASE": stand_in,
        "CHECKOUT_RATE_LIMIT_PER_IP": "1000000/1m",
        "CHECKOUT_RATE_LIMIT_PER_EMAIL": "1000000/1m",
        "CELERY_BROKER_URL": "",  # nothing is queued when a checkout starts
    })
    server = start_gunicorn(env, "newsroom.wsgi:application", PORT, args.workers)
    try:
        amount = preset_amount(PORT)
        status, location = one_checkout(PORT, amount)
        if status != 303 or not location.startswith("https://checkout.stripe.com/"):
            sys.exit(f"POST /donate/ answered {status} {location!r}, not a 303 to Stripe Checkout")
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        out = subprocess.run(
            ["wrk", "-t1", f"-c{args.connections}", f"-d{args.seconds}s", "--latency",
             "-s", str(ROOT / "bench" / "checkout.lua"), f"http://127.0.0.1:{PORT}/donate/",
             "--", str(PORT), amount],
            capture_output=True, text=True, check=True,
        ).stdout
    finally:
        stop([server])
        stand_in_server.shutdown()
    result = parse_wrk(out)
    redirects = int(re.search(r"redirects to checkout (\d+)", out).group(1))
    figures = {
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
    print(f"\ncheckout: POST /donate/ -> 303, {args.connections} connection(s) x {args.seconds} s, "
          f"{args.workers} gunicorn workers (load before {load})")
    for key, value in figures.items():
        print(f"{key:24} {value:,.2f}" if isinstance(value, float) else f"{key:24} {value}")
    if result["requests"] < 1000:
        print("fewer than 1,000 requests: run longer (--seconds) for a p99 worth the name")
    write_result("checkout", figures)


if __name__ == "__main__":
    main()
