"""Signed Stripe events per second accepted by /webhooks/stripe/, then none lost or counted twice.

Creates pending one-time gifts, signs a `checkout.session.completed` event for each
with the SDK's own helper (30% of the requests are redeliveries of an event already
sent, as Stripe retries), and fires them with wrk (bench/webhooks.lua) at gunicorn
with the production settings; each accepted event is stored and queued on the Redis
broker. Then a real Celery worker drains the queue, asking a Stripe stand-in on
loopback for each PaymentIntent, and the gifts in the database are compared with
what was sent: every event answered 200 stored once, every gift paid once, the sums
equal.

    python bench/webhooks.py                 # 10 s of events, 2 gunicorn workers
    python bench/webhooks.py --seconds 5 --events 8000

The framework's floor (bench/floor_wsgi.py: the same settings and middleware, one view
answering a fixed string) is measured before and after the events with the same wrk
threads and connections, so events per second are reported as a share of it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    PYTHON,
    ROOT,
    WEBHOOK_SECRET,
    CpuMeter,
    ensure_database,
    migrate,
    parse_wrk,
    production_env,
    start_gunicorn,
    stop,
    stripe_stand_in,
    write_result,
    wrk,
)

DUPLICATES = 0.30
PORT = 8811
FLOOR_PORT = 8812


def event_for(gift_id: int, session_id: str, amount: int, email: str, tag: str) -> dict:
    """Build a checkout.session.completed event like tests/donations/stripe_payloads.py."""
    now = int(time.time())
    return {
        "id": f"evt_bench_{tag}_{gift_id}",
        "object": "event",
        "type": "checkout.session.completed",
        "created": now,
        "livemode": False,
        "api_version": "2025-03-31.basil",
        "data": {
            "object": {
                "id": session_id,
                "object": "checkout.session",
                "mode": "payment",
                "status": "complete",
                "payment_status": "paid",
                "amount_total": amount,
                "currency": "usd",
                "customer": f"cus_bench_{gift_id}",
                "customer_email": email,
                "customer_details": {"email": email, "name": "Bench Donor"},
                "client_reference_id": str(gift_id),
                "metadata": {"gift_id": str(gift_id), "frequency": "one_time"},
                "payment_intent": f"pi_bench_{tag}_{gift_id}",
                "subscription": None,
                "invoice": None,
                "created": now,
            }
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument(
        "--events", type=int, default=12000, help="distinct events prepared per wrk thread"
    )
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/newsroom_bench"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/11")
    args = parser.parse_args()

    ensure_database(args.database_url)
    env = production_env(database_url=args.database_url, redis_url=args.redis_url)
    env["CELERY_BROKER_URL"] = args.broker_url
    migrate(env)
    subprocess.run(["redis-cli", "-u", args.broker_url, "FLUSHDB"], check=True, capture_output=True)
    os.environ.update(env)
    import django

    django.setup()
    import stripe
    from django.db.models import Count, Sum

    from donations.models import Gift, StripeEvent

    tag = time.strftime("%H%M%S")
    threads = 2
    rng = random.Random(7)
    workdir = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    events: dict[str, dict] = {}  # event id -> {"gift": id, "amount": cents}
    per_thread: list[list[str]] = []
    started = time.monotonic()
    for thread in range(threads):
        gifts = Gift.objects.bulk_create(
            [
                Gift(
                    status=Gift.Status.PENDING,
                    frequency="one_time",
                    amount_cents=rng.choice([1000, 2500, 5000, 10000, 25000]) + n % 7,
                    donor_email=f"donor{tag}t{thread}n{n}@webhooks.bench",
                    donor_name="Bench Donor",
                    stripe_checkout_session_id=f"cs_bench_{tag}_{thread}_{n}",
                )
                for n in range(args.events)
            ],
            batch_size=2000,
        )
        lines = []
        for gift in gifts:
            body = json.dumps(
                event_for(
                    gift.pk,
                    gift.stripe_checkout_session_id,
                    gift.amount_cents,
                    gift.donor_email,
                    tag,
                )
            )
            event_id = f"evt_bench_{tag}_{gift.pk}"
            events[event_id] = {"gift": gift.pk, "amount": gift.amount_cents}
            signature = stripe.WebhookSignature.generate_signature_header(body, WEBHOOK_SECRET)
            lines.append((event_id, f"{signature}\t{body}"))
        # Redeliveries: after every 7 new events, 3 resent from those already sent (30%).
        sequence: list[tuple[str, str]] = []
        for n, line in enumerate(lines):
            sequence.append(line)
            if n % 7 == 6:
                sequence.extend(rng.choice(sequence[: len(sequence) - 1]) for _ in range(3))
        (workdir / f"events-{thread}.tsv").write_text(
            "\n".join(text for _, text in sequence) + "\n"
        )
        per_thread.append([event_id for event_id, _ in sequence])
    print(
        f"prepared {len(events)} pending gifts and their signed events "
        f"in {time.monotonic() - started:.1f} s"
    )

    stand_in, stand_in_server = stripe_stand_in()
    floor_server = start_gunicorn(env, "bench.floor_wsgi:application", FLOOR_PORT, args.workers)
    server = start_gunicorn(env, "newsroom.wsgi:application", PORT, args.workers)
    floor_measure = {"seconds": args.seconds, "connections": args.connections}
    floor_url = f"http://127.0.0.1:{FLOOR_PORT}/floor"
    try:
        load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        floor_meter, meter = CpuMeter(floor_server), CpuMeter(server)
        floor_meter.start()
        first = wrk(floor_url, **floor_measure)
        floors, floor_cpu = [first["rps"]], floor_meter.stop(first["requests"])
        command = [
            "wrk",
            f"-t{threads}",
            f"-c{args.connections}",
            f"-d{args.seconds}s",
            "--latency",
            "-s",
            str(ROOT / "bench" / "webhooks.lua"),
            f"http://127.0.0.1:{PORT}/webhooks/stripe/",
            "--",
            str(workdir / "events"),
        ]
        meter.start()
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        result = parse_wrk(out)
        events_cpu = meter.stop(result["requests"])
        # Again at the end: the machine is shared, and the floor moves with it.
        floors.append(wrk(floor_url, **floor_measure)["rps"])
    finally:
        stop([server, floor_server])
    floor = sum(floors) / 2
    sent_counts = {
        int(m[0]): (int(m[1]), int(m[2]), int(m[3]))
        for m in re.findall(r"thread (\d+) sent (\d+) answered (\d+) ok (\d+)", out)
    }
    sent_ids: list[str] = []
    for thread, (sent, _answered, _ok) in sent_counts.items():
        sequence = per_thread[thread]
        sent_ids += [sequence[i % len(sequence)] for i in range(sent)]
    answered = sum(a for _, a, _ in sent_counts.values())
    ok = sum(o for _, _, o in sent_counts.values())
    distinct_sent = set(sent_ids)
    duplicates_sent = len(sent_ids) - len(distinct_sent)

    ours = StripeEvent.objects.filter(stripe_id__startswith=f"evt_bench_{tag}_")
    stored = set(ours.values_list("stripe_id", flat=True))
    in_flight = len(sent_ids) - answered

    # Drain the queue with a real worker.
    worker_env = {**env, "STRIPE_API_BASE": stand_in}
    worker = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "newsroom",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            "2",
            "-Q",
            "celery",
            "--loglevel",
            "WARNING",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=worker_env,
    )
    drain_started = time.monotonic()
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            waiting = ours.filter(outcome=StripeEvent.Outcome.RECEIVED).count()
            if not waiting:
                break
            time.sleep(0.5)
        drained_in = time.monotonic() - drain_started
    finally:
        stop([worker])
        stand_in_server.shutdown()

    outcomes = dict(ours.values_list("outcome").annotate(n=Count("id")))
    gift_ids = [events[e]["gift"] for e in stored]
    paid = Gift.objects.filter(pk__in=gift_ids, status=Gift.Status.PAID)
    paid_count = paid.count()
    paid_sum = paid.aggregate(total=Sum("amount_cents"))["total"] or 0
    expected_sum = sum(events[e]["amount"] for e in stored)
    unsent_paid = (
        Gift.objects.filter(
            donor_email__contains=f"{tag}t",
            donor_email__endswith="@webhooks.bench",
            status=Gift.Status.PAID,
        )
        .exclude(pk__in=gift_ids)
        .count()
    )
    new_gifts = Gift.objects.filter(
        stripe_checkout_session_id__startswith=f"cs_bench_{tag}_"
    ).count() - len(events)
    distinct_rate = len(stored) / args.seconds

    lost = len(distinct_sent) - len(stored)
    figures = {
        "seconds": args.seconds,
        "connections": args.connections,
        "gunicorn_workers": args.workers,
        "load_before": load_before,
        "requests_sent": len(sent_ids),
        "requests_answered": answered,
        "answered_200": ok,
        "events_per_second": result["rps"],
        "floor_rps_before_after": [round(f) for f in floors],
        "share_of_floor": round(result["rps"] / floor, 3),
        # Where the cores went: CPU ms a request in gunicorn (workers and arbiter), in
        # PostgreSQL and in wrk, for the first floor run and for the events.
        "cpu_ms_per_request_floor": floor_cpu,
        "cpu_ms_per_request_events": events_cpu,
        "distinct_events_per_second": distinct_rate,
        "p50_ms": result["p50_ms"],
        "p99_ms": result["p99_ms"],
        "non_2xx": result["non_2xx"],
        "socket_errors": result["socket_errors"],
        "duplicate_share_sent": duplicates_sent / max(1, len(sent_ids)),
        "distinct_events_sent": len(distinct_sent),
        "distinct_events_stored": len(stored),
        "stored_not_sent": len(stored - distinct_sent),
        "sent_not_stored": lost,
        "in_flight_when_wrk_stopped": in_flight,
        "outcomes": outcomes,
        "worker_drained_in_s": round(drained_in, 1),
        "gifts_paid": paid_count,
        "gifts_paid_sum_cents": paid_sum,
        "expected_sum_cents": expected_sum,
        "gifts_paid_that_were_never_sent": unsent_paid,
        "gifts_created_by_events": new_gifts,
    }
    print(
        f"\nwebhooks: wrk {threads} threads x {args.connections} connections x {args.seconds} s, "
        f"{args.workers} gunicorn workers (load before {load_before})"
    )
    for key, value in figures.items():
        print(f"{key:34} {value:,.3f}" if isinstance(value, float) else f"{key:34} {value}")
    verdict = (
        ok == answered
        and result["non_2xx"] == 0
        and result["socket_errors"] == 0
        and not figures["stored_not_sent"]
        and lost <= in_flight
        and paid_count == len(stored)
        and paid_sum == expected_sum
        and not unsent_paid
        and new_gifts == 0
        and outcomes.get(StripeEvent.Outcome.PROCESSED, 0) == len(stored)
    )
    figures["verified"] = verdict
    share = figures["share_of_floor"]
    print(f"{'target: >= 60% of the floor':34} {share:.0%} {'met' if share >= 0.6 else 'NOT met'}")
    print(f"{'none lost, none counted twice':34} {'yes' if verdict else 'NO'}")
    write_result("webhooks", figures)
    if not verdict:
        sys.exit(1)


if __name__ == "__main__":
    main()
