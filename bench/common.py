"""What the benchmarks share: the production environment, a Stripe stand-in, wrk, results.

Every benchmark writes `bench/results/<name>.json` through `write_result`, with the
machine's load average at the time of the run. The growth plot (`bench/growth.py`)
reads the `*-growth.json` files, each a list of rows in the format `GROWTH_ROW`:

    [{"scale": 1, "rows": 100, "seconds": 0.0021, "peak_mb": 61.0, "label": "article page"}, ...]

`scale` is 1, 10 or 100 (times the base data), `rows` how many of the growing thing
there were (articles, gifts, subscribers), `seconds` the cost of one unit of work at
that scale (one request, one edition), `peak_mb` the peak resident memory or null,
`label` what was measured (one line per label on the plot).
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
RESULTS = ROOT / "bench" / "results"
GROWTH_ROW = ("scale", "rows", "seconds", "peak_mb", "label")
WEBHOOK_SECRET = "whsec_bench"


def production_env(
    *, database_url: str, redis_url: str, page_cache_seconds: int = 300
) -> dict[str, str]:
    """The site's production settings (DEBUG off, PostgreSQL, Redis cache) on loopback."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "newsroom.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SITE_URL": "https://127.0.0.1",
        "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
        "STRIPE_SECRET_KEY": "sk_test_bench",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "ANYMAIL_WEBHOOK_SECRET": "bench:bench",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "PAGE_CACHE_SECONDS": str(page_cache_seconds),
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }


def ensure_database(database_url: str) -> None:
    # The URL may carry options (`?options=-c ...`): the database's name ends before them.
    name = database_url.split("?", 1)[0].rsplit("/", 1)[1]
    server = database_url.rsplit("/", 1)[0] + "/postgres"
    result = subprocess.run(
        ["createdb", "--maintenance-db", server, name], capture_output=True, text=True
    )
    if result.returncode and "already exists" not in result.stderr:
        sys.exit(result.stderr)


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )


def start_gunicorn(
    env: dict[str, str], app: str, port: int, workers: int, *, tree: Path = ROOT
) -> subprocess.Popen:
    """gunicorn serving `app` from the source tree `tree` (another commit's, to compare)."""
    process = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "gunicorn",
            app,
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=tree,
        env={**env, "PYTHONPATH": str(tree)},
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


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


def wrk(
    url: str, *, seconds: int, connections: int, script: str | None = None, threads: int = 2
) -> dict:
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-H",
        "X-Forwarded-Proto: https",
    ]
    if script:
        command += ["-s", script]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


class CpuMeter:
    """CPU seconds spent by gunicorn's processes, PostgreSQL's and the benchmark's
    finished children (wrk), between `start()` and `stop()`: where a run's cores went.

    Read from /proc (utime and stime of each process); PostgreSQL's are every process
    of the `postgres` user on this machine, its background writers included.
    """

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, server: subprocess.Popen) -> None:
        self.server = server

    @classmethod
    def _cpu(cls, pid: int) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / cls.TICK

    def _gunicorn(self) -> dict[int, float]:
        found = subprocess.run(
            ["pgrep", "-P", str(self.server.pid)], capture_output=True, text=True
        ).stdout.split()
        return {pid: self._cpu(pid) for pid in [self.server.pid, *map(int, found)]}

    def _postgres(self) -> dict[int, float]:
        found = subprocess.run(["pgrep", "-u", "postgres"], capture_output=True, text=True)
        return {int(pid): self._cpu(int(pid)) for pid in found.stdout.split()}

    @staticmethod
    def _children() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def start(self) -> None:
        self.before = (self._gunicorn(), self._postgres(), self._children())

    def stop(self, requests: int) -> dict[str, float]:
        """CPU milliseconds per request of each: gunicorn, postgres, wrk, and their sum."""
        after = (self._gunicorn(), self._postgres(), self._children())

        def spent(before: dict[int, float], now: dict[int, float]) -> float:
            return sum(cpu - before.get(pid, 0.0) for pid, cpu in now.items())

        per = {
            "gunicorn": spent(self.before[0], after[0]),
            "postgres": spent(self.before[1], after[1]),
            "wrk": after[2] - self.before[2],
        }
        per["all"] = sum(per.values())
        return {name: round(seconds * 1000 / max(requests, 1), 3) for name, seconds in per.items()}


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse_wrk(out: str) -> dict:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    return {
        "rps": rps,
        "requests": requests,
        "p50_ms": _ms(*p50.groups()),
        "p99_ms": _ms(*p99.groups()),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(g) for g in sockets.groups()) if sockets else 0,
        "output": out,
    }


def load_average() -> str:
    """The machine's load average over 1, 5 and 15 minutes, as /proc/loadavg gives it."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def commit(tree: Path) -> str:
    """The commit checked out in `tree`, with "+changes" when its tracked files outside
    bench/ differ from it."""
    head = subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short=7", "HEAD"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    # bench/ is left out: --against copies this tree's scripts into an older checkout.
    dirty = subprocess.run(
        ["git", "-C", str(tree), "diff", "--quiet", "HEAD", "--", ".", ":(exclude)bench"]
    ).returncode
    return f"{head}+changes" if dirty else head


def write_result(name: str, data: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average": load_average(),
        **data,
    }
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    return path


def answer_json(handler: BaseHTTPRequestHandler, status: int, body: dict) -> None:
    """Answer a stand-in's request with `body` as JSON, as Stripe's API answers."""
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


class StripeStandIn(BaseHTTPRequestHandler):
    """Stripe's API on loopback, answering at once: PaymentIntents and Checkout Sessions."""

    protocol_version = "HTTP/1.1"
    # The headers and the body leave in two writes; with Nagle's algorithm the body waits
    # for the client's delayed ACK (up to 40 ms on Linux) on a kept-alive connection,
    # a stall Stripe's own servers do not have.
    disable_nagle_algorithm = True
    counter = 0
    lock = threading.Lock()

    def _send(self, body: dict, status: int = 200) -> None:
        answer_json(self, status, body)

    def do_GET(self) -> None:
        if not self.path.startswith("/v1/payment_intents/"):
            self._send({"error": {"message": "not here"}}, 404)
            return
        intent_id = self.path.split("/")[3].split("?")[0]
        self._send(
            {
                "id": intent_id,
                "object": "payment_intent",
                "customer": "cus_bench",
                "latest_charge": {
                    "id": f"ch_{intent_id}",
                    "object": "charge",
                    "created": int(time.time()),
                    "payment_method_details": {"type": "card", "card": {"last4": "4242"}},
                },
            }
        )

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self.path.startswith("/v1/checkout/sessions"):
            self._send({"error": {"message": "not here"}}, 404)
            return
        with StripeStandIn.lock:
            StripeStandIn.counter += 1
            number = StripeStandIn.counter
        session_id = f"cs_bench_{os.getpid()}_{number}_{time.time_ns()}"
        self._send(
            {
                "id": session_id,
                "object": "checkout.session",
                "url": f"https://checkout.stripe.com/c/pay/{session_id}",
                "status": "open",
            }
        )

    def log_message(self, *args) -> None:
        pass


def stripe_stand_in() -> tuple[str, ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StripeStandIn)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


def readers_by_state(newsletter_slug: str = "mideast-daily") -> dict[str, int]:
    """The newsletter's readers by state (Delivery.State), as the digest's ledger tells it
    (batches and reader rows), over all its editions. Needs Django set up."""
    from subscriptions.models import Edition

    try:
        from subscriptions.digest.ledger import editions_readers_by_state
    except ImportError:
        # A commit before the batch ledger (measured with bench/digest.py --against):
        # every reader has a Delivery row.
        from django.db.models import Count

        from subscriptions.models import Delivery

        rows = (
            Delivery.objects.filter(edition__newsletter__slug=newsletter_slug)
            .values("state")
            .annotate(n=Count("pk"))
        )
        return {row["state"]: row["n"] for row in rows}
    ids = list(
        Edition.objects.filter(newsletter__slug=newsletter_slug).values_list("pk", flat=True)
    )
    counts: dict[str, int] = {}
    for states in editions_readers_by_state(ids).values():
        for state, n in states.items():
            counts[state] = counts.get(state, 0) + n
    return counts
