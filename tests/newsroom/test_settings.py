from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "a-long-production-secret-for-this-test-only-0123456789",
    "STRIPE_SECRET_KEY": "sk_test_x",
    "STRIPE_WEBHOOK_SECRET": "whsec_x",
    "ANYMAIL_WEBHOOK_SECRET": "user:pass",
}


def load_settings(**overrides: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in PRODUCTION}
    env.update({k: v for k, v in {**PRODUCTION, **overrides}.items() if v is not None})
    env = {k: v for k, v in env.items() if v != "<unset>"}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('loaded')"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "newsroom.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_settings_load_with_every_secret():
    result = load_settings()

    assert result.returncode == 0, result.stderr
    assert "loaded" in result.stdout


def test_a_missing_secret_in_production_names_the_variable():
    for name in ("DJANGO_SECRET_KEY", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"):
        result = load_settings(**{name: "<unset>"})

        assert result.returncode != 0
        assert "ImproperlyConfigured" in result.stderr
        assert f"{name} is not set" in result.stderr


def test_the_laptop_defaults_need_no_secret():
    result = load_settings(
        DJANGO_DEBUG="<unset>",
        DJANGO_SECRET_KEY="<unset>",
        STRIPE_SECRET_KEY="<unset>",
        STRIPE_WEBHOOK_SECRET="<unset>",
        ANYMAIL_WEBHOOK_SECRET="<unset>",
    )

    assert result.returncode == 0, result.stderr
