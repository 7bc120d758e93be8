"""The admin dashboard over a million gifts: how long its queries and its page take.

Seeds (once) a PostgreSQL database with 1,000,000 gifts over three years, 40,000
recurring plans, 20 appeals, 200,000 subscriptions to three newsletters and 30 editions
with their deliveries and tracking events, all with INSERT ... SELECT generate_series.
Then, several times, times each figure of `staff.dashboard` and the whole admin
front page through Django's test client (signed in as a superuser), and prints the
median and the slowest run with the number of queries.

    python bench/dashboard.py                        # 1,000,000 gifts, 7 runs
    python bench/dashboard.py --gifts 200000 --runs 5
    python bench/dashboard.py --explain              # EXPLAIN ANALYZE of each query too

Needs PostgreSQL (the default address below is this machine's).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gifts", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/newsroom_bench_dash"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument(
        "--explain", action="store_true", help="print EXPLAIN ANALYZE of each query"
    )
    return parser.parse_args()


SEED_SQL = [
    # 20 appeals, started over the last two years; the last six still running.
    """
    INSERT INTO donations_appeal (name, headline, body, cta_label, image, image_alt, placement,
        after_paragraph, starts_at, ends_at, active, priority, audience, amounts_one_time,
        amounts_monthly, amounts_annual, default_frequency, goal_cents, impressions, clicks,
        checkouts_started, created_at)
    SELECT 'Bench appeal ' || n, 'Readers pay for this reporting', 'Give today.', 'Give', '', '',
        'site_banner', 3, now() - (n * interval '36 days'),
        CASE WHEN n > 6 THEN now() - (n * interval '36 days') + interval '30 days' END,
        n <= 6, 100, 'everyone', '[2500]', '[1000]', '[10000]', 'monthly', NULL,
        400000 + n * 1000, 9000 + n * 50, 2500 + n * 10, now()
    FROM generate_series(1, 20) AS n
    """,
    # 40,000 plans: 90% active, 5% past due (with a failure notice), 5% cancelled.
    """
    INSERT INTO donations_recurringplan (stripe_subscription_id, stripe_customer_id, donor_email,
        donor_name, frequency, amount_cents, currency, status, appeal_id, created_at, canceled_at,
        stripe_state_at)
    SELECT 'sub_bench_' || n, 'cus_bench_' || n, 'donor' || (n % 200000) || '@bench.example', '',
        CASE WHEN n % 10 = 0 THEN 'annual' ELSE 'monthly' END,
        CASE WHEN n % 10 = 0 THEN 12000 ELSE 1000 + (n % 5) * 500 END, 'usd',
        CASE WHEN n % 20 = 1 THEN 'past_due' WHEN n % 20 = 2 THEN 'canceled' ELSE 'active' END,
        NULL, now() - ((n % 1000) * interval '1 day'), NULL, 0
    FROM generate_series(1, 40000) AS n
    """,
    """
    INSERT INTO donations_paymentfailurenotice (stripe_invoice_id, plan_id, created_at, sent_at)
    SELECT 'in_bench_' || id, id, now() - ((id % 20) * interval '1 day'), now()
    FROM donations_recurringplan WHERE status = 'past_due'
    """,
    # The gifts: three years, 70% one-time, 25% monthly, 5% annual; 92% paid, 2% partly
    # refunded, 2% refunded, 4% abandoned; 60% from an appeal.
    """
    INSERT INTO donations_gift (status, frequency, amount_cents, fee_cents, currency,
        refunded_cents, donor_email, donor_name, anonymous, dedication, honoree_name,
        honoree_email, plan_id, appeal_id, placement, article_id, utm,
        stripe_checkout_session_id, stripe_invoice_id, stripe_payment_intent_id,
        stripe_charge_id, stripe_customer_id, card_last4, created_at, paid_at, error)
    SELECT
        CASE WHEN n % 50 = 0 THEN 'partially_refunded' WHEN n % 50 = 1 THEN 'refunded'
             WHEN n % 25 = 2 THEN 'abandoned' ELSE 'paid' END,
        CASE WHEN n % 20 = 0 THEN 'annual' WHEN n % 4 = 1 THEN 'monthly' ELSE 'one_time' END,
        1000 + (n % 40) * 250, 0, 'usd',
        CASE WHEN n % 50 = 0 THEN 500 WHEN n % 50 = 1 THEN 1000 + (n % 40) * 250 ELSE 0 END,
        'donor' || (n % 200000) || '@bench.example', 'Bench Donor', n % 9 = 0, '', '', '', NULL,
        CASE WHEN n % 5 < 3 THEN (SELECT min(id) FROM donations_appeal) + n % 20 END,
        'site_banner', NULL, '{}', '', '', '', '', '', '', paid,
        CASE WHEN n % 25 = 2 THEN NULL ELSE paid END, ''
    FROM (
        SELECT n, now() - ((n::bigint * 94608000 / %(gifts)s) * interval '1 second') AS paid
        FROM generate_series(1, %(gifts)s) AS n
    ) AS g
    """,
    """
    INSERT INTO subscriptions_newsletter (name, slug, description, cadence, send_hour, language,
        active, top_stories_count, section_cap, created_at)
    SELECT name, slug, '', 'daily', 6, 'en', true, 3, 3, now()
    FROM (VALUES ('Bench Daily', 'bench-daily'), ('Bench Weekly', 'bench-weekly'),
                 ('Bench Business', 'bench-business')) AS v(name, slug)
    """,
    """
    INSERT INTO subscriptions_subscriber (email, name, time_zone, created_at, confirmed_at,
        language, public_id)
    SELECT 'reader' || n || '@bench.example', '', 'Asia/Jerusalem',
        now() - ((n % 400) * interval '1 day'),
        now() - ((n % 400) * interval '1 day') + interval '1 hour', 'en', gen_random_uuid()
    FROM generate_series(1, 150000) AS n
    """,
    # 200,000 subscriptions: 85% active, 10% unsubscribed, 5% never confirmed.
    """
    INSERT INTO subscriptions_subscription (subscriber_id, newsletter_id, status, created_at,
        confirmed_at, unsubscribed_at)
    SELECT s.id, nl.id,
        CASE WHEN s.id % 20 = 0 THEN 'pending' WHEN s.id % 10 = 1 THEN 'unsubscribed'
             ELSE 'active' END,
        s.created_at,
        CASE WHEN s.id % 20 = 0 THEN NULL ELSE s.confirmed_at END,
        CASE WHEN s.id % 10 = 1
             THEN LEAST(s.confirmed_at + ((s.id % 90) * interval '1 day'), now()) END
    FROM subscriptions_subscriber s
    JOIN subscriptions_newsletter nl
      ON nl.slug = 'bench-daily' OR (nl.slug = 'bench-weekly' AND s.id % 3 = 0)
    WHERE s.email LIKE '%%@bench.example'
    """,
    """
    INSERT INTO subscriptions_consentrecord (subscriber_id, newsletter_id, action, at, ip_address,
        user_agent, source, consent_text_id)
    SELECT subscriber_id, newsletter_id, 'unsubscribe', unsubscribed_at, NULL, '', 'bench', NULL
    FROM subscriptions_subscription WHERE unsubscribed_at IS NOT NULL
    """,
    # 30 daily editions, each delivered to 20,000 readers, with opens, clicks and bounces.
    """
    INSERT INTO subscriptions_edition (newsletter_id, date, state, composed_at, cutoff_start,
        cutoff_end, contents, skip_reason)
    SELECT nl.id, (now() - d * interval '1 day')::date, 'sent', now() - d * interval '1 day',
        NULL, now() - d * interval '1 day', '{}', ''
    FROM subscriptions_newsletter nl, generate_series(0, 29) AS d WHERE nl.slug = 'bench-daily'
    """,
    """
    INSERT INTO subscriptions_delivery (edition_id, subscriber_id, batch_id, state, esp_message_id,
        sent_at, error)
    SELECT e.id, s.id, NULL, CASE WHEN s.id % 500 = 0 THEN 'in_doubt' ELSE 'sent' END, '',
        e.composed_at, ''
    FROM subscriptions_edition e
    JOIN subscriptions_subscriber s ON s.id < (SELECT min(id) FROM subscriptions_subscriber) + 20000
    """,
    """
    INSERT INTO subscriptions_trackingevent (esp_event_id, event_type, esp_name, recipient,
        message_id, edition_id, reject_reason, description, occurred_at, received_at, payload,
        processed_at, outcome, error)
    SELECT 'ev_' || d.id || '_' || t.kind, t.kind, 'bench',
        'reader' || d.subscriber_id || '@bench.example',
        '', d.edition_id, '', '', d.sent_at, d.sent_at, '{}', NULL, '', ''
    FROM subscriptions_delivery d
    JOIN (VALUES ('opened', 3), ('clicked', 11), ('bounced', 97), ('complained', 991))
      AS t(kind, every)
      ON d.id %% t.every = 0
    """,
]


def seed(args: argparse.Namespace) -> None:
    from django.db import connection, transaction

    from donations.models import Gift

    have = Gift.objects.count()
    if have == args.gifts:
        print(f"seed: {have:,} gifts already there")
        return
    if have:
        sys.exit(f"the database holds {have:,} gifts, not {args.gifts:,}: drop it and run again")
    start = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in SEED_SQL:
            sql = statement.replace("%(gifts)s", str(args.gifts))
            cursor.execute(sql.replace("%%", "%"))
    with connection.cursor() as cursor:
        # What autovacuum does to a live table: statistics, and the visibility map that
        # lets PostgreSQL answer from an index alone. A fresh bulk load has neither.
        cursor.execute("VACUUM ANALYZE")
    print(f"seed: {args.gifts:,} gifts and the rest in {time.perf_counter() - start:.1f} s")


def timed(function, runs: int) -> tuple[list[float], int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    durations, queries = [], 0
    for _ in range(runs):
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            function()
            durations.append(time.perf_counter() - start)
        queries = len(captured.captured_queries)
    return durations, queries


def main() -> None:
    args = parse_args()
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "newsroom.settings",
            # The laptop's settings with PostgreSQL and Redis: no secrets, a test client.
            "DJANGO_DEBUG": "1",
            "DATABASE_URL": args.database_url,
            "REDIS_URL": args.redis_url,
            "CACHE_KEY_PREFIX": "bench-dashboard",
            "LOG_LEVEL": "WARNING",
        }
    )
    sys.path.insert(0, str(ROOT))
    from bench.common import ensure_database

    ensure_database(args.database_url)

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment
    from django.urls import reverse
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from staff import dashboard

    call_command("migrate", verbosity=0)
    seed(args)
    setup_test_environment()

    user, _ = get_user_model().objects.get_or_create(
        username="bench-director", defaults={"is_staff": True, "is_superuser": True}
    )
    device = TOTPDevice.objects.filter(user=user).first() or TOTPDevice.objects.create(
        user=user, name="bench", confirmed=True
    )
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()

    def page() -> None:
        response = client.get(reverse("admin:index"))
        assert response.status_code == 200, response.status_code
        assert b"Gifts and revenue" in response.content

    figures = [
        ("gifts and revenue per day", lambda: dashboard.gifts_by_day()),
        ("recurring revenue, failed renewals", lambda: dashboard.recurring_summary()),
        ("appeal funnels", lambda: dashboard.appeal_funnels()),
        ("subscribers per newsletter", lambda: dashboard.newsletter_growth()),
        ("last editions", lambda: dashboard.last_editions()),
        ("all figures (dashboard_for)", lambda: dashboard.dashboard_for(user)),
        ("admin front page (test client)", page),
    ]
    if args.explain:
        for name, function in figures[:5]:
            with CaptureQueriesContext(connection) as captured:
                function()
            for query in captured.captured_queries:
                with connection.cursor() as cursor:
                    cursor.execute("EXPLAIN ANALYZE " + query["sql"])
                    print(
                        f"--- {name}\n{query['sql'][:300]}\n"
                        + "\n".join(row[0] for row in cursor.fetchall())
                    )

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM donations_gift WHERE paid_at >= now() - interval '90 days'"
        )
        recent = cursor.fetchone()[0]
    print(
        f"gifts {args.gifts:,} ({recent:,} in the last 90 days), "
        f"runs {args.runs} (after one warm-up)"
    )
    print(f"{'figure':<34} {'p50 ms':>8} {'max ms':>8} {'queries':>8}")
    for name, function in figures:
        function()  # warm-up: connection, caches, template loading
        durations, queries = timed(function, args.runs)
        print(
            f"{name:<34} {statistics.median(durations) * 1000:>8.1f} "
            f"{max(durations) * 1000:>8.1f} {queries:>8}"
        )
    print(
        f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}"
    )


if __name__ == "__main__":
    main()
