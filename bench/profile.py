"""Profile one page of the site in-process with pyinstrument, under the production settings.

Calls the WSGI application directly (no server, no network) for `--requests` GETs of
`--path` and prints pyinstrument's call tree; `--uncached` turns the page cache off.
Uses the data `bench/pages.py` seeded.

    python bench/profile.py --path /                           # the home page, cached
    python bench/profile.py --path /articles/... --uncached    # an article, rendered each time
    python bench/profile.py --path /articles/... --conditional # its own ETag sent: each one a 304
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import production_env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", default="/")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--uncached", action="store_true")
    parser.add_argument(
        "--conditional",
        action="store_true",
        help="send the page's own ETag in If-None-Match: every GET is answered 304",
    )
    parser.add_argument("--all", action="store_true", help="show every frame, the libraries' too")
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/newsroom_bench"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()
    env = production_env(
        database_url=args.database_url,
        redis_url=args.redis_url,
        page_cache_seconds=0 if args.uncached else 300,
    )
    if args.uncached:
        env["CACHE_KEY_PREFIX"] = "bench-profile-uncached"
    os.environ.update(env)
    from django.core.wsgi import get_wsgi_application
    from django.db import connection
    from pyinstrument import Profiler

    application = get_wsgi_application()

    conditional: dict[str, str] = {}

    def get() -> int:
        environ = {
            **conditional,
            "REQUEST_METHOD": "GET",
            "PATH_INFO": args.path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_X_FORWARDED_PROTO": "https",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": io.BytesIO(),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
        }
        statuses = []
        body = application(environ, lambda status, headers: statuses.append((status, headers)))
        b"".join(body)
        body.close()
        status, headers = statuses[0]
        etags[:] = [value for name, value in headers if name == "ETag"]
        return int(status.split()[0])

    etags: list[str] = []
    status = get()  # warm up (and fill the cache)
    if status != 200:
        sys.exit(f"GET {args.path} answered {status}")
    if args.conditional:
        conditional["HTTP_IF_NONE_MATCH"] = etags[0]
        if (status := get()) != 304:
            sys.exit(f"GET {args.path} answered {status} to its own ETag, not 304")
    queries: list[str] = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        get()
    # The profiler's sampling slows every call: time the same requests without it first.
    # CPU time too: on a shared machine it moves less with the load than the wall clock.
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(args.requests):
        get()
    plain = (time.perf_counter() - started) / args.requests
    cpu = (time.process_time() - cpu) / args.requests
    print(
        f"{args.requests} GETs of {args.path} without the profiler: {plain * 1000:.3f} ms each "
        f"({cpu * 1000:.3f} ms of this process's CPU), {len(queries)} queries each"
    )
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(args.requests):
        get()
    profiler.stop()
    seconds = profiler.last_session.duration
    print(
        f"{args.requests} GETs of {args.path} ({'uncached' if args.uncached else 'cached'}"
        f"{', 304' if args.conditional else ''}), "
        f"under the profiler: {seconds / args.requests * 1000:.2f} ms each"
    )
    print(profiler.output_text(unicode=False, color=False, show_all=args.all))


if __name__ == "__main__":
    main()
