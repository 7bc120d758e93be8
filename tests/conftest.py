"""Fixtures every test shares: a clean cache, in-process tasks, a real worker, a real browser.

`REQUIRE_SERVICES=1` (set by .ci/run) turns a missing broker, database server or
browser into a failure instead of a skip.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import time_machine
from django.conf import settings
from django.core.cache import cache

from newsroom.celery import app as celery_app
from tests.faultproxy import FaultProxy

# Fixtures that tests of more than one app use; pytest takes this list only from the
# top-level conftest.py.
pytest_plugins = ["tests.donations.fixtures"]

ROOT = Path(__file__).resolve().parent.parent
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"


def skip_or_fail(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (REQUIRE_SERVICES=1: this must run here)")
    pytest.skip(reason)


@pytest.fixture
def rate_window() -> Iterator[None]:
    """Start at the top of an hour, where every fixed rate-limit window begins.

    A window that turns in the middle of a flood test would reset its count.
    """
    top_of_next_hour = (time.time() // 3600 + 1) * 3600
    with time_machine.travel(top_of_next_hour + 1, tick=True):
        yield


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    from newsroom.caching import local_pages_forget

    # The page cache's copy in this process too: each test is a fresh web process.
    cache.clear()
    local_pages_forget()
    yield
    cache.clear()
    local_pages_forget()


@pytest.fixture(autouse=True)
def _tasks_in_process() -> Iterator[None]:
    """Run tasks eagerly unless a test asks for the real worker."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = True


@pytest.fixture
def broker_refusing(monkeypatch) -> None:
    """Tasks go to a broker whose port refuses every connection, as when Redis is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port once the probe is closed. The write URL, because Celery
    # reads CELERY_BROKER_URL from the environment before its configuration.
    monkeypatch.setattr(celery_app.conf, "broker_write_url", f"redis://127.0.0.1:{port}/0")
    celery_app.conf.task_always_eager = False  # _tasks_in_process sets it back


@pytest.fixture
def redis_cache_proxy(settings) -> Iterator[FaultProxy]:
    """The cache on the real Redis (REDIS_URL) through a FaultProxy a test can make fail.

    The cache is production's: the fail-soft backend with the default timeouts.
    """
    url = os.environ.get("REDIS_URL")
    if not url:
        skip_or_fail("Redis fault tests need a Redis server: set REDIS_URL")
    where = urlsplit(url)
    with FaultProxy(where.hostname or "127.0.0.1", where.port or 6379) as proxy:
        # Assigning CACHES makes Django build the cache anew (a setting_changed receiver).
        settings.CACHES = {
            "default": {
                "BACKEND": "newsroom.redis_cache.FailSoftRedisCache",
                "LOCATION": f"redis://{proxy.address}{where.path or '/0'}",
                "KEY_PREFIX": "faults",
                "OPTIONS": {
                    "socket_connect_timeout": settings.REDIS_CACHE_TIMEOUT_SECONDS,
                    "socket_timeout": settings.REDIS_CACHE_TIMEOUT_SECONDS,
                    "pause_after_error": settings.REDIS_CACHE_PAUSE_SECONDS,
                },
            }
        }
        cache.clear()
        yield proxy


@pytest.fixture(autouse=True)
def _media_root(tmp_path, settings) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def site_url(settings) -> str:
    settings.SITE_URL = "https://news.example"
    return settings.SITE_URL


def _worker_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        skip_or_fail("a real worker needs a database server shared between processes")
    if not settings.CELERY_BROKER_URL:
        skip_or_fail("a real worker needs CELERY_BROKER_URL")
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    env = {
        **os.environ,
        # The worker talks to the test database pytest-django created.
        "DATABASE_URL": f"postgres://{auth}{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
        "DJANGO_SETTINGS_MODULE": "newsroom.settings",
        # The laptop's settings, as the suite's own (tests/settings.py).
        "DJANGO_DEBUG": "1",
        "PYTHONPATH": str(ROOT),
    }
    env.update(extra or {})
    return env


class WorkerProcess:
    """A `celery worker` process on the configured broker, which a test may kill."""

    def __init__(
        self,
        extra_env: dict[str, str] | None = None,
        queues: str = "celery,digests",
        *,
        threads: int = 0,
    ):
        """A solo worker (one task at a time, in its one process), or with `threads`, a
        worker of the threads pool running that many tasks at once in its one process."""
        self.extra_env = extra_env or {}
        self.queues = queues
        self.pool = (
            ["--pool", "threads", "--concurrency", str(threads)]
            if threads
            else [
                "--pool",
                "solo",
            ]
        )
        self.process: subprocess.Popen | None = None
        self.log = ARTIFACTS / f"worker-{os.getpid()}-{time.monotonic_ns()}.log"

    def start(self) -> WorkerProcess:
        ARTIFACTS.mkdir(exist_ok=True)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "newsroom",
                "worker",
                "-Q",
                self.queues,
                *self.pool,
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=_worker_env(self.extra_env),
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log.read_text()[-3000:]}")
            if "ready." in self.log.read_text(errors="replace"):
                return self
            time.sleep(0.2)
        raise RuntimeError(f"worker did not start: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: the worker dies at once, as when a machine is lost."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def celery_worker_factory(transactional_db) -> Iterator:
    """Start real worker processes; tasks enqueued by the test go through the broker."""
    _worker_env()  # skip or fail early when the services are missing
    celery_app.conf.task_always_eager = False
    celery_app.control.purge()
    workers: list[WorkerProcess] = []

    def start(extra_env: dict[str, str] | None = None, *, threads: int = 0) -> WorkerProcess:
        worker = WorkerProcess(extra_env, threads=threads).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
    celery_app.control.purge()


@pytest.fixture
def celery_worker(celery_worker_factory) -> WorkerProcess:
    return celery_worker_factory()


@pytest.fixture
def browser_page(live_server) -> Iterator:
    """A Playwright page in Debian's chromium, headless, pointed at the live server."""
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        skip_or_fail(f"no chromium at {CHROMIUM}")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test
    # makes between page actions are still synchronous and safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        context = browser.new_context(base_url=live_server.url)
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def otp_admin_client(client, db):
    """The test `client`, signed in as a superuser who passed the two-factor login."""
    from tests.helpers import login_staff

    client.staff_user = login_staff(client)
    return client
