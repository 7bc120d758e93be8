"""PostgreSQL down, hung or slow: the web process answers 503 within its bounds.

Run against the real PostgreSQL through tests/faultproxy.py, with the site served by
gunicorn in a process of its own (newsroom/wsgi.py makes it a web process, whose
statement timeout is the short one). Skipped without PostgreSQL unless REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
import time_machine
from django.db import connection

from tests.conftest import ROOT, skip_or_fail
from tests.faultproxy import FaultProxy
from tests.newsroom.test_settings import load_settings
from tests.newsroom.webserver import Gunicorn

# The bounds the web process is started with (seconds); production's are 3 and 5.
CONNECT_TIMEOUT = 2
STATEMENT_TIMEOUT = 1
# Long enough for every bound above and the server's start, far below what a held
# worker would take (gunicorn's own timeout is 120 s here).
ANSWER_WITHIN = 20


def _server_address() -> tuple[str, int, dict]:
    if connection.vendor != "postgresql":
        skip_or_fail("the database fault tests need PostgreSQL (DATABASE_URL)")
    db = connection.settings_dict
    return db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432), db


def _url(*, host: str, port: int) -> str:
    """The test database's URL at `host:port` (the server itself, or the proxy)."""
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "") + "@"
    return f"postgres://{auth}{host}:{port}/{db['NAME']}"


def _nobody_else_on_the_database() -> None:
    # A session cut by a fault can outlive its client by a moment on the server; the
    # suite drops this database at its end and must find nobody else on it.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture
def site(transactional_db) -> Iterator[Callable[..., Gunicorn]]:
    """Start the site in gunicorn on a database address of the test's choosing."""
    _server_address()  # skip or fail before anything starts
    servers: list[Gunicorn] = []

    def start(database_url: str, **extra: str) -> Gunicorn:
        env = {
            key: value
            for key, value in os.environ.items()
            # Each gunicorn keeps its own in-memory cache and runs tasks in-process.
            if key not in {"REDIS_URL", "CELERY_BROKER_URL", "NEWSROOM_PROCESS"}
        }
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "newsroom.settings",
                "DJANGO_DEBUG": "1",
                "PYTHONPATH": str(ROOT),
                "DATABASE_URL": database_url,
                "DATABASE_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
                "DATABASE_STATEMENT_TIMEOUT": str(STATEMENT_TIMEOUT),
                **extra,
            }
        )
        server = Gunicorn(env).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
    _nobody_else_on_the_database()


@pytest.fixture
def database_proxy() -> Iterator[FaultProxy]:
    host, port, _ = _server_address()
    with FaultProxy(host, port) as proxy:
        yield proxy


def assert_unavailable_page(answer) -> None:
    assert answer.status == 503
    assert "Back in a moment" in answer.body
    assert answer.headers["Retry-After"] == "30"
    # Nothing of the driver's message (host, port) reaches the reader.
    assert "5432" not in answer.body and "connection" not in answer.body.lower()


def test_a_database_that_accepts_and_never_answers_gets_the_503_page(site, database_proxy):
    server = site(_url(host="127.0.0.1", port=database_proxy.port), DATABASE_CONN_MAX_AGE="0")
    database_proxy.mode = "hang"

    assert_unavailable_page(server.get("/browse/", timeout=ANSWER_WITHIN))


def test_an_open_connection_whose_database_stops_answering_gets_the_503_page(site, database_proxy):
    server = site(_url(host="127.0.0.1", port=database_proxy.port))
    # The connection is opened and kept (DATABASE_CONN_MAX_AGE), as between busy requests.
    assert server.get("/browse/", timeout=ANSWER_WITHIN).status == 200
    database_proxy.mode = "hang"

    assert_unavailable_page(server.get("/browse/?page=1", timeout=ANSWER_WITHIN))
    database_proxy.mode = "pass"
    assert server.get("/browse/?page=2", timeout=ANSWER_WITHIN).status == 200


def test_a_refused_database_gets_the_503_page(site, database_proxy):
    server = site(_url(host="127.0.0.1", port=database_proxy.port))
    database_proxy.mode = "refuse"

    assert_unavailable_page(server.get("/browse/", timeout=ANSWER_WITHIN))


def test_a_statement_longer_than_the_web_timeout_is_cancelled_by_the_server(site):
    host, port, db = _server_address()
    server = site(_url(host=host, port=port))
    assert server.get("/robots.txt", timeout=ANSWER_WITHIN).status == 200
    blocker = psycopg.connect(
        host=host,
        port=port,
        user=db["USER"],
        password=db.get("PASSWORD") or None,
        dbname=db["NAME"],
    )
    try:
        # Every read of the categories now waits for this transaction: a slow statement.
        blocker.execute("LOCK TABLE newsroom_category IN ACCESS EXCLUSIVE MODE")

        answer = server.get("/browse/", timeout=ANSWER_WITHIN)

        assert_unavailable_page(answer)
        waiting = blocker.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()
        assert waiting == (0,)  # cancelled by PostgreSQL, not left queued behind the lock
    finally:
        blocker.rollback()
        blocker.close()


def test_gunicorns_entry_point_gets_the_short_statement_timeout_and_others_the_long_one():
    database_url = "postgres://reader@127.0.0.1:5432/newsroom"
    show = "from django.conf import settings; print(settings.DATABASES['default']['OPTIONS'])"

    # What gunicorn does: import newsroom.wsgi, which loads the settings.
    web = load_settings(
        show, setup="import newsroom.wsgi", DATABASE_URL=database_url, NEWSROOM_PROCESS="<unset>"
    )
    # What `celery worker`, beat and manage.py do: load the settings themselves.
    others = load_settings(show, DATABASE_URL=database_url, NEWSROOM_PROCESS="<unset>")

    assert "statement_timeout=5s" in web.stdout, web.stderr
    assert "statement_timeout=300s" in others.stdout, others.stderr
    assert "'connect_timeout': 3" in web.stdout and "'connect_timeout': 3" in others.stdout


@pytest.fixture
def through_proxy(database_proxy) -> Iterator[FaultProxy]:
    """This test process's own database connection goes through the fault proxy."""
    _server_address()
    saved = {key: connection.settings_dict[key] for key in ("HOST", "PORT")}
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(database_proxy.port))
    try:
        yield database_proxy
    finally:
        database_proxy.mode = "pass"
        connection.close()
        connection.settings_dict.update(saved)
        _nobody_else_on_the_database()


def test_a_cached_page_is_served_stale_while_postgresql_hangs_whatever_became_of_its_version(
    client, transactional_db, through_proxy, settings
):
    from django.core.cache import cache

    from newsroom.caching import STATE_KEY
    from tests.newsroom.factories import ArticleFactory

    article = ArticleFactory(headline="Reservoir levels recover")
    first = client.get(article.get_absolute_url())
    assert first.status_code == 200
    cache.delete(STATE_KEY)  # evicted, or Redis restarted
    through_proxy.mode = "hang"
    through_proxy.cut_all()  # the kept connection is gone too, as in a restart

    # Past the bound within which this process trusts the version it read last.
    with time_machine.travel(time.time() + settings.PAGE_CACHE_LOCAL_SECONDS):
        response = client.get(article.get_absolute_url())

    assert response.status_code == 200
    assert response.content == first.content
    assert response["X-Cache"] == "stale"
