"""The one settings module: every value comes from the environment.

The defaults run on a laptop with nothing installed (SQLite, in-process Celery,
emails printed to the console). Production differs only by environment
variables; the README lists each of them.
"""

from __future__ import annotations

import importlib.util
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONCE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


# Off unless asked for: a deployment that forgets the variable gets production's
# settings and stops at the first missing secret, never debug pages and laptop keys.
# scripts/run and the test suite's settings turn it on.
DEBUG = env_bool("DJANGO_DEBUG", False)


def secret(name: str, default: str, how: str) -> str:
    """Read a value production must set; outside DEBUG a missing one stops the process."""
    value = env(name)
    if value:
        return value
    if DEBUG:
        return default
    raise ImproperlyConfigured(
        f"{name} is not set. {how} On a laptop, DJANGO_DEBUG=1 uses a default instead."
    )


# --- core -------------------------------------------------------------------

SECRET_KEY = secret(
    "DJANGO_SECRET_KEY",
    "insecure-laptop-only-key-change-me-0123456789abcdefghijklmnopqrstuvwxyz",
    "Set it to a long random string, e.g. "
    "`python -c 'import secrets; print(secrets.token_urlsafe(64))'`.",
)
# Keys retired by a rotation, still accepted for what they signed (readers' links in
# emails already sent, sessions) until those expire; new signatures use SECRET_KEY.
SECRET_KEY_FALLBACKS = env_list("DJANGO_SECRET_KEY_FALLBACKS")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
# Every absolute URL the site writes (pages, feeds, sitemaps, emails) is on it, never on
# the request's host: production must say what its public address is.
SITE_URL = secret(
    "SITE_URL",
    "http://localhost:8000",
    "Set it to the site's public address, e.g. `https://news.example.org`.",
).rstrip("/")
if not SITE_URL.startswith(("https://", "http://")):
    raise ImproperlyConfigured(
        f"SITE_URL is {SITE_URL!r}. Set it to an address with its scheme, "
        "e.g. `https://news.example.org`."
    )
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", SITE_URL)

INSTALLED_APPS = [
    # First, so that their templates (the admin login with a code field, the front page's
    # dashboard) override the admin's.
    "newsroom",
    "staff",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.sitemaps",
    "django.contrib.postgres",
    "anymail",
    "csp",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "donations",
    "subscriptions",
    "subscriptions.digest",
]

MIDDLEWARE = [
    # Before anything reads the body: an oversized request is answered 413 unread.
    "newsroom.security.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Its process_exception runs after every other's: a database error left unhandled
    # anywhere in a view becomes the 503 page.
    "newsroom.unavailable.DatabaseUnavailableMiddleware",
    # Stripe's webhook (MACHINE_ENDPOINTS) is answered here: what follows serves people.
    "newsroom.machines.MachineEndpointMiddleware",
    # A policy for pages a browser shows; a webhook's "ok" needs none.
    "newsroom.security.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before the session: a link's reader token becomes a cookie and a clean redirect.
    "donations.middleware.ReaderTokenMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The URL's prefix names the language (`/ar/`); never the cookie or Accept-Language.
    "newsroom.i18n.UrlLanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    # A view that cannot go on without a service that is down answers 503, not 500.
    "newsroom.faults.ServiceUnavailableMiddleware",
    # Django's ConditionalGetMiddleware, letting a view's own 304 through untouched.
    "newsroom.caching.NotModifiedFirstMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Staff pages in the language each staff member chose (after the user is known).
    "staff.middleware.StaffLanguageMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "newsroom.security.StaffTwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A page held in this process's memory, answered before the URL is resolved, with
    # every other middleware's headers (axes's only acts on a login).
    "newsroom.caching.StoredPageMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out username and address before a password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "newsroom.urls"
# Paths only machines call, and their views: answered by newsroom.machines ahead of the
# middleware that serve readers and staff, and routed outside the language prefixes.
# Stripe's dashboard holds this URL.
MACHINE_ENDPOINTS = {"/webhooks/stripe/": "donations.webhooks.stripe_webhook"}
WSGI_APPLICATION = "newsroom.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "newsroom.context_processors.site",
            ],
        },
    },
]

# --- data -------------------------------------------------------------------

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USING_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
# The one place that tells a web process from the others: newsroom/wsgi.py (gunicorn's
# entry point) sets it to "web"; workers, beat and management commands leave it unset.
WEB_PROCESS = env("NEWSROOM_PROCESS") == "web"
# Seconds to open a connection, for every process: a database that accepts connections
# and never answers fails fast instead of holding a gunicorn worker until it is killed.
DATABASE_CONNECT_TIMEOUT = env_int("DATABASE_CONNECT_TIMEOUT", 3)
# Seconds one SQL statement may run before PostgreSQL cancels it (0: no limit). A page
# must answer or fail fast (503); a task may scan whole tables, a migration rewrite one.
DATABASE_STATEMENT_TIMEOUT = env_int("DATABASE_STATEMENT_TIMEOUT", 5)
DATABASE_TASK_STATEMENT_TIMEOUT = env_int("DATABASE_TASK_STATEMENT_TIMEOUT", 300)
if USING_POSTGRES:
    statement_timeout = (
        DATABASE_STATEMENT_TIMEOUT if WEB_PROCESS else DATABASE_TASK_STATEMENT_TIMEOUT
    )
    options = DATABASES["default"].get("OPTIONS", {})
    # After any server options DATABASE_URL gives (`?options=-c search_path=...`).
    server_options = f"{options.get('options', '')} -c statement_timeout={statement_timeout}s"
    DATABASES["default"]["OPTIONS"] = {
        **options,
        "connect_timeout": DATABASE_CONNECT_TIMEOUT,
        "options": server_options.strip(),
        # A server gone from the network sends no reset and cannot cancel its statement:
        # the kernel gives the connection up after about ten seconds without an answer
        # (libpq "keepalives" and "tcp_user_timeout" parameters).
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "tcp_user_timeout": 10_000,
    }

REDIS_URL = env("REDIS_URL")
# The cache only speeds pages up (newsroom.redis_cache): a Redis slower than this is
# treated as down, pages are rendered from the database meanwhile, and Redis is left
# alone for REDIS_CACHE_PAUSE_SECONDS before it is tried again.
REDIS_CACHE_TIMEOUT_SECONDS = env_float("REDIS_CACHE_TIMEOUT_SECONDS", 0.25)
REDIS_CACHE_PAUSE_SECONDS = env_float("REDIS_CACHE_PAUSE_SECONDS", 1.0)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "newsroom.redis_cache.FailSoftRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", "newsroom"),
            "OPTIONS": {
                "socket_connect_timeout": REDIS_CACHE_TIMEOUT_SECONDS,
                "socket_timeout": REDIS_CACHE_TIMEOUT_SECONDS,
                "pause_after_error": REDIS_CACHE_PAUSE_SECONDS,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Anonymous pages are cached whole for this many seconds, server-side and by a CDN
# (`s-maxage`); publishing or editing an article makes them fresh at once.
PAGE_CACHE_SECONDS = env_int("PAGE_CACHE_SECONDS", 300)
# How long a cached page is kept past its freshness, to be served (marked stale) while
# the database cannot be reached; pages with a query string are not kept past it.
PAGE_CACHE_STALE_SECONDS = env_int("PAGE_CACHE_STALE_SECONDS", 86_400)
# Each web process keeps the pages it served in memory and reads the content version from
# the cache at most this often: a change made in another process is served by this one
# within this bound (newsroom.caching). 0 reads the version on every request.
PAGE_CACHE_LOCAL_SECONDS = env_float("PAGE_CACHE_LOCAL_SECONDS", 1.0)
# The most pages, and bytes of them, each process keeps; the least recently used go first.
PAGE_CACHE_LOCAL_ENTRIES = env_int("PAGE_CACHE_LOCAL_ENTRIES", 2000)
PAGE_CACHE_LOCAL_BYTES = env_int("PAGE_CACHE_LOCAL_BYTES", 64 * 1024 * 1024)
# Dotted path to a callable(request) -> str: the part of a cached page's key that differs
# between readers (an appeal dismissed, a recent gift); empty: every reader shares a page.
PAGE_CACHE_READER_KEY = "donations.selectors.reader_state_key"
# Dotted paths to callables(now) -> datetime | None: when something that pages show next
# starts or stops by itself (an appeal's run). The content version moves then, as it does
# when a scheduled article's time comes, so cached pages change at that very time.
PAGE_CACHE_SCHEDULES = ["donations.selectors.next_appeal_change"]
# How long a part of a page (an article card, a listing, the navigation) is kept in each
# process for the content version it was rendered at; an edit through the services shows
# at once, a change that bypasses them (an SQL update) within this, as on cached pages
# within PAGE_CACHE_SECONDS. 0 keeps none.
PAGE_FRAGMENT_SECONDS = env_int("PAGE_FRAGMENT_SECONDS", 300)

# --- celery -----------------------------------------------------------------

CELERY_BROKER_URL = env("CELERY_BROKER_URL")
# Without a broker every task runs in-process, at the moment it is enqueued.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
# A request that queues a task waits at most about this long for a broker that hangs or
# refuses (kombu's defaults are no socket timeout and a 4 s connect timeout, tried again).
CELERY_BROKER_TIMEOUT_SECONDS = env_float("CELERY_BROKER_TIMEOUT_SECONDS", 1.0)
CELERY_BROKER_CONNECTION_TIMEOUT = CELERY_BROKER_TIMEOUT_SECONDS
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # A task taken by a worker that dies is redelivered after this many seconds.
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600),
    "socket_connect_timeout": CELERY_BROKER_TIMEOUT_SECONDS,
    "socket_timeout": CELERY_BROKER_TIMEOUT_SECONDS,
}
# One try: each of Celery's three retries would wait the timeout again (a hung broker held
# a publish 3 s with one retry). Tasks a request must not lose go through the outbox.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 0}
CELERY_TASK_ROUTES = {
    "subscriptions.digest_send_batch": {"queue": "digests"},
    "subscriptions.digest_send_batches": {"queue": "digests"},
}
CELERY_BEAT_SCHEDULE = {
    "outbox-send-pending": {
        "task": "newsroom.outbox_send_pending",
        "schedule": 60.0,
    },
    # The outbox makes sure the broker took each event's task; this makes sure it ran.
    "requeue-stripe-events": {
        "task": "donations.stripe_events_requeue_received",
        "schedule": 60.0,
    },
    "flush-appeal-counters": {
        "task": "donations.appeal_counters_flush",
        "schedule": 60.0,
    },
    "reconcile-stripe": {
        "task": "donations.reconcile_stripe",
        "schedule": crontab(hour=3, minute=15),
    },
    "giving-statements": {
        "task": "donations.giving_statements_send",
        "schedule": crontab(month_of_year=1, day_of_month=5, hour=9, minute=0),
    },
    "confirmation-reminders": {
        "task": "subscriptions.confirmation_reminders_send",
        "schedule": crontab(minute="*/15"),
    },
    "plan-digests": {
        "task": "subscriptions.digest_plan",
        "schedule": crontab(minute="*/5"),
    },
    # In-doubt batches settled from the ESP's own log (Postmark, Mailgun).
    "settle-in-doubt-digest-batches": {
        "task": "subscriptions.digest_settle_in_doubt",
        "schedule": crontab(minute="*/10"),
    },
}

# --- email ------------------------------------------------------------------

EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", str(BASE_DIR / "var" / "emails"))
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
# Seconds an SMTP connection may wait on the server (connecting, and each answer);
# Django's default is none, and a server that stops answering would hold a task for good.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20)
# SMTP connections a digest worker process keeps open and sends over at once, one
# message in flight on each (subscriptions/digest/esp_smtp.py); mind the server's limit.
SMTP_CONNECTIONS = env_int("SMTP_CONNECTIONS", 4)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Mideast Daily <daily@newsroom.example>")
SERVER_EMAIL = env("SERVER_EMAIL", DEFAULT_FROM_EMAIL)
# The mailbox that receives `mailto:` unsubscribe requests (RFC 2369 List-Unsubscribe).
UNSUBSCRIBE_MAILTO = env("UNSUBSCRIBE_MAILTO", "unsubscribe@newsroom.example")
# The ESP whose inbound webhook receives mail to UNSUBSCRIBE_MAILTO, as anymail names it
# ("postmark", "mailgun", ...). Empty: no mail is received, so List-Unsubscribe offers
# the https link only.
INBOUND_EMAIL_ESP = env("INBOUND_EMAIL_ESP").strip().lower()
# Dotted path to a callable(emails) -> set of those that must get no email (bounced,
# complained, deleted, or suppressed by staff), asked by newsroom.mail before each send.
EMAIL_SUPPRESSION_CHECK = (
    env("EMAIL_SUPPRESSION_CHECK") or "subscriptions.selectors.suppressed_among"
)

# Every ANYMAIL_* variable is handed to django-anymail as it is, e.g.
# ANYMAIL_MAILGUN_API_KEY, ANYMAIL_POSTMARK_SERVER_TOKEN, ANYMAIL_WEBHOOK_SECRET.
ANYMAIL = {
    key.removeprefix("ANYMAIL_"): value
    for key, value in os.environ.items()
    if key.startswith("ANYMAIL_") and value
}
ANYMAIL.setdefault(
    "WEBHOOK_SECRET",
    secret(
        "ANYMAIL_WEBHOOK_SECRET",
        "laptop:webhook",
        "Set it to `user:password`, the basic-auth credentials your ESP's tracking "
        "webhook is configured to send.",
    ),
)
# Resend signs each tracking webhook the Svix way (https://resend.com/docs/dashboard/webhooks/
# verify-webhooks-requests); anymail verifies that signature only when given the endpoint's
# signing secret, and otherwise takes any post with the basic-auth secret above, so a forged
# "bounced" or "complained" would suppress a reader. Required where Resend is the ESP.
# It reaches anymail as ANYMAIL["RESEND_SIGNING_SECRET"], with every ANYMAIL_* variable.
if EMAIL_BACKEND == "anymail.backends.resend.EmailBackend":
    secret(
        "ANYMAIL_RESEND_SIGNING_SECRET",
        "",
        "Set it to the signing secret (whsec_...) of the webhook endpoint in Resend's dashboard.",
    )
# Without svix, anymail's Resend view raises on every post, which newsroom/esp_webhooks.py
# answers 404: Resend would retry and then give up, and every bounce would be lost.
if ANYMAIL.get("RESEND_SIGNING_SECRET") and importlib.util.find_spec("svix") is None:
    raise ImproperlyConfigured(
        "ANYMAIL_RESEND_SIGNING_SECRET is set but the svix package, with which django-anymail "
        "checks Resend's signatures, is not installed: install django-anymail[resend]."
    )
# Seconds one call to the ESP's API may take to connect, and to answer (django-anymail's
# requests-based backends); its default would let a hung ESP hold a task for minutes.
ESP_CONNECT_TIMEOUT_SECONDS = env_int("ESP_CONNECT_TIMEOUT_SECONDS", 5)
ESP_READ_TIMEOUT_SECONDS = env_int("ESP_READ_TIMEOUT_SECONDS", 20)
ANYMAIL.setdefault("REQUESTS_TIMEOUT", (ESP_CONNECT_TIMEOUT_SECONDS, ESP_READ_TIMEOUT_SECONDS))
# Readers in one digest batch (one task, one claim); the digest sends a batch in calls of
# at most what its ESP takes (subscriptions/digest/esp.py: Postmark 500, SES 50, ...).
ESP_BATCH_SIZE = env_int("ESP_BATCH_SIZE", 500)
# How many ESP calls one digest task keeps in flight when it sends several small
# batches (readers of rare followed sets) together; mind the ESP's connection limit.
ESP_CONCURRENT_CALLS = env_int("ESP_CONCURRENT_CALLS", 4)
# Only to override how a merging ESP writes a per-recipient merge field (FIELD is
# replaced by the field's name): the digest knows each ESP's own syntax
# (subscriptions/digest/esp.py), and an anymail backend it does not know gets "{{FIELD}}".
ESP_MERGE_FIELD_FORMAT = env("ESP_MERGE_FIELD_FORMAT")

# --- stripe -----------------------------------------------------------------

STRIPE_SECRET_KEY = secret(
    "STRIPE_SECRET_KEY",
    "",
    "Set it to the secret key (sk_live_... or sk_test_...) from the Stripe dashboard.",
)
STRIPE_PUBLISHABLE_KEY = env("STRIPE_PUBLISHABLE_KEY")
STRIPE_WEBHOOK_SECRET = secret(
    "STRIPE_WEBHOOK_SECRET",
    "whsec_laptop_only",
    "Set it to the signing secret (whsec_...) of the webhook endpoint in Stripe.",
)
# Point the SDK at another API host (a local mock); empty means Stripe itself.
STRIPE_API_BASE = env("STRIPE_API_BASE")
# Seconds one call to Stripe may take (connecting, then waiting for the answer), and how
# many times a call that failed on the network is tried again: a donor waits at most
# about (1 + retries) x timeout before "We could not reach our payment processor".
STRIPE_TIMEOUT_SECONDS = env_int("STRIPE_TIMEOUT_SECONDS", 8)
STRIPE_MAX_NETWORK_RETRIES = env_int("STRIPE_MAX_NETWORK_RETRIES", 1)

# --- the organisation ---------------------------------------------------------

NEWSROOM_NAME = env("NEWSROOM_NAME", "The Levant Ledger")
ORG_LEGAL_NAME = env("ORG_LEGAL_NAME", "Levant Ledger Media Foundation, Inc.")
ORG_ADDRESS = env("ORG_ADDRESS", "1200 Harbour Street, Suite 4, Portland, ME 04101, USA")
ORG_TAX_ID = env("ORG_TAX_ID", "EIN 00-0000000")
THANK_YOU_SIGNER_NAME = env("THANK_YOU_SIGNER_NAME", "Miriam Haddad")
THANK_YOU_SIGNER_TITLE = env("THANK_YOU_SIGNER_TITLE", "Founder and President")

# --- donations --------------------------------------------------------------

DONATION_CURRENCY = env("DONATION_CURRENCY", "usd")
DONATION_MIN_CENTS = env_int("DONATION_MIN_CENTS", 500)
DONATION_MAX_CENTS = env_int("DONATION_MAX_CENTS", 2_500_000)
# What Stripe charges, so a donor can cover it: percent in basis points + fixed cents.
DONATION_FEE_BASIS_POINTS = env_int("DONATION_FEE_BASIS_POINTS", 290)
DONATION_FEE_FIXED_CENTS = env_int("DONATION_FEE_FIXED_CENTS", 30)
APPEAL_DISMISS_DAYS = env_int("APPEAL_DISMISS_DAYS", 7)
CHECKOUT_RATE_LIMIT_PER_IP = env("CHECKOUT_RATE_LIMIT_PER_IP", "10/10m")
CHECKOUT_RATE_LIMIT_PER_EMAIL = env("CHECKOUT_RATE_LIMIT_PER_EMAIL", "5/10m")
# Dotted path to a callable(request) -> bool that checks a CAPTCHA; empty is off.
CHECKOUT_CAPTCHA_CHECK = env("CHECKOUT_CAPTCHA_CHECK")
# Receipts, statements and "manage my giving" links come from this address.
DONATION_FROM_EMAIL = env("DONATION_FROM_EMAIL", f"{NEWSROOM_NAME} <giving@newsroom.example>")
# How long a "manage my giving" link works (it works once).
DONATION_MANAGE_LINK_MINUTES = env_int("DONATION_MANAGE_LINK_MINUTES", 60)
# Dotted path to a callable(email) -> bool: whether a reader gets the newsletter. The thanks
# page keeps it in the reader's cookie for appeal audiences; empty means nobody does.
DONATIONS_SUBSCRIBER_CHECK = "subscriptions.appeals.is_subscriber"

# --- subscriptions ----------------------------------------------------------

SUBSCRIPTIONS_CONFIRM_MAX_AGE_DAYS = env_int("SUBSCRIPTIONS_CONFIRM_MAX_AGE_DAYS", 7)

# --- web --------------------------------------------------------------------

# The site's language; with "ar" or "he" every page is laid out right-to-left.
# Articles and newsletters also carry their own language.
LANGUAGE_CODE = env("LANGUAGE_CODE", "en")
LANGUAGES = [("en", "English"), ("ar", "العربية"), ("he", "עברית")]
TIME_ZONE = env("TIME_ZONE", "Asia/Jerusalem")
USE_I18N = True
# Dates in each language's own words (Arabic and Hebrew month names come with Django);
# the newsroom's English style in newsroom/formats.
FORMAT_MODULE_PATH = ["newsroom.formats"]
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(BASE_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# A 10 MB form field is refused before it is read whole.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 200
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

LOGIN_URL = "admin:login"

# --- security (production is everything with DJANGO_DEBUG off) ----------------

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
SECURE_CONTENT_TYPE_NOSNIFF = True
# Other sites we link to (sources, partners, Stripe) learn only that a reader came from
# this origin, which outlets and funders use to credit a newsroom; a path never leaves
# the site, and paths carry readers' tokens (preferences, unsubscribe, "manage my
# giving"). `same-origin` would hide even the origin and gain nothing for readers.
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
X_FRAME_OPTIONS = "DENY"
if env("SECURE_PROXY_SSL_HEADER"):
    # e.g. "HTTP_X_FORWARDED_PROTO,https" behind a proxy that terminates TLS.
    SECURE_PROXY_SSL_HEADER = tuple(env_list("SECURE_PROXY_SSL_HEADER"))
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz(/live|/ready)?$"]

# Any request whose Content-Length is larger is answered 413 before its body is read:
# no public form or webhook needs more (a Stripe event is a few kilobytes). The admin
# takes photo uploads, hence its own, larger limit.
MAX_REQUEST_BODY_BYTES = env_int("MAX_REQUEST_BODY_BYTES", DATA_UPLOAD_MAX_MEMORY_SIZE)
ADMIN_MAX_REQUEST_BODY_BYTES = env_int("ADMIN_MAX_REQUEST_BODY_BYTES", 20 * 1024 * 1024)

# Where the admin lives; a path nobody guesses keeps the login page out of scanners' way.
ADMIN_URL = env("ADMIN_URL", "admin/").strip("/") + "/"

# Content Security Policy (django-csp 4,
# https://django-csp.readthedocs.io/en/latest/configuration.html).
# Scripts and styles come from our own static files only; the only other origin is
# Stripe's hosted Checkout and customer portal, which the donate and "manage my giving"
# forms are redirected to (form-action covers redirects after a submission).
STRIPE_CHECKOUT_ORIGINS = env_list(
    "STRIPE_CHECKOUT_ORIGINS", "https://checkout.stripe.com,https://billing.stripe.com"
)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", NONCE],
        "style-src": ["'self'", NONCE],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'", *STRIPE_CHECKOUT_ORIGINS],
        "frame-ancestors": ["'none'"],
    },
}

# Staff login: django-axes locks a username from one address out after this many
# failures in a row, for this many minutes
# (https://django-axes.readthedocs.io/en/latest/4_configuration.html).
AXES_FAILURE_LIMIT = env_int("STAFF_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("STAFF_LOGIN_COOLOFF_MINUTES", 30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "newsroom.security.lockout_response"
AXES_CLIENT_IP_CALLABLE = "newsroom.security.client_ip"
AXES_VERBOSE = False  # no banner on every command; lockouts are still logged
# The one setting for trusted proxies: how many are in front of the site (0: trust the
# connection's address only) and the header they write the client's address into, a list
# each appends to (X-Forwarded-For) or one address a CDN writes (HTTP_CF_CONNECTING_IP).
# newsroom.security.client_ip reads the address this way for every rate limit, consent
# record, audit entry and the staff lockout. SUBSCRIPTIONS_PROXY_HOPS is the deprecated
# name of CLIENT_IP_PROXY_HOPS, still read when the new name is unset.
CLIENT_IP_HEADER = env("CLIENT_IP_HEADER", "HTTP_X_FORWARDED_FOR")
CLIENT_IP_PROXY_HOPS = env_int("CLIENT_IP_PROXY_HOPS", env_int("SUBSCRIPTIONS_PROXY_HOPS", 0))

# Two-factor login: the issuer name staff see in their authenticator app.
OTP_TOTP_ISSUER = env("OTP_TOTP_ISSUER", NEWSROOM_NAME)
# Setting the app up takes a second channel (staff.services): a one-use link emailed to
# the account, or a one-use code an Admin issues; how long each works, and how often a
# signed-in staff member may ask for another link.
STAFF_ENROL_LINK_MINUTES = env_int("STAFF_ENROL_LINK_MINUTES", 30)
STAFF_ENROL_CODE_HOURS = env_int("STAFF_ENROL_CODE_HOURS", 24)
STAFF_ENROL_LINK_RATE = env("STAFF_ENROL_LINK_RATE", "3/15m")

# A failing service (Redis, the broker) is logged once per kind of failure per this many
# seconds, with the count of failures held back (newsroom.faults).
FAULT_LOG_SECONDS = env_int("FAULT_LOG_SECONDS", 60)
# /healthz/ready: each part's check is given this long, and its answer is kept in the
# process's memory this long, so a load balancer asking every second costs one check.
HEALTHZ_CHECK_TIMEOUT_SECONDS = env_float("HEALTHZ_CHECK_TIMEOUT_SECONDS", 0.3)
HEALTHZ_CACHE_SECONDS = env_float("HEALTHZ_CACHE_SECONDS", 1.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
