"""The test suite's settings: the laptop's (DJANGO_DEBUG on), whatever the shell exports.

Production settings are tested in subprocesses that set their own environment
(tests/newsroom/test_settings.py, test_deploy_check.py).
"""

from __future__ import annotations

import os

# Before the settings are read; the worker processes the suite starts inherit it too.
os.environ["DJANGO_DEBUG"] = "1"

from newsroom.settings import *  # noqa: F403

# Every failure logged, and every /healthz request checked afresh: tests that are about
# the throttle and the health cache set their own.
FAULT_LOG_SECONDS = 0
HEALTHZ_CACHE_SECONDS = 0
