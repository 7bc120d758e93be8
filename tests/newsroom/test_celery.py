"""A worker process loads what its tasks use, not every page's and webhook's libraries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# What `celery worker` does before its first task: Django's checks (Celery's Django
# fixup runs them, and they load the URL conf), then every app's task module; and a
# task's reverse() loads the URL conf too.
WORKER_START = """
import json, sys
import django
django.setup()
from django.core.checks import run_checks
from django.urls import reverse
from newsroom.celery import app
app.loader.import_default_modules()
run_checks()
reverse("home")
print(json.dumps(sorted(sys.modules)))
"""


def test_a_worker_loads_no_email_provider_webhook_or_qr_code_library():
    result = subprocess.run(
        [sys.executable, "-c", WORKER_START],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout))
    assert {"subscriptions.digest.tasks", "donations.tasks", "newsroom.urls"} <= loaded
    # svix: Resend's webhook (with pydantic and httpx); boto3: Amazon SES's; qrcode (and
    # PIL): the authenticator set-up's QR code.
    assert {"svix", "boto3", "qrcode"} & loaded == set()
