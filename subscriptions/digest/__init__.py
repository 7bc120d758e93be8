"""The daily digest: compose an edition, plan who is due, send each batch exactly once.

The flow, and where each guarantee comes from:

* `compose.edition_compose` freezes an edition's article ids once per newsletter and
  date (UniqueConstraint "edition_once_per_day").
* `plan.digest_plan` (the beat task, every five minutes) finds the subscribers whose local
  clock has reached the newsletter's send hour, streams them, groups them by the set of
  categories and topics they follow, and writes ESP-sized `DeliveryBatch`es, each
  holding its readers' ids (`ledger`). A run reads the readers already in batches when
  it takes the edition's next run number (Edition.plan_run) and writes each batch only
  while that number is still its own, so no reader is in two batches of an edition.
* `send.edition_send_batch` (one Celery task per batch) locks the batch, runs the
  suppression check, marks the batch "sending" and COMMITS before calling the ESP, then
  records the ESP's message ids. A task redelivered after its worker died during the ESP
  call finds the batch still "sending" and marks it "in doubt" for staff instead of
  sending again. Readers share their batch's fate; a reader gets a `Delivery` row of
  their own only where it differs (suppressed, refused, accepted alone on SMTP, found
  in the ESP's log).
* `render` renders once per (edition, followed set, appeal); what differs per reader
  (greeting, preference and unsubscribe links) travels as merge fields.
* `staff` holds what staff do to a send from the admin, and the progress they watch.

An edition belongs to a local date and is frozen when the first time zone reaches the
send hour on that date; readers further west get the same contents hours later, and
what was published meanwhile opens the next day's edition (nothing is lost or repeated).
"""
