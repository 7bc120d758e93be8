"""Pages under load while Redis stops (or hangs) halfway: errors and latency before and after.

Starts a redis-server of its own on a private port (the cache and the broker), gunicorn
with the production settings on PostgreSQL and that Redis, and a load of readers on the
home, article, category, donate and newsletters pages, with a load balancer's /healthz
every second beside them. Halfway through, Redis is shut down (`--fault stop`) or frozen
with SIGSTOP so that it accepts connections and never answers (`--fault hang`).

    python bench/redis_outage.py --fault stop --seconds 30
    python bench/redis_outage.py --fault hang --seconds 30
    python bench/redis_outage.py --fault stop --uncached   # page cache off from the start

Needs PostgreSQL on loopback and `redis-server`; wrk is not needed (the load is made
here, in threads, one connection per request as gunicorn's sync workers close them).
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ensure_database, production_env, start_gunicorn, stop, write_result
from bench.pages import prepare_data

PORT = 8831


def start_redis(port: int) -> int:
    """A redis-server of our own, without persistence; its process id."""
    pidfile = Path(tempfile.gettempdir()) / f"bench-redis-{port}.pid"
    subprocess.run(
        [
            "redis-server",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "yes",
            "--pidfile",
            str(pidfile),
        ],
        check=True,
        capture_output=True,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if pidfile.exists() and pidfile.read_text().strip():
            ping = subprocess.run(["redis-cli", "-p", str(port), "PING"], capture_output=True)
            if ping.stdout.strip() == b"PONG":
                return int(pidfile.read_text())
        time.sleep(0.1)
    sys.exit(f"redis-server did not start on port {port}")


def get(path: str, timeout: float = 30) -> tuple[int | str, float]:
    """One request on a new connection: its status (or the error's name) and seconds taken."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
    try:
        connection.request("GET", path, headers={"X-Forwarded-Proto": "https"})
        response = connection.getresponse()
        response.read()
        status: int | str = response.status
    except OSError as error:
        status = type(error).__name__
    finally:
        connection.close()
    return status, time.monotonic() - started


def summary(rows: list[tuple[float, int | str, float]]) -> dict:
    """Requests, errors (not 2xx/3xx, or no answer), and latency of `rows` in milliseconds."""
    latencies = sorted(seconds * 1000 for _, _, seconds in rows)
    errors = [status for _, status, _ in rows if not (isinstance(status, int) and status < 400)]
    if not latencies:
        return {"requests": 0, "errors": 0}
    return {
        "requests": len(rows),
        "errors": len(errors),
        "error_kinds": sorted({str(status) for status in errors}),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1),
        "max_ms": round(latencies[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fault", choices=["stop", "hang"], default="stop")
    parser.add_argument(
        "--seconds", type=int, default=30, help="the whole run; Redis fails halfway"
    )
    parser.add_argument("--readers", type=int, default=8, help="requests in flight at once")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers, as the Procfile")
    parser.add_argument(
        "--uncached", action="store_true", help="page cache off: the baseline of 'Redis down'"
    )
    parser.add_argument("--redis-port", type=int, default=6391)
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/newsroom_redis_bench"
    )
    args = parser.parse_args()

    ensure_database(args.database_url)
    redis_pid = start_redis(args.redis_port)
    redis = f"redis://127.0.0.1:{args.redis_port}"
    env = {
        **production_env(
            database_url=args.database_url,
            redis_url=f"{redis}/0",
            page_cache_seconds=0 if args.uncached else 300,
        ),
        "CELERY_BROKER_URL": f"{redis}/1",
    }
    server = None
    try:
        urls = prepare_data(env, 1)
        pages = [urls["home"], urls["article"], urls["category"], "/donate/", "/newsletters/"]
        server = start_gunicorn(env, "newsroom.wsgi:application", PORT, args.workers)
        for path in pages:  # warm: the first request of each worker imports and connects
            get(path)

        rows: list[tuple[float, int | str, float]] = []
        health: list[tuple[float, int | str, float]] = []
        started = time.monotonic()
        until = started + args.seconds
        lock = threading.Lock()

        def reader(offset: int) -> None:
            n = offset
            while time.monotonic() < until:
                at = time.monotonic() - started
                status, seconds = get(pages[n % len(pages)])
                with lock:
                    rows.append((at, status, seconds))
                n += 1

        def load_balancer() -> None:
            while time.monotonic() < until:
                at = time.monotonic() - started
                status, seconds = get("/healthz", timeout=5)
                health.append((at, status, seconds))
                time.sleep(max(0.0, 1 - seconds))

        threads = [threading.Thread(target=reader, args=(n,)) for n in range(args.readers)]
        threads.append(threading.Thread(target=load_balancer))
        for thread in threads:
            thread.start()
        time.sleep(args.seconds / 2)
        failed_at = time.monotonic() - started
        if args.fault == "stop":
            subprocess.run(["redis-cli", "-p", str(args.redis_port), "SHUTDOWN", "NOSAVE"])
        else:
            os.kill(redis_pid, signal.SIGSTOP)
        for thread in threads:
            thread.join()
    finally:
        if server is not None:
            stop([server])
        if args.fault == "hang":
            os.kill(redis_pid, signal.SIGCONT)
        subprocess.run(
            ["redis-cli", "-p", str(args.redis_port), "SHUTDOWN", "NOSAVE"], capture_output=True
        )

    down = "stopped" if args.fault == "stop" else "hung"
    spans = {"Redis up": (0.0, failed_at), f"Redis {down}": (failed_at, args.seconds)}
    phases = {
        name: summary([row for row in rows if low <= row[0] < high])
        for name, (low, high) in spans.items()
    }
    print(f"{args.readers} readers, {args.workers} gunicorn workers, {args.seconds} s;")
    print(f"Redis {down} at {failed_at:.1f} s")
    print(f"{'phase':<14} {'requests':>8} {'req/s':>7} {'errors':>6} {'p50 ms':>8} {'p99 ms':>8}")
    for name, (low, high) in spans.items():
        figures = phases[name]
        print(
            f"{name:<14} {figures['requests']:>8} {figures['requests'] / (high - low):>7.1f} "
            f"{figures['errors']:>6} {figures.get('p50_ms', 0):>8} {figures.get('p99_ms', 0):>8}"
        )
    for name, (low, high) in spans.items():
        part = [row for row in health if low <= row[0] < high]
        statuses = sorted({str(status) for _, status, _ in part})
        slowest = max((seconds for _, _, seconds in part), default=0) * 1000
        print(f"/healthz, {name}: {', '.join(statuses)}; slowest {slowest:.0f} ms")
    write_result(
        f"redis-outage-{args.fault}{'-uncached' if args.uncached else ''}",
        {
            "readers": args.readers,
            "workers": args.workers,
            "seconds": args.seconds,
            "page_cache": not args.uncached,
            "failed_at_s": round(failed_at, 1),
            "phases": phases,
            "healthz": [
                {"at_s": round(at, 1), "status": status, "ms": round(seconds * 1000)}
                for at, status, seconds in health
            ],
        },
    )


if __name__ == "__main__":
    main()
