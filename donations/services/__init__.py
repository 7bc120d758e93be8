"""Writes of the donations app: keyword-only arguments, one transaction each.

One module per stage a gift goes through: `appeals` (what asks), `checkout` (the
pending gift and Stripe's page), `events` (Stripe's webhook events, stored and
dispatched), `gifts` (what Stripe reports, applied), `reconcile` (what a lost webhook
missed, from Stripe's records), `emails` (what donors are sent), `manage` (a donor's
sign-in link and portal) and `donors` (a donor's own data, anonymised on request).
Callers import from here.
"""

from __future__ import annotations

from donations.services.appeals import (
    appeal_cache_clear,
    appeal_count,
    appeal_counters_flush,
    appeal_delete,
    appeal_save,
)
from donations.services.checkout import (
    CheckoutUnavailable,
    GiftRequest,
    checkout_params,
    checkout_start,
)
from donations.services.donors import Anonymised, deleted_email, donor_anonymise
from donations.services.emails import (
    MANAGE_LINK_TASK,
    HonoreeOptOutInvalid,
    card_update_notice_send,
    giving_statement_send,
    giving_statements_send,
    honoree_notify,
    honoree_opt_out,
    honoree_opt_out_read,
    manage_link_request,
    manage_link_send,
    org_context,
    receipt_send,
)
from donations.services.events import (
    HANDLERS,
    stripe_event_accept,
    stripe_event_process,
    stripe_event_store,
    stripe_events_drain,
    stripe_events_queue,
    stripe_events_requeue_received,
    stripe_events_retry_waiting,
)
from donations.services.gifts import (
    RefundNotPossible,
    WaitingFor,
    gift_apply_charge_refunded,
    gift_apply_checkout_session,
    gift_apply_invoice_paid,
    gift_flag_dispute,
    gift_refund_request,
    plan_apply_subscription,
    plan_record_payment_failed,
)
from donations.services.manage import (
    ManageLinkInvalid,
    manage_token_make,
    manage_token_read,
    manage_token_use,
    portal_url,
)
from donations.services.reconcile import ReconcileWindowTooLong, stripe_reconcile

__all__ = [
    "HANDLERS",
    "MANAGE_LINK_TASK",
    "Anonymised",
    "CheckoutUnavailable",
    "GiftRequest",
    "HonoreeOptOutInvalid",
    "ManageLinkInvalid",
    "ReconcileWindowTooLong",
    "RefundNotPossible",
    "WaitingFor",
    "appeal_cache_clear",
    "appeal_count",
    "appeal_counters_flush",
    "appeal_delete",
    "appeal_save",
    "card_update_notice_send",
    "checkout_params",
    "checkout_start",
    "deleted_email",
    "donor_anonymise",
    "gift_apply_charge_refunded",
    "gift_apply_checkout_session",
    "gift_apply_invoice_paid",
    "gift_flag_dispute",
    "gift_refund_request",
    "giving_statement_send",
    "giving_statements_send",
    "honoree_notify",
    "honoree_opt_out",
    "honoree_opt_out_read",
    "manage_link_request",
    "manage_link_send",
    "manage_token_make",
    "manage_token_read",
    "manage_token_use",
    "org_context",
    "plan_apply_subscription",
    "plan_record_payment_failed",
    "portal_url",
    "receipt_send",
    "stripe_event_accept",
    "stripe_event_process",
    "stripe_event_store",
    "stripe_events_drain",
    "stripe_events_queue",
    "stripe_events_requeue_received",
    "stripe_events_retry_waiting",
    "stripe_reconcile",
]
