"""A local SMTP sink: accepts every message on loopback, counts it, and throws the body away.

    python bench/smtp_sink.py                       # 127.0.0.1:8830, counts in Redis DB 13
    python bench/smtp_sink.py --port 8831 --key bench:smtp_sink:mine --reset

Benchmarks that send through Django's SMTP backend (bench/newsletter_compare.py) point
EMAIL_HOST/EMAIL_PORT here and read the counts from the Redis hash `--key`:

    connections       SMTP sessions (EHLO or HELO; Django's backend greets once per connection)
    messages          messages accepted (DATA)
    recipients        envelope recipients over all messages
    bytes             message sizes, headers included, as received
    list_unsubscribe  messages carrying a List-Unsubscribe header
    first_at, last_at time.time() of the first and the last message accepted

and, in the set `<key>:unsubscribe`, the distinct List-Unsubscribe values (one per
reader when every reader gets their own link, one when everyone gets the same).

Every message is answered 250 at once: the sink measures the sender, not a mail server.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from email.parser import BytesHeaderParser

import redis
from aiosmtpd.controller import Controller

DEFAULT_PORT = 8830
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
DEFAULT_KEY = "bench:smtp_sink"


class CountingHandler:
    """aiosmtpd handler hooks (aiosmtpd docs, "Handler hooks"): count, never store."""

    def __init__(self, store: redis.Redis, key: str):
        self.store = store
        self.key = key
        self.headers = BytesHeaderParser()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        self.store.hincrby(self.key, "connections", 1)
        return responses

    async def handle_HELO(self, server, session, envelope, hostname):
        session.host_name = hostname
        self.store.hincrby(self.key, "connections", 1)
        return f"250 {server.hostname}"

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content or envelope.content or b""
        unsubscribe = self.headers.parsebytes(content, headersonly=True).get("List-Unsubscribe")
        now = time.time()
        pipe = self.store.pipeline(transaction=False)
        pipe.hincrby(self.key, "messages", 1)
        pipe.hincrby(self.key, "recipients", len(envelope.rcpt_tos))
        pipe.hincrby(self.key, "bytes", len(content))
        pipe.hsetnx(self.key, "first_at", repr(now))
        pipe.hset(self.key, "last_at", repr(now))
        if unsubscribe:
            pipe.hincrby(self.key, "list_unsubscribe", 1)
            pipe.sadd(f"{self.key}:unsubscribe", " ".join(str(unsubscribe).split()))
        pipe.execute()
        return "250 Message accepted"


def read_counts(store: redis.Redis, key: str = DEFAULT_KEY) -> dict:
    """The sink's counts so far (zeros before the first message)."""
    raw = {k.decode(): v.decode() for k, v in store.hgetall(key).items()}
    counts = {
        name: int(raw.get(name, 0))
        for name in ("connections", "messages", "recipients", "bytes", "list_unsubscribe")
    }
    counts["first_at"] = float(raw["first_at"]) if "first_at" in raw else None
    counts["last_at"] = float(raw["last_at"]) if "last_at" in raw else None
    counts["distinct_list_unsubscribe"] = store.scard(f"{key}:unsubscribe")
    return counts


def reset_counts(store: redis.Redis, key: str = DEFAULT_KEY) -> None:
    store.delete(key, f"{key}:unsubscribe")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback only, as every benchmark")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="8830 to 8839 are the sink's"
    )
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--key", default=DEFAULT_KEY, help="Redis hash the counts go to")
    parser.add_argument("--reset", action="store_true", help="zero the counts before listening")
    parser.add_argument(
        "--report-every", type=float, default=0, help="print the counts every N seconds"
    )
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error(f"--host {args.host}: the sink listens on loopback only")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    store = redis.Redis.from_url(args.redis_url)
    try:
        store.ping()
    except redis.ConnectionError as exc:
        sys.exit(f"Redis at {args.redis_url} does not answer: {exc}")
    if args.reset:
        reset_counts(store, args.key)
    # A 32 MB message limit (aiosmtpd's default) is far above any digest.
    controller = Controller(CountingHandler(store, args.key), hostname=args.host, port=args.port)
    try:
        controller.start()
    except OSError as exc:
        sys.exit(f"cannot listen on {args.host}:{args.port}: {exc}")
    # SIGTERM (the benchmark stopping it) ends the process as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(
        f"SMTP sink on {args.host}:{args.port}, counts in {args.redis_url} {args.key}", flush=True
    )
    try:
        while True:
            time.sleep(args.report_every or 3600)
            if args.report_every:
                counts = read_counts(store, args.key)
                print(
                    f"{counts['messages']} messages, {counts['recipients']} recipients, "
                    f"{counts['connections']} connections",
                    flush=True,
                )
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
