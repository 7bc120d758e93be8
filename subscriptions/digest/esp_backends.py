"""anymail's Postmark and Resend backends, sending each reader's own body in one batch call.

Both ESPs take a list of whole messages in one call (Postmark's /email/batch, 500;
Resend's /emails/batch, 100) but merge nothing without a stored template, and anymail
sends one body to every recipient of a batch. These backends are anymail's own, with
one change to the payload: a message carrying `reader_copies` (address -> RenderedEmail,
filled in by digest.esp from the one rendering of the batch) has each reader's subject
and bodies put in their entry. Everything else (headers, metadata, the call, errors,
per-recipient status) is anymail's.
"""

from __future__ import annotations

import json

from anymail.backends.postmark import EmailBackend as PostmarkBackend
from anymail.backends.postmark import PostmarkPayload
from anymail.backends.resend import EmailBackend as ResendBackend
from anymail.backends.resend import ResendPayload


class PostmarkBatchPayload(PostmarkPayload):
    def data_for_recipient(self, to):
        data = super().data_for_recipient(to)
        copy = getattr(self.message, "reader_copies", {}).get(to.addr_spec)
        if copy is not None:
            data.update(Subject=copy.subject, TextBody=copy.text, HtmlBody=copy.html)
        return data


class PostmarkBatchBackend(PostmarkBackend):
    def build_message_payload(self, message, defaults):
        return PostmarkBatchPayload(message, defaults, self)


class ResendBatchPayload(ResendPayload):
    def serialize_data(self):
        serialized = super().serialize_data()
        copies = getattr(self.message, "reader_copies", None)
        if not copies or not self.is_batch():
            return serialized
        entries = json.loads(serialized)
        # Entries are in the order of the message's "to" (anymail's ResendPayload).
        for entry, to in zip(entries, self.to_recipients, strict=True):
            copy = copies[to.addr_spec]
            entry.update(subject=copy.subject, text=copy.text, html=copy.html)
        return self.serialize_json(entries)


class ResendBatchBackend(ResendBackend):
    def build_message_payload(self, message, defaults):
        return ResendBatchPayload(message, defaults, self)
