"""Writes of the subscriptions app: one transaction each, keyword-only arguments.

One module per stage a reader goes through: `consent` (the wording agreed to and the
record of each action), `signup` (the request, the confirmation email and its reminder,
confirming), `preferences` (newsletters, follows, time zone, pauses), `leaving`
(unsubscribing, the suppression list, deleting a reader) and `tracking` (what the ESP
reports: bounces, complaints, unsubscribes). Callers import from here.
"""

from __future__ import annotations

from subscriptions.services.consent import (
    RequestMeta,
    consent_document,
    consent_text_current,
    consent_text_for_version,
    consent_text_store,
    consent_version_shown,
)
from subscriptions.services.leaving import (
    subscriber_delete,
    subscription_unsubscribe,
    suppression_add,
    suppression_remove,
    unsubscribe_by_mail,
)
from subscriptions.services.preferences import (
    MAX_FOLLOWS,
    PAUSE_DAYS,
    FollowRefs,
    follow_set,
    follows_merge,
    is_time_zone,
    preferences_update,
    subscriber_pause,
    subscriber_resume,
    time_zones,
    valid_time_zone,
)
from subscriptions.services.signup import (
    CONFIRMATION_INTERVAL,
    REMINDER_AFTER,
    SIGNUP_TASK,
    confirmation_email_send,
    confirmation_reminders_send,
    normalize_email,
    subscription_confirm,
    subscription_request,
    subscription_request_process,
)
from subscriptions.services.tracking import (
    SOFT_BOUNCE_LIMIT,
    SOFT_BOUNCE_WINDOW,
    TRACKING_HANDLERS,
    TRACKING_TASK,
    tracking_event_process,
    tracking_event_record,
)

__all__ = [
    "CONFIRMATION_INTERVAL",
    "MAX_FOLLOWS",
    "PAUSE_DAYS",
    "REMINDER_AFTER",
    "SIGNUP_TASK",
    "SOFT_BOUNCE_LIMIT",
    "SOFT_BOUNCE_WINDOW",
    "TRACKING_HANDLERS",
    "TRACKING_TASK",
    "FollowRefs",
    "RequestMeta",
    "confirmation_email_send",
    "confirmation_reminders_send",
    "consent_document",
    "consent_text_current",
    "consent_text_for_version",
    "consent_text_store",
    "consent_version_shown",
    "follow_set",
    "follows_merge",
    "is_time_zone",
    "normalize_email",
    "preferences_update",
    "subscriber_delete",
    "subscriber_pause",
    "subscriber_resume",
    "subscription_confirm",
    "subscription_request",
    "subscription_request_process",
    "subscription_unsubscribe",
    "suppression_add",
    "suppression_remove",
    "time_zones",
    "tracking_event_process",
    "tracking_event_record",
    "unsubscribe_by_mail",
    "valid_time_zone",
]
