"""A slow fake ESP for real-worker tests: an anymail backend that records each recipient.

Selected in a worker process with EMAIL_BACKEND=tests.subscriptions.digest.slow_esp.EmailBackend.
Each call sleeps SLOW_ESP_SECONDS (half before the ESP "accepts" the batch, half after,
like a request and its response on the wire), then appends every recipient to the Redis
list SLOW_ESP_KEY at SLOW_ESP_REDIS_URL, so a test can count who got what.
"""

from __future__ import annotations

import os
import time
import uuid

import redis
from anymail.backends.test import EmailBackend as AnymailTestBackend
from anymail.message import AnymailRecipientStatus


class EmailBackend(AnymailTestBackend):
    esp_name = "SlowFake"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.delay = float(os.environ.get("SLOW_ESP_SECONDS", "0.2"))
        self.key = os.environ.get("SLOW_ESP_KEY", "slow-esp:sent")
        self.redis = redis.Redis.from_url(
            os.environ.get("SLOW_ESP_REDIS_URL", "redis://127.0.0.1:6379/0")
        )

    def post_to_esp(self, payload, message):
        time.sleep(self.delay / 2)
        recipients = list(payload.recipient_emails)
        if recipients:
            self.redis.rpush(self.key, *recipients)
        time.sleep(self.delay / 2)
        message_id = f"<{uuid.uuid4().hex}@slow-esp.example>"
        return {
            "recipient_status": {
                email: AnymailRecipientStatus(message_id=message_id, status="queued")
                for email in recipients
            }
        }
